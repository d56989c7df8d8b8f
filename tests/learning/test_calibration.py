"""Calibration maps and metrics against scikit-learn; conformal coverage and LTT guarantees by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from tests._requires import missing
from tinydancer.errors import DataError, InvalidInputError
from tinydancer.learning.calibration import (
    Calibrator,
    apply_calibrator,
    auroc,
    brier,
    conformal_quantile,
    conformal_sets,
    ece,
    fit_calibrator,
    ltt_threshold,
    mce,
    nll,
    reliability_bins,
)


def _miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True probabilities t, labels y ~ Bernoulli(t), and an over-confident score p = sigmoid(3 logit t)."""
    rng = np.random.default_rng(seed)
    t = rng.beta(2, 2, n)
    y = (rng.random(n) < t).astype(float)
    z = np.log(t) - np.log1p(-t)
    return t, y, 1 / (1 + np.exp(-3 * z))


labels_and_scores = st.integers(5, 60).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=st.floats(0.001, 0.999)),
        arrays(np.int64, n, elements=st.integers(0, 1)),
    )
)


@settings(max_examples=40)
@given(labels_and_scores)
def test_metrics_match_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    p, y = data
    assert brier(p, y) == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert nll(p, y) == pytest.approx(log_loss(y, p, labels=[0, 1]), rel=1e-9)
    if 0 < y.sum() < y.size:
        assert auroc(p, y) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


@settings(max_examples=40)
@given(labels_and_scores)
def test_isotonic_matches_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    p, y = data
    if y.min() == y.max():
        return
    cal = fit_calibrator("isotonic", p, y)
    want = IsotonicRegression(out_of_bounds="clip").fit(p, y).predict(p)
    np.testing.assert_allclose(apply_calibrator(cal, p), want, atol=1e-9)


def test_platt_matches_unregularised_logistic_regression() -> None:
    _, y, p = _miscalibrated(2000, 0)
    cal = fit_calibrator("platt", p, y)
    z = np.log(p) - np.log1p(-p)
    lr = LogisticRegression(C=1e10, tol=1e-10, max_iter=1000).fit(z[:, None], y)
    assert cal.a == pytest.approx(lr.coef_[0, 0], rel=2e-3)
    assert cal.b == pytest.approx(lr.intercept_[0], abs=5e-3)


def test_temperature_recovers_the_known_overconfidence() -> None:
    t, y, p = _miscalibrated(20000, 1)
    cal = fit_calibrator("temperature", p, y)
    assert cal.a == pytest.approx(1 / 3, rel=0.05)  # scores were sharpened by 3
    fixed = apply_calibrator(cal, p)
    assert ece(fixed, y) < ece(p, y) / 3
    assert nll(fixed, y) < nll(p, y)
    np.testing.assert_allclose(fixed, t, atol=0.06)
    assert auroc(fixed, y) == pytest.approx(auroc(p, y))  # monotone: ranking unchanged


def test_ece_mce_and_bins_by_hand() -> None:
    p, y = np.array([0.05, 0.1, 0.45, 0.55, 0.9, 0.95]), np.array([0, 1, 0, 1, 1, 1])
    bins = reliability_bins(p, y, n_bins=2)
    assert [(b.lower, b.upper, b.n) for b in bins] == [(0.0, 0.5, 3), (0.5, 1.0, 3)]
    gaps = [abs(1 / 3 - 0.2), abs(1.0 - 0.8)]
    assert ece(p, y, n_bins=2) == pytest.approx(np.mean(gaps))
    assert mce(p, y, n_bins=2) == pytest.approx(max(gaps))
    mass = reliability_bins(p, y, n_bins=3, strategy="quantile")
    assert [b.n for b in mass] == [2, 2, 2]
    with pytest.raises(InvalidInputError, match="strategy"):
        ece(p, y, strategy="width")


def test_bad_inputs() -> None:
    with pytest.raises(InvalidInputError, match="finite"):
        brier(np.array([np.nan]), np.array([1]))
    with pytest.raises(InvalidInputError, match="0/1"):
        brier(np.array([0.5]), np.array([2]))
    with pytest.raises(InvalidInputError, match="shape"):
        brier(np.array([0.5, 0.5]), np.array([1]))
    with pytest.raises(DataError, match="single class"):
        auroc(np.array([0.2, 0.3]), np.array([1, 1]))
    with pytest.raises(DataError, match="single class"):
        fit_calibrator("platt", np.array([0.2, 0.3]), np.array([1, 1]))
    with pytest.raises(InvalidInputError, match="kind"):
        fit_calibrator("beta", np.array([0.2]), np.array([1]))
    assert fit_calibrator("none", np.array([0.2]), np.array([1])) == Calibrator("none")


