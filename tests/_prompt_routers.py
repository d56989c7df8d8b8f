"""Prompt routers shared by the prompt-router tests: trained once per test session, copied before a change.

Training on the bundled MMLU outcomes takes seconds, so each artifact is made once (``functools.cache``)
into one temporary folder; a test that rewrites an artifact works on :func:`copy_of` it.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from tinydancer.datasets import load
from tinydancer.learning.experiment import calibrate_router, train_router, tune_router
from tinydancer.learning.train import TrainConfig
from tinydancer.model.text_features import FeaturizerConfig

#: The three targets ``tune`` knows, by the operating-point name the calibrated router stores them under.
TARGETS: Mapping[str, str] = {"share50": "strong-share=0.5", "quality95": "quality=0.95", "werr": "weak-error=0.2@0.1"}
TRAIN = TrainConfig(epochs=1, progress=False)


@functools.cache
def _folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="tinydancer-prompt-routers-"))


@functools.cache
def mmlu() -> pd.DataFrame:
    """The bundled RouteLLM MMLU outcomes (14,037 rows)."""
    return load("routellm-mmlu")


@functools.cache
def trained(kind: str = "wordllama_tokens", ensemble: int = 1, quantize: bool = False, max_tokens: int = 32) -> Path:
    """An uncalibrated artifact trained for one epoch on MMLU (no operating point)."""
    name = f"{kind}-{ensemble}-{int(quantize)}-{max_tokens}.safetensors"
    feat = FeaturizerConfig(kind=kind, dim=64, max_tokens=max_tokens)
    out = _folder() / name
    train_router(mmlu(), out, featurizer=feat, train=TRAIN, ensemble=ensemble, quantize=quantize, data_tag="mmlu")
    return out


@functools.cache
def calibrated() -> Path:
    """The default trained artifact, temperature-calibrated (with a conformal quantile), no operating point."""
    out = _folder() / "calibrated.safetensors"
    calibrate_router(trained(), mmlu(), "temperature", out=out)
    return out


@functools.cache
def tuned() -> Path:
    """:func:`calibrated` with the three operating points of :data:`TARGETS`; ``quality95`` is the default."""
    out = _folder() / "tuned.safetensors"
    shutil.copyfile(calibrated(), out)
    for name, target in TARGETS.items():
        tune_router(out, mmlu(), target, name, default=name == "quality95")
    return out


def copy_of(path: Path, folder: Path, name: str = "router.safetensors") -> Path:
    """A copy of a shared artifact that a test may overwrite."""
    target = folder / name
    shutil.copyfile(path, target)
    return target
