"""The experiment steps as an API: one call per step, typed results, one quantisation, a scoring batch size."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tinydancer.learning.experiment as experiment
from tinydancer.datasets.outcomes import make_synthetic_outcomes
from tinydancer.errors import DataError, InvalidInputError
from tinydancer.learning.calibration import ece
from tinydancer.learning.experiment import (
    EvaluationReport,
    TrainedRouter,
    calibrate_router,
    evaluate_router,
    evaluation_rows,
    labels,
    predict_scores,
    prepare_split,
    report,
    score_frame,
    split_rows,
    stored_calibrator,
    train_router,
)
from tinydancer.learning.train import TrainConfig
from tinydancer.model.compression import quantize_params
from tinydancer.model.fastgrnn_file import load_fastgrnn
from tinydancer.model.text_features import FeaturizerConfig

FEATURIZER = FeaturizerConfig(kind="wordllama_mean", dim=64)
TRAIN = TrainConfig(epochs=3, learning_rate=0.05, batch_size=64, progress=False)
#: The ``evaluate --json`` keys (a documented interface), in their order.
REPORT_KEYS = [
    "n_test", "apgr", "apgr_dense", "cpt20", "cpt50", "cpt80", "auroc", "ece", "ece_raw", "ece_equal_mass",
    "coverage", "coverage_target", "uncertain_share", "calibrator", "thresholds",
]  # fmt: skip
THRESHOLD_KEYS = {
    "weak_error": ["alpha", "delta", "threshold", "test_weak_share", "test_weak_error"],
    "strong_share_0.5": ["threshold", "test_strong_share"],
    "quality_share_0.95": ["threshold", "test_strong_share"],
}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_synthetic_outcomes(600, 0).rename(columns={"weak": "weak_correct", "strong": "strong_correct"})


@pytest.fixture(scope="module")
def trained(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> TrainedRouter:
    out = tmp_path_factory.mktemp("experiment") / "router.safetensors"
    return train_router(
        frame,
        out,
        featurizer=FEATURIZER,
        model={"hidden_dim": 8},
        train=TRAIN,
        data_tag="synthetic",
        target="weak_fails",
    )


def test_train_router_returns_what_it_wrote(trained: TrainedRouter, frame: pd.DataFrame) -> None:
    assert trained.path.exists() and trained.split == "random" and trained.seed == 0 and not trained.quantized
    assert trained.row_counts == {"train": 240, "val": 60, "cal": 60, "test": 240}
    for name, idx in split_rows(frame, "random", 0).items():
        np.testing.assert_array_equal(trained.rows[name], idx)
    assert 0 < trained.size_bytes_int8 < trained.size_bytes_float32
    assert 1 <= trained.result.best_epoch <= len(trained.result.history) <= TRAIN.epochs
    _, config, meta = load_fastgrnn(trained.path)
    assert config.input_dim == 64 and config.hidden_dim == 8
    assert json.loads(meta["split"]) == {"kind": "random", "seed": 0, "data": "synthetic"}


def test_split_rows_subject_holds_out_whole_subjects_and_covers_every_row() -> None:
    f = pd.DataFrame({"subject": [f"s{i % 7}" for i in range(140)]})
    split = split_rows(f, "subject", 3)
    assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(140))
    held = set(f["subject"].iloc[split["test"]])
    seen = set(f["subject"].iloc[np.concatenate([split["train"], split["val"], split["cal"]])])
    assert held and seen and not held & seen
    assert len(split["test"]) >= round(0.4 * len(f))


def test_split_rows_refuses_splits_that_leave_nothing_to_train() -> None:
    with pytest.raises(DataError, match=r"expected at least 2 subjects .* got 1 \('only'\); use the random split"):
        split_rows(pd.DataFrame({"subject": ["only"] * 50}), "subject", 0)
    lopsided = pd.DataFrame({"subject": ["big"] * 49 + ["small"]})  # any held-out choice takes (nearly) every row
    for seed in range(4):
        with pytest.raises(DataError, match=r"split 'subject': expected rows left for training, got none \(50 rows"):
            split_rows(lopsided, "subject", seed)


def test_train_router_quantises_once(
    frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: TrainedRouter
) -> None:
    calls: list[object] = []

    def counting(params: object) -> object:
        calls.append(params)
        return quantize_params(params)  # type: ignore[arg-type]

    monkeypatch.setattr(experiment, "quantize_params", counting)
    quantized = train_router(
        frame, tmp_path / "q.safetensors", featurizer=FEATURIZER, model={"hidden_dim": 8}, train=TRAIN, quantize=True,
        target="weak_fails",
    )  # fmt: skip
    assert len(calls) == 1 and quantized.quantized
    # Same data, same seed: the same float32 model, and the int8 copy it stored is the one it sized.
    assert quantized.size_bytes_int8 == trained.size_bytes_int8
    assert quantized.result.history["val_loss"].tolist() == trained.result.history["val_loss"].tolist()
    stored, _, _ = load_fastgrnn(quantized.path)
    assert type(stored).__name__ == type(quantize_params(trained.result.params)).__name__


def test_prepare_split_is_what_training_saw(frame: pd.DataFrame) -> None:
    prepared = prepare_split(frame, FEATURIZER, "random", 0)
    train = prepared.data("train")
    assert prepared.x.shape == (600, 1, 64) and train.x.shape == (240, 1, 64)
    np.testing.assert_array_equal(train.y, labels(frame)[prepared.rows["train"]])
    # Normalised with the training rows' statistics: mean ~0 there, not on the other rows exactly.
    assert np.abs(train.x[:, 0, :].mean(axis=0)).max() < 1e-4
    with pytest.raises(InvalidInputError, match="got 'holdout'"):
        prepared.data("holdout")


def test_score_frame_batch_size_changes_nothing_but_the_batching(trained: TrainedRouter, frame: pd.DataFrame) -> None:
    default = score_frame(trained.path, frame)
    small = score_frame(trained.path, frame, batch_size=7)
    assert default.scores.shape == (600,) and default.scores.dtype == np.float64
    np.testing.assert_allclose(small.scores, default.scores, rtol=0, atol=1e-6)
    assert small.metadata == default.metadata and "featurizer" in default.metadata
    scores, meta = default  # still unpacks as a pair
    assert scores is default.scores and meta is default.metadata
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidInputError, match="batch_size"):
            score_frame(trained.path, frame, batch_size=bad)  # type: ignore[arg-type]
    params, config, _ = load_fastgrnn(trained.path)
    assert predict_scores(params, config, np.zeros((0, 1, 64), np.float32), np.zeros((0, 1), bool)).shape == (0,)


def test_calibrate_then_evaluate_as_two_calls(trained: TrainedRouter, frame: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "calibrated.safetensors"
    fitted = calibrate_router(trained.path, frame, "platt", out=out)
    assert fitted.path == out and fitted.calibrator.kind == "platt"
    meta = load_fastgrnn(out)[2]
    assert stored_calibrator(meta) == fitted.calibrator
    assert stored_calibrator(load_fastgrnn(trained.path)[2]).kind == "none"  # out= leaves the original alone
    scores, _ = score_frame(trained.path, frame)
    cal = trained.rows["cal"]
    assert fitted.ece_cal_before == pytest.approx(ece(scores[cal], labels(frame)[cal]))
    assert fitted.ece_cal_after < fitted.ece_cal_before  # fitted in-sample on those rows

    evaluated = evaluate_router(out, frame, alpha=0.2, delta=0.1)
    by_hand = report(scores, frame, evaluation_rows(frame, meta, "test"), fitted.calibrator, 0.2, 0.1)
    assert evaluated == by_hand
    assert evaluated.n_test == 240 and evaluated.calibrator == "platt" and evaluated.coverage_target == 0.8
    assert evaluated.thresholds.weak_error.alpha == 0.2


def test_report_converts_to_the_documented_json(trained: TrainedRouter, frame: pd.DataFrame) -> None:
    evaluated = evaluate_router(trained.path, frame, rows="all")
    assert isinstance(evaluated, EvaluationReport) and evaluated.n_test == 600
    as_dict = evaluated.as_dict()
    assert list(as_dict) == REPORT_KEYS
    assert {k: list(v) for k, v in as_dict["thresholds"].items()} == THRESHOLD_KEYS
    assert as_dict["thresholds"]["strong_share_0.5"]["threshold"] == evaluated.thresholds.strong_share_50.threshold
    assert all(isinstance(as_dict[k], float) for k in REPORT_KEYS if k not in ("n_test", "calibrator", "thresholds"))
    json.dumps(as_dict)  # plain Python values only (inf aside, which the CLI writes as null)
    assert math.isfinite(as_dict["apgr"]) and as_dict["calibrator"] == "none"


def test_evaluation_rows_rejects_an_unknown_choice(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="expected 'test' or 'all', got 'train'"):
        evaluation_rows(frame, {}, "train")
