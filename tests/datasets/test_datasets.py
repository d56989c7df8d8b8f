"""RouteLLM-format loader (real folder layout, typed errors) and the seeded synthetic generators."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tinydancer import datasets
from tinydancer.datasets.outcomes import (
    DEFAULT_STRONG,
    DEFAULT_WEAK,
    load_routellm_outcomes,
    make_synthetic_outcomes,
    make_synthetic_routing,
)
from tinydancer.errors import DataError

REPO = Path(__file__).resolve().parents[2]


def _write_subject(folder: Path, subject: str, rows: list[tuple[str, bool, bool]]) -> None:
    frame = pd.DataFrame(rows, columns=["prompt", DEFAULT_WEAK, DEFAULT_STRONG])
    frame.to_csv(folder / f"mmlu_{subject}.csv", index=False)


def test_folder_of_subject_csvs_drops_contaminated(tmp_path: Path) -> None:
    responses = tmp_path / "responses"
    responses.mkdir()
    _write_subject(responses, "anatomy", [("q1\nA. x", True, True), ("q2", False, True)])
    _write_subject(responses, "virology", [("q3", False, False)])
    with (tmp_path / "contaminated_prompts.jsonl").open("w") as handle:
        handle.write(json.dumps({"train_prompt": "t", "eval_prompt": "q2", "train_idx": 0, "eval_idx": 1}) + "\n")
    df = load_routellm_outcomes(tmp_path)
    assert df["prompt"].tolist() == ["q1\nA. x", "q3"]
    assert df["subject"].tolist() == ["anatomy", "virology"]
    assert df["weak_correct"].tolist() == [1.0, 0.0]
    assert df["strong_correct"].tolist() == [1.0, 0.0]
    assert "cost" not in df.columns


def test_jsonl_with_scores_and_cost(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.jsonl"
    rows = [
        {"prompt": "a", "small": 0.25, "big": 1, "cost": 0.01},
        {"prompt": "b", "small": 1, "big": 0.5, "cost": 0.0},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    df = load_routellm_outcomes(path, weak="small", strong="big")
    assert df["weak_correct"].tolist() == [0.25, 1.0]
    assert df["strong_correct"].tolist() == [1.0, 0.5]
    assert df["cost"].tolist() == [0.01, 0.0]
    assert df["subject"].tolist() == ["outcomes", "outcomes"]


def test_string_booleans_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("prompt,w,s\nq,true,FALSE\nr,0,1\n")
    df = load_routellm_outcomes(path, weak="w", strong="s")
    assert df["weak_correct"].tolist() == [1.0, 0.0]
    assert df["strong_correct"].tolist() == [0.0, 1.0]


def test_misnamed_columns_list_what_was_found(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("question,mixtral,gpt4\nq,True,True\n")
    with pytest.raises(DataError, match=r"missing column\(s\).*found \['question', 'mixtral', 'gpt4'\]"):
        load_routellm_outcomes(path)


@pytest.mark.parametrize("bad", ["maybe", "1.5", "-0.1", "nan"])
def test_non_outcome_values_are_rejected(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text(f"prompt,w,s\nq,1,1\nr,{bad},0\n")
    with pytest.raises(DataError, match="booleans or scores in \\[0, 1\\]"):
        load_routellm_outcomes(path, weak="w", strong="s")


def test_absent_path_is_named(tmp_path: Path) -> None:
    where = tmp_path / "nowhere"
    with pytest.raises(DataError, match=str(where)):
        load_routellm_outcomes(where)


def test_empty_inputs_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="found none"):
        load_routellm_outcomes(tmp_path)
    path = tmp_path / "x.csv"
    path.write_text("prompt,w,s\n")
    with pytest.raises(DataError, match="no rows"):
        load_routellm_outcomes(path, weak="w", strong="s")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="suffix"):
        load_routellm_outcomes(tmp_path / "x.txt")


def test_bad_cost_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("prompt,w,s,cost\nq,1,1,-2\n")
    with pytest.raises(DataError, match="cost"):
        load_routellm_outcomes(path, weak="w", strong="s")


def test_bundled_fixture_is_what_its_readme_command_regenerates() -> None:
    from tinydancer.learning.calibration import auroc

    path = REPO / "datasets" / "synthetic_routing.csv"
    readme = (REPO / "datasets" / "README.md").read_text(encoding="utf-8")
    assert "make_synthetic_outcomes(2000, seed=0).to_csv('datasets/synthetic_routing.csv', index=False)" in readme
    regenerated = make_synthetic_outcomes(2000, seed=0)
    on_disk = pd.read_csv(path)
    pd.testing.assert_frame_equal(on_disk, regenerated, check_dtype=False)
    assert path.stat().st_size < 300_000
    df = load_routellm_outcomes(path, weak="weak", strong="strong")
    assert len(df) == 2000 and set(df["subject"]) == {"geography", "literature", "physics", "mathematics"}
    assert 0.3 < df["weak_correct"].mean() < 0.8 and df["strong_correct"].mean() > df["weak_correct"].mean()
    # The truth spans most of [0, 1] and separates the outcomes well (a router has something to learn).
    truth = on_disk["p_weak_wrong"].to_numpy()
    assert truth.min() < 0.1 and truth.max() > 0.9
    assert auroc(truth, 1.0 - df["weak_correct"].to_numpy()) > 0.8


def test_synthetic_prompts_fit_the_default_featurizer_window() -> None:
    """Every word of every fixture prompt survives the default ``max_tokens`` (32): nothing is cut off."""
    from tinydancer.model.text_features import FeaturizerConfig, TextFeaturizer

    prompts = pd.read_csv(REPO / "datasets" / "synthetic_routing.csv")["prompt"].tolist()
    window = FeaturizerConfig().max_tokens
    featurizer = TextFeaturizer(FeaturizerConfig(max_tokens=window + 16))
    _, mask = featurizer.token_ids(prompts)
    lengths = mask.sum(axis=1)
    assert lengths.max() <= window and lengths.min() >= 10, (lengths.min(), lengths.max())


def test_synthetic_routing_is_seeded_and_calibrated() -> None:
    a, b = make_synthetic_routing(3000, 6, seed=3), make_synthetic_routing(3000, 6, seed=3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.x, make_synthetic_routing(3000, 6, seed=4).x)
    # Padded steps are zero, every sequence has at least one step.
    assert np.all(a.x[~a.mask] == 0) and np.all(a.mask[:, 0])
    # The outcomes really follow the stated probabilities (known ground truth).
    hi, lo = a.p_weak_wrong > 0.5, a.p_weak_wrong <= 0.5
    assert abs((1 - a.weak_correct[hi]).mean() - a.p_weak_wrong[hi].mean()) < 0.04
    assert abs((1 - a.weak_correct[lo]).mean() - a.p_weak_wrong[lo].mean()) < 0.04
    assert a.strong_correct.mean() > a.weak_correct.mean()
    with pytest.raises(DataError):
        make_synthetic_routing(0, 6, seed=0)


def test_bundled_routellm_mmlu() -> None:
    raw = pd.read_parquet(datasets.dataset_path("routellm-mmlu"))
    assert len(raw) == 14042 and int(raw["contaminated"].sum()) == 5
    assert list(raw.columns) == ["prompt", "subject", DEFAULT_WEAK, DEFAULT_STRONG, "contaminated"]
    df = datasets.load("routellm-mmlu")
    assert len(df) == 14042 - 5
    assert not set(raw.loc[raw["contaminated"], "prompt"]) & set(df["prompt"])
    assert df["subject"].nunique() == 57 and "abstract_algebra" in set(df["subject"])
    assert round(df["weak_correct"].mean(), 3) == 0.681
    assert round(df["strong_correct"].mean(), 3) == 0.806
    # The same frame through the generic loader, and through the path the README documents.
    pd.testing.assert_frame_equal(df, load_routellm_outcomes(REPO / "datasets" / "routellm-mmlu.parquet"))


def test_bundled_synthetic_loads_with_defaults() -> None:
    df = datasets.load("synthetic")
    assert len(df) == 2000 and list(df.columns)[:4] == ["prompt", "subject", "weak_correct", "strong_correct"]


def test_dataset_errors_name_what_was_expected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match=r"expected one of .*routellm-mmlu"):
        datasets.dataset_path("mmlu")
    monkeypatch.setenv(datasets.DATASETS_DIR_VARIABLE, str(tmp_path))
    with pytest.raises(DataError, match="TINYDANCER_DATASETS_DIR"):
        datasets.load("routellm-mmlu")


def test_missing_outcome_columns_name_the_cli_flags(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    pd.DataFrame({"prompt": ["a"], "small": [True], "big": [False]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="--weak COLUMN --strong COLUMN"):
        load_routellm_outcomes(path)


def test_readme_provenance_matches_the_shipped_file() -> None:
    readme = (REPO / "datasets" / "README.md").read_text()
    digest = hashlib.sha256(datasets.dataset_path("routellm-mmlu").read_bytes()).hexdigest()
    assert digest in readme and "0b64fdafe049e596a3f5657c219329f24af24198" in readme
    assert (REPO / "datasets" / "LICENSE-routellm-mmlu").read_text().lstrip().startswith("Apache License")


def test_no_tracked_file_refers_to_the_shared_folder() -> None:
    # A user's clone has nothing beside it: the project must never read the shared folder beside it.
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    needle = "../" + "shared"
    offenders = [
        name
        for name in files.decode().split("\0")
        if name and (REPO / name).is_file() and needle in (REPO / name).read_text(errors="ignore")
    ]
    assert offenders == []
