"""One threshold convention in the learning wing: strong iff score >= threshold, read by every consumer."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tinydancer.learning.calibration import Calibrator, ltt_threshold
from tinydancer.learning.evaluation import TARGETS, cost_curve, dense_thresholds, routing_curve, tune_threshold
from tinydancer.learning.experiment import report
from tinydancer.learning.thresholds import calls_strong


def _tied(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores on a 0.01 grid (many exact ties with thresholds), weak fails with probability ~ score."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 100, n) / 100
    weak = (rng.random(n) >= scores).astype(float)
    strong = (rng.random(n) < 0.9).astype(float)
    return scores, weak, strong


def test_calls_strong_at_the_threshold_and_at_the_infinities() -> None:
    scores = np.array([0.2, 0.5, 0.5000001, 0.9])
    assert calls_strong(scores, 0.5).tolist() == [False, True, True, True]  # a tie goes to the strong model
    assert not calls_strong(scores, math.inf).any() and calls_strong(scores, -math.inf).all()
    grid = calls_strong(scores, np.array([[0.1], [0.6]]))
    assert grid.shape == (2, 4) and grid.sum(axis=1).tolist() == [4, 1]


def test_routing_and_cost_curves_count_strong_calls_with_the_convention() -> None:
    scores, weak, strong = _tied()
    ts = dense_thresholds(scores)
    curve = routing_curve(scores, weak, strong, ts)
    for t, share, quality in zip(curve.thresholds, curve.strong_share, curve.quality, strict=True):
        use = calls_strong(scores, t)
        assert share == pytest.approx(use.mean()) and quality == pytest.approx(np.where(use, strong, weak).mean())
    cost, _ = cost_curve(scores, weak, strong, 0.0, 1.0)  # cost = strong share when only strong calls cost
    assert set(np.round(cost, 12)) == set(np.round(curve.strong_share, 12))


@pytest.mark.parametrize(("target", "value"), [("strong_share", 0.3), ("quality_share", 0.95), ("weak_error", 0.3)])
def test_every_tuning_target_reports_the_routing_its_threshold_gives(target: str, value: float) -> None:
    assert target in TARGETS
    scores, weak, strong = _tied(seed=1)
    tuned = tune_threshold(scores, weak, strong, target, value, delta=0.1)
    use = calls_strong(scores, tuned.threshold)
    assert 0.0 < tuned.strong_share < 1.0  # a real split, not a degenerate one
    assert tuned.strong_share == pytest.approx(use.mean())
    assert tuned.quality == pytest.approx(np.where(use, strong, weak).mean())


def test_ltt_threshold_is_in_the_same_convention_and_the_next_one_fails() -> None:
    scores, weak, _ = _tied(seed=2)
    wrong = 1.0 - weak
    alpha, delta = 0.3, 0.1
    g = ltt_threshold(scores, wrong, alpha, delta)
    assert math.isfinite(g.threshold)
    kept = ~calls_strong(scores, g.threshold)
    assert (scores == g.threshold).any()  # ties at the threshold exist and go to the strong model
    assert g.n_kept == kept.sum() and g.weak_share == pytest.approx(kept.mean())
    assert g.empirical_risk == pytest.approx(wrong[kept].mean()) and g.empirical_risk <= alpha
    # Fixed-sequence testing stopped at the next grid point: its p-value is above delta.
    following = ~calls_strong(scores, g.threshold + 1 / 1000)
    assert stats.binom.cdf(wrong[following].sum(), following.sum(), alpha) > delta


def test_report_thresholds_read_the_calibrated_scores_with_the_convention() -> None:
    scores, weak, strong = _tied(4000, seed=3)
    frame = pd.DataFrame({"weak_correct": weak, "strong_correct": strong})
    rows = {"cal": np.arange(2000), "test": np.arange(2000, 4000)}
    result = report(scores, frame, rows, Calibrator("none"), alpha=0.3, delta=0.1)
    p_test = scores[rows["test"]]
    t = result.thresholds
    for point in (t.strong_share_50, t.quality_share_95):
        assert point.test_strong_share == pytest.approx(calls_strong(p_test, point.threshold).mean())
    kept = ~calls_strong(p_test, t.weak_error.threshold)
    assert 0 < kept.sum() < kept.size
    assert t.weak_error.test_weak_share == pytest.approx(kept.mean())
    assert t.weak_error.test_weak_error == pytest.approx(1 - weak[rows["test"]][kept].mean())
