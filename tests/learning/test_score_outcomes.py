"""Score-valued outcomes (judge ratings in [0, 1]) end to end: train, calibrate, conformal, evaluate, tune.

The label definition lives in :mod:`tinydancer.learning.labels`: the soft training target ``1 - weak`` and the
binary "weak model fails" ``weak < pass_mark``; both are ``1 - weak_correct`` on 0/1 outcomes, so nothing
changes there (the regression tests below recompute the 0/1 figures with the old formulas).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tinydancer.cli.learn import main
from tinydancer.datasets import load, load_routellm_outcomes, make_synthetic_outcomes, make_synthetic_score_outcomes
from tinydancer.errors import DataError, InvalidInputError
from tinydancer.learning import (
    Calibrator,
    apply_calibrator,
    auroc,
    calls_strong,
    conformal_quantile,
    conformal_sets,
    failure_labels,
    fit_calibrator,
    labels,
    ltt_threshold,
    report,
    routing_curve,
    score_frame,
    soft_target,
    split_rows,
    tune_threshold,
    weak_failed,
)
from tinydancer.model.fastgrnn_file import load_fastgrnn

TRAIN_ARGS = ["--featurizer", "wordllama_mean", "--dim", "64", "--hidden", "8", "--epochs", "6", "--lr", "0.05"]
TRAIN_ARGS += ["--batch-size", "64", "--no-progress", "--train-target", "weak_fails"]


@pytest.fixture(scope="module")
def score_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scores") / "judge_scores.csv"
    make_synthetic_score_outcomes(2000, seed=0).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def score_model(score_csv: Path) -> Path:
    out = score_csv.parent / "router.safetensors"
    assert main(["train", "--data", str(score_csv), "--out", str(out), *TRAIN_ARGS]) == 0
    return out


# --- the generator and the loader --------------------------------------------------------------------------


def test_synthetic_scores_are_seeded_judge_scores_with_a_better_strong_model() -> None:
    a, b = make_synthetic_score_outcomes(500, seed=3), make_synthetic_score_outcomes(500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(make_synthetic_score_outcomes(500, seed=4))
    for side in ("weak", "strong"):
        ratings = a[side].to_numpy() * 9
        assert np.allclose(ratings, np.round(ratings)) and a[side].between(0, 1).all()
    assert a["strong"].mean() > a["weak"].mean() + 0.2
    # Prompts drawn like the 0/1 generator's: the text carries the difficulty.
    assert a["prompt"].str.fullmatch(r"Question \d+ about (geography|literature|physics|mathematics): [a-z ]+\?").all()
    # Hard prompts (low latent weak quality) get low weak scores: the signal a router can learn.
    hard = a["weak_quality"] < 0.5
    assert a.loc[hard, "weak"].mean() < a.loc[~hard, "weak"].mean() - 0.4
    with pytest.raises(DataError, match="n: expected >= 1, got 0"):
        make_synthetic_score_outcomes(0, seed=0)


def test_loader_keeps_scores_as_floats(score_csv: Path) -> None:
    frame = load(str(score_csv))
    raw = pd.read_csv(score_csv)
    np.testing.assert_allclose(frame["weak_correct"], raw["weak"])
    np.testing.assert_allclose(frame["strong_correct"], raw["strong"])
    assert set(np.unique(frame["weak_correct"])) - {0.0, 1.0}  # not binarised


@pytest.mark.parametrize("bad", [1.5, -0.1, 7])
def test_scores_outside_unit_interval_are_a_clear_data_error(tmp_path: Path, bad: float) -> None:
    frame = make_synthetic_score_outcomes(20, seed=0)
    frame.loc[3, "weak"] = bad
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'weak' must hold booleans or scores in \[0, 1\]; got 1 other") as info:
        load_routellm_outcomes(path)
    assert f"e.g. {float(bad)}; scale ratings into [0, 1] first, e.g. (rating - 1) / 9" in str(info.value)


def test_text_outcomes_are_named_without_a_rescaling_hint(tmp_path: Path) -> None:
    frame = make_synthetic_score_outcomes(20, seed=0).astype({"weak": object})
    frame.loc[3, "weak"] = "maybe"
    path = tmp_path / "text.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"got 1 other values, e.g. 'maybe'$"):
        load_routellm_outcomes(path)


def test_cli_reports_out_of_range_scores_as_data_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = make_synthetic_score_outcomes(20, seed=0)
    frame["strong"] = frame["strong"] * 9 + 1  # unscaled 1-10 ratings
    path = tmp_path / "unscaled.csv"
    frame.to_csv(path, index=False)
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "m.safetensors"), *TRAIN_ARGS]) == 2
    err = capsys.readouterr().err
    assert "DataError" in err and "'strong' must hold booleans or scores in [0, 1]" in err
    assert "(rating - 1) / 9 for a 1-10 scale" in err


# --- the label definition ------------------------------------------------------------------------------------


def test_labels_reduce_to_one_minus_weak_on_binary_outcomes() -> None:
    weak = make_synthetic_outcomes(300, seed=1)["weak"].to_numpy(np.float64)
    frame = pd.DataFrame({"weak_correct": weak})
    old = (1.0 - weak).astype(np.float32)
    assert np.array_equal(labels(frame), old) and labels(frame).dtype == np.float32
    for mark in (1e-6, 0.3, 0.5, 1.0):
        assert np.array_equal(failure_labels(frame, mark), 1.0 - weak)


def test_labels_on_scores_soft_target_and_pass_mark() -> None:
    w = np.array([0.0, 1 / 9, 4 / 9, 5 / 9, 1.0])
    frame = pd.DataFrame({"weak_correct": w})
    np.testing.assert_allclose(labels(frame), 1 - w, rtol=1e-6)
    assert failure_labels(frame).tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]  # ratings 1, 2, 5 fail; 6 and 10 pass
    assert failure_labels(frame, pass_mark=1.0).tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]
    for bad_mark in (0.0, 1.5, True, math.nan):
        with pytest.raises(InvalidInputError, match=r"pass_mark: expected a number in \(0, 1\]"):
            weak_failed(w, bad_mark)
    with pytest.raises(InvalidInputError, match="weak: expected outcomes in"):
        soft_target([0.5, 1.2])


def test_calibration_metrics_name_the_fix_for_soft_labels() -> None:
    with pytest.raises(InvalidInputError, match=r"y: expected 0/1 labels, got 0\.3 .*weak_failed"):
        auroc(np.array([0.1, 0.9]), np.array([0.3, 1.0]))


# --- tuning, conformal and calibration on score outcomes --------------------------------------------------


def _truth(frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(1.0 - frame["weak_quality"].to_numpy(np.float64))  # the true expected weak shortfall


@pytest.mark.parametrize(("target", "value"), [("strong_share", 0.3), ("quality_share", 0.95), ("weak_error", 0.2)])
def test_tune_threshold_every_target_on_scores(target: str, value: float) -> None:
    tune, test = make_synthetic_score_outcomes(3000, seed=1), make_synthetic_score_outcomes(3000, seed=2)
    s, w, g = _truth(tune), tune["weak"].to_numpy(), tune["strong"].to_numpy()
    tuned = tune_threshold(s, w, g, target, value)
    assert math.isfinite(tuned.threshold)
    use = calls_strong(s, tuned.threshold)
    assert tuned.strong_share == pytest.approx(use.mean())
    assert tuned.quality == pytest.approx(np.where(use, g, w).mean())  # quality: mean score of the chosen model
    st, wt, gt = _truth(test), test["weak"].to_numpy(), test["strong"].to_numpy()
    kept = ~calls_strong(st, tuned.threshold)
    if target == "strong_share":
        assert 0.25 <= tuned.strong_share <= 0.3
    elif target == "quality_share":
        assert tuned.quality >= 0.95 * g.mean() - 1e-12 and tuned.strong_share < 0.9
        assert np.where(~kept, gt, wt).mean() >= 0.93 * gt.mean()  # holds out of sample too
    else:
        # Learn-then-Test on the binary label (weak score < 0.5): certified on tuning, holds on fresh data.
        assert tuned.threshold == ltt_threshold(s, weak_failed(w), value, 0.1).threshold
        assert kept.mean() > 0.2 and weak_failed(wt)[kept].mean() <= value + 0.02


def test_conformal_coverage_on_the_binary_label_is_near_nominal() -> None:
    cal, test = make_synthetic_score_outcomes(2000, seed=5), make_synthetic_score_outcomes(4000, seed=6)
    y_cal, y_test = weak_failed(cal["weak"]), weak_failed(test["weak"])
    platt = fit_calibrator("platt", _truth(cal), y_cal)
    p_cal, p_test = apply_calibrator(platt, _truth(cal)), apply_calibrator(platt, _truth(test))
    for alpha in (0.05, 0.1, 0.2):
        sets = conformal_sets(p_test, conformal_quantile(p_cal, y_cal, alpha))
        coverage = sets[np.arange(y_test.size), y_test.astype(int)].mean()
        assert abs(coverage - (1 - alpha)) < 0.03, (alpha, coverage)
    assert auroc(p_test, y_test) > 0.9


# --- the CLI end to end --------------------------------------------------------------------------------------


def test_cli_train_calibrate_evaluate_on_scores(
    score_csv: Path, score_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["calibrate", "--model", str(score_model), "--data", str(score_csv), "--method", "platt"]) == 0
    fitted = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert fitted["ece_cal_after"] < fitted["ece_cal_before"]  # raw scores estimate 1 - w, not P(w < 0.5)
    assert json.loads(load_fastgrnn(score_model)[2]["pass_mark"]) == 0.5
    assert main(["evaluate", "--model", str(score_model), "--data", str(score_csv), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_test"] == 800 and result["calibrator"] == "platt"
    # Random routing's APGR is 0.5; routing by the true expected shortfall gets 0.69 on these rows.
    assert result["apgr"] > 0.62 and result["cpt50"] < 0.4
    assert result["auroc"] > 0.85 and result["ece"] < 0.08
    assert abs(result["coverage"] - 0.9) < 0.05
    assert 0.45 <= result["thresholds"]["strong_share_0.5"]["test_strong_share"] <= 0.55
    # Quality is the mean score of the chosen model: all-strong routing gives the mean strong score.
    frame = load(str(score_csv))
    test = split_rows(frame, "random", 0)["test"]
    scores, _ = score_frame(score_model, frame)
    curve = routing_curve(
        scores[test], frame["weak_correct"].to_numpy()[test], frame["strong_correct"].to_numpy()[test]
    )
    assert curve.strong_share[-1] == 1.0
    assert curve.quality[-1] == pytest.approx(frame["strong_correct"].to_numpy()[test].mean())
    assert curve.quality[0] == pytest.approx(frame["weak_correct"].to_numpy()[test].mean())


def test_cli_pass_mark_is_stored_and_used(
    score_csv: Path, score_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = score_csv.parent / "strict.safetensors"
    args = ["--model", str(score_model), "--data", str(score_csv)]
    assert main(["calibrate", *args, "--out", str(out), "--pass-mark", "0.8"]) == 0
    assert json.loads(load_fastgrnn(out)[2]["pass_mark"]) == 0.8
    capsys.readouterr()
    results = []
    for extra in ([], ["--pass-mark", "0.8"], ["--pass-mark", "0.3"]):
        assert main(["evaluate", "--model", str(out), "--data", str(score_csv), "--json", *extra]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0] == results[1]  # the stored pass mark is the default
    assert results[2]["auroc"] != results[0]["auroc"]  # another label, other classification figures
    assert results[2]["apgr"] == results[0]["apgr"]  # quality figures never binarise
    assert main(["evaluate", "--model", str(out), "--data", str(score_csv), "--pass-mark", "0"]) == 2
    assert "InvalidInputError: pass_mark: expected a number in (0, 1], got 0.0" in capsys.readouterr().err


# --- 0/1 outcomes are unchanged ------------------------------------------------------------------------------


def test_report_on_binary_outcomes_matches_the_old_formulas() -> None:
    frame = make_synthetic_outcomes(1500, seed=7).rename(columns={"weak": "weak_correct", "strong": "strong_correct"})
    frame[["weak_correct", "strong_correct"]] = frame[["weak_correct", "strong_correct"]].astype(np.float64)
    rng = np.random.default_rng(0)
    scores = np.clip(frame["p_weak_wrong"].to_numpy() + rng.normal(0, 0.1, len(frame)), 0.01, 0.99)
    rows = {"cal": np.arange(700), "test": np.arange(700, 1500)}
    weak = frame["weak_correct"].to_numpy()
    old_y = (1.0 - weak).astype(np.float32).astype(np.float64)  # the label before score outcomes
    for alpha in (0.2, 0.3):
        got = report(scores, frame, rows, Calibrator("none"), alpha=alpha)
        assert got == report(scores, frame, rows, Calibrator("none"), alpha=alpha, pass_mark=0.9)
        cal, test = rows["cal"], rows["test"]
        assert got.auroc == auroc(scores[test], old_y[test])
        q = conformal_quantile(scores[cal], old_y[cal], alpha)
        sets = conformal_sets(scores[test], q)
        assert got.coverage == float(np.mean(sets[np.arange(test.size), old_y[test].astype(int)]))
        ltt = ltt_threshold(scores[cal], 1.0 - weak[cal], alpha, 0.1)
        assert math.isfinite(ltt.threshold) and got.thresholds.weak_error.threshold == ltt.threshold
        kept = ~calls_strong(scores[test], ltt.threshold)
        assert got.thresholds.weak_error.test_weak_error == float(np.mean(1 - weak[test][kept]))


def test_the_default_strong_gain_target_on_scores(score_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The recipe's target on judge scores: soft (1 + strong - weak) / 2; calibration reads "strong > weak".
    out = score_csv.parent / "gain.safetensors"
    args = [a for a in TRAIN_ARGS if a not in ("--train-target", "weak_fails")]
    assert main(["train", "--data", str(score_csv), "--out", str(out), *args]) == 0
    assert main(["calibrate", "--model", str(out), "--data", str(score_csv)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--data", str(score_csv), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    frame = load(str(score_csv))
    test = split_rows(frame, "random", 0)["test"]
    strong_wins = (frame["strong_correct"] > frame["weak_correct"]).to_numpy()[test]
    assert 0.2 < strong_wins.mean() < 0.9  # both classes of the label it is calibrated on are present
    assert result["apgr"] > 0.6 and result["auroc"] > 0.6 and result["ece"] < 0.1
    assert abs(result["coverage"] - 0.9) < 0.05