def test_conformal_coverage_is_nominal_on_held_out_data() -> None:
    # 200 random calibration/test splits: mean coverage within 2 points of 1 - alpha, never below by much.
    _, y, p = _miscalibrated(4000, 2)
    alpha, rng, covered = 0.1, np.random.default_rng(3), []
    for _ in range(200):
        idx = rng.permutation(p.size)
        cal, test = idx[:500], idx[500:]
        q = conformal_quantile(p[cal], y[cal], alpha)
        sets = conformal_sets(p[test], q)
        covered.append(np.mean(sets[np.arange(test.size), y[test].astype(int)]))
    assert abs(np.mean(covered) - (1 - alpha)) < 0.02
    assert np.mean(covered) >= 1 - alpha - 0.005


def test_conformal_small_split_is_a_typed_error() -> None:
    with pytest.raises(DataError, match=r"too small for alpha=0.05: need n >= 19, got n=10"):
        conformal_quantile(np.full(10, 0.5), np.ones(10), alpha=0.05)


def test_ltt_violation_rate_is_at_most_delta() -> None:
    # Known truth: true error probability of each query is t; the true risk of a threshold is the mean
    # of t among the kept queries of a huge population.
    rng = np.random.default_rng(4)
    pop_t = rng.beta(1.5, 3, 200_000)
    pop_score = np.clip(pop_t + rng.normal(0, 0.05, pop_t.size), 0, 1)
    order = np.argsort(pop_score)
    cum_t = np.r_[0.0, np.cumsum(pop_t[order])]
    sorted_scores = pop_score[order]
    alpha, delta, violations, shares = 0.15, 0.1, 0, []
    for _ in range(100):
        idx = rng.integers(0, pop_t.size, 1000)
        wrong = (rng.random(1000) < pop_t[idx]).astype(float)
        g = ltt_threshold(pop_score[idx], wrong, alpha, delta)
        kept = int(np.searchsorted(sorted_scores, g.threshold, side="left"))
        if kept:
            violations += cum_t[kept] / kept > alpha
            shares.append(kept / pop_t.size)
    assert violations / 100 <= delta
    assert np.mean(shares) > 0.2  # not vacuous (the oracle share for alpha = 0.15 is 0.41)


def test_ltt_certifies_nothing_when_alpha_is_impossible_and_rejects_tiny_splits() -> None:
    rng = np.random.default_rng(5)
    s = rng.random(500)
    g = ltt_threshold(s, np.ones(500), alpha=0.05, delta=0.1)
    assert g.threshold == -np.inf and g.weak_share == 0.0
    with pytest.raises(DataError, match=r"need n >= 45, got n=20"):
        ltt_threshold(s[:20], np.zeros(20), alpha=0.05, delta=0.1)


def test_conformal_sets_match_mapie() -> None:
    try:
        from mapie import classification as mapie
    except ImportError:
        missing("mapie (dev dependency, the cross-check oracle)", ".venv/bin/pip install mapie==1.6.0")
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Fixed(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
        """A prefit 'model' whose P(y = 1) is its only input column."""

        def fit(self, x: np.ndarray, y: np.ndarray) -> Fixed:
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            p = np.asarray(x)[:, 0]
            return np.stack([1 - p, p], axis=1)

        def predict(self, x: np.ndarray) -> np.ndarray:
            return (np.asarray(x)[:, 0] >= 0.5).astype(int)

    _, y, p = _miscalibrated(1500, 6)
    y = y.astype(int)
    for alpha in (0.05, 0.1, 0.2):
        m = mapie.SplitConformalClassifier(
            estimator=Fixed().fit(p[:, None], y), confidence_level=1 - alpha, conformity_score="lac", prefit=True
        )
        m.conformalize(p[:500, None], y[:500])
        _, theirs = m.predict_set(p[500:, None])
        ours = conformal_sets(p[500:], conformal_quantile(p[:500], y[:500], alpha))
        np.testing.assert_array_equal(ours, theirs[:, :, 0])
