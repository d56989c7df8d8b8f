"""The datasets that ship with tinydancer, by name: one loader for the CLI, notebooks and benchmarks.

The files live in the repository's ``datasets/`` folder (licences and provenance in its README.md):

* ``routellm-mmlu``: RouteLLM's cached MMLU outcomes (Apache-2.0), 14,042 questions from 57 subjects with
  whether Mixtral-8x7B (weak) and GPT-4-1106 (strong) answered correctly; the 5 prompts RouteLLM marks as
  contaminated are dropped on load, leaving 14,037 rows.
* ``synthetic``: 2,000 generated prompts with known ground truth
  (``tinydancer.datasets.outcomes.make_synthetic_outcomes``).

``TINYDANCER_DATASETS_DIR`` points the loader at another copy of that folder (for example when tinydancer
is installed from a wheel rather than used from its clone).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from tinydancer.datasets.mmlu_groups import MMLU_GROUPS
from tinydancer.datasets.outcomes import (
    SyntheticRouting,
    load_routellm_outcomes,
    make_synthetic_outcomes,
    make_synthetic_routing,
    make_synthetic_score_outcomes,
)
from tinydancer.errors import DataError

#: Bundled dataset name -> file name inside the datasets folder.
BUNDLED: dict[str, str] = {
    "routellm-mmlu": "routellm-mmlu.parquet",
    "synthetic": "synthetic_routing.csv",
}
DATASETS_DIR_VARIABLE = "TINYDANCER_DATASETS_DIR"


def datasets_dir() -> Path:
    """The folder holding the bundled files: ``$TINYDANCER_DATASETS_DIR`` or the clone's ``datasets/``.

    Examples:
        >>> (datasets_dir() / "routellm-mmlu.parquet").is_file()
        True
    """
    override = os.environ.get(DATASETS_DIR_VARIABLE)
    return Path(override) if override else Path(__file__).resolve().parents[2] / "datasets"


def dataset_path(name: str) -> Path:
    """The file behind a bundled dataset name.

    Raises:
        DataError: The name is not a bundled dataset, or its file is absent.

    Examples:
        >>> dataset_path("routellm-mmlu").name
        'routellm-mmlu.parquet'
    """
    if name not in BUNDLED:
        raise DataError(f"unknown dataset {name!r}; expected one of {sorted(BUNDLED)} or a file/folder path")
    path = datasets_dir() / BUNDLED[name]
    if not path.is_file():
        raise DataError(
            f"{path}: the bundled dataset {name!r} is missing; it ships in the repository's datasets/ folder "
            f"(set {DATASETS_DIR_VARIABLE} to a copy of that folder when tinydancer is installed elsewhere)"
        )
    return path


def load(name_or_path: str | Path, *, weak: str | None = None, strong: str | None = None) -> pd.DataFrame:
    """Load routing outcomes: a bundled dataset by name, or any RouteLLM-format file or folder by path.

    Args:
        name_or_path: ``"routellm-mmlu"``, ``"synthetic"``, or a path accepted by
            :func:`tinydancer.datasets.outcomes.load_routellm_outcomes`.
        weak: Weak model's outcome column (default: recognised automatically for the bundled data).
        strong: Strong model's outcome column.

    Returns:
        The tidy outcome frame: ``prompt``, ``subject``, ``weak_correct``, ``strong_correct`` (float64 in
        [0, 1]) and ``cost`` where the source has one; ``frame.attrs`` names the two models
        (``weak_model``, ``strong_model``: the outcome columns read).

    Raises:
        DataError: Unknown name, missing file, or malformed data.

    Examples:
        >>> mmlu = load("routellm-mmlu")
        >>> len(mmlu), mmlu["subject"].nunique(), round(float(mmlu["weak_correct"].mean()), 3)
        (14037, 57, 0.681)
    """
    path = dataset_path(name_or_path) if isinstance(name_or_path, str) and name_or_path in BUNDLED else name_or_path
    return load_routellm_outcomes(path, weak=weak, strong=strong)


__all__ = [
    "BUNDLED",
    "DATASETS_DIR_VARIABLE",
    "MMLU_GROUPS",
    "SyntheticRouting",
    "dataset_path",
    "datasets_dir",
    "load",
    "load_routellm_outcomes",
    "make_synthetic_outcomes",
    "make_synthetic_routing",
    "make_synthetic_score_outcomes",
]
