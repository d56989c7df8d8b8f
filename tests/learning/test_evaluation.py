"""RouteLLM-protocol metrics by hand and by brute force; threshold tuning meets each target."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinydancer.datasets.outcomes import make_synthetic_routing
from tinydancer.errors import DataError, InvalidInputError
from tinydancer.learning.evaluation import (
    aiq,
    apgr,
    bootstrap_ci,
    cost_curve,
    cpt,
    dense_thresholds,
    oracle_curve,
    pgr,
    quantile_thresholds,
    random_curve,
    routing_curve,
    tune_threshold,
)


def _data(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = make_synthetic_routing(n, 4, seed=seed, seq_len=1)
    return s.p_weak_wrong, s.weak_correct, s.strong_correct


def test_curve_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    scores, weak, strong = rng.random(300), rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    curve = routing_curve(scores, weak, strong)
    assert len(curve.thresholds) == 11 + 2
    for t, share, q in zip(curve.thresholds, curve.strong_share, curve.quality, strict=True):
        use = scores >= t
        assert share == pytest.approx(use.mean())
        assert q == pytest.approx(np.where(use, strong, weak).mean())
    assert curve.strong_share[0] == 0.0 and curve.strong_share[-1] == 1.0
    assert np.all(np.diff(curve.strong_share) >= 0)


def test_hand_example() -> None:
    # 4 queries; only query 0 needs the strong model; the router ranks it first.
    scores = np.array([0.9, 0.2, 0.4, 0.1])
    weak, strong = np.array([0, 1, 1, 1]), np.array([1, 1, 1, 1])
    curve = routing_curve(scores, weak, strong, dense_thresholds(scores))
    assert curve.q_weak == 0.75 and curve.q_strong == 1.0
    # PGR is 1 from share 0.25 on: APGR = 0.5 * 0.25 + 0.75 = 0.875
    assert apgr(curve) == pytest.approx(0.875)
    assert cpt(curve, 0.5) == pytest.approx(0.125)
    assert cpt(curve, 0.8) == pytest.approx(0.2)
    assert float(pgr(0.875, 0.75, 1.0)) == 0.5
    with pytest.raises(DataError, match="q_strong > q_weak"):
        pgr(0.5, 0.8, 0.8)


def test_router_between_random_and_oracle() -> None:
    truth, weak, strong = _data()
    router = apgr(routing_curve(truth, weak, strong))
    rand = apgr(random_curve(weak, strong))
    rng = np.random.default_rng(1)
    shuffled = apgr(routing_curve(rng.random(truth.size), weak, strong))
    oracle = apgr(oracle_curve(weak, strong))
    assert rand == pytest.approx(0.5)
    assert abs(shuffled - 0.5) < 0.05
    assert 0.6 < router < oracle
    assert oracle > 0.9
    assert cpt(routing_curve(truth, weak, strong), 0.5) < cpt(random_curve(weak, strong), 0.5) == pytest.approx(0.5)


@settings(max_examples=30)
@given(
    st.integers(20, 80).flatmap(
        lambda n: st.tuples(
            arrays(np.float64, n, elements=st.floats(0, 1)),
            arrays(np.int64, n, elements=st.integers(0, 1)),
            arrays(np.int64, n, elements=st.integers(0, 1)),
        )
    )
)
def test_curve_endpoints_and_cpt_monotone(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    scores, weak, strong = data
    curve = routing_curve(scores, weak, strong, dense_thresholds(scores))
    assert curve.quality[0] == pytest.approx(weak.mean()) and curve.quality[-1] == pytest.approx(strong.mean())
    if strong.mean() > weak.mean():
        assert cpt(curve, 0.2) <= cpt(curve, 0.5) <= cpt(curve, 0.8) <= 1.0
        assert apgr(oracle_curve(weak, strong)) >= apgr(curve) - 1e-9


def test_quantile_thresholds_are_routellm_edges() -> None:
    scores = np.arange(101.0)
    np.testing.assert_allclose(quantile_thresholds(scores), np.arange(0, 101, 10))


def test_tune_strong_share() -> None:
    truth, weak, strong = _data(1000, 2)
    for value in (0.0, 0.2, 0.5, 1.0):
        tuned = tune_threshold(truth, weak, strong, "strong_share", value)
        assert tuned.strong_share <= value + 1e-12
        assert tuned.strong_share >= value - 0.005
    assert tune_threshold(truth, weak, strong, "strong_share", 0.0).threshold == math.inf


def test_tune_quality_share_is_the_least_share() -> None:
    truth, weak, strong = _data(1000, 3)
    tuned = tune_threshold(truth, weak, strong, "quality_share", 0.95)
    assert tuned.quality >= 0.95 * strong.mean() - 1e-12
    # Any higher threshold (fewer strong calls) misses the target.
    higher = np.unique(truth)[np.unique(truth) > tuned.threshold]
    for t in higher[:20]:
        use = truth >= t
        assert np.where(use, strong, weak).mean() < 0.95 * strong.mean()


def test_tune_weak_error_bounds_the_calibration_error() -> None:
    truth, weak, strong = _data(3000, 4)
    tuned = tune_threshold(truth, weak, strong, "weak_error", 0.2, delta=0.1)
    kept = truth < tuned.threshold
    assert 0.2 < kept.mean() < 1
    assert (1 - weak[kept]).mean() <= 0.2


def test_tune_errors() -> None:
    truth, weak, strong = _data(100, 5)
    with pytest.raises(InvalidInputError, match="target"):
        tune_threshold(truth, weak, strong, "cost", 0.5)
    with pytest.raises(InvalidInputError, match="value"):
        tune_threshold(truth, weak, strong, "strong_share", 1.5)
    with pytest.raises(InvalidInputError, match="finite"):
        routing_curve(np.array([np.nan]), np.array([1.0]), np.array([1.0]))
    with pytest.raises(InvalidInputError, match="equal"):
        routing_curve(np.array([0.1, 0.2]), np.array([1.0]), np.array([1.0]))


def test_bootstrap_ci_brackets_the_estimate() -> None:
    truth, weak, strong = _data(1000, 6)
    point = apgr(routing_curve(truth, weak, strong))
    lo, hi = bootstrap_ci(lambda s, w, g: apgr(routing_curve(s, w, g)), (truth, weak, strong), n_boot=100)
    assert lo < point < hi and hi - lo < 0.2
    again = bootstrap_ci(lambda s, w, g: apgr(routing_curve(s, w, g)), (truth, weak, strong), n_boot=100)
    assert again == (lo, hi)


def test_aiq_by_hand() -> None:
    # Hull (1, .5) -> (2, .9), flat to 3: area 0.7 + 0.9 over a cost range of 2.
    assert aiq(np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.9, 0.8])) == pytest.approx(0.8)
    # A point under the chord changes nothing; one above it lifts the hull.
    assert aiq(np.array([1.0, 2.0, 3.0, 1.5]), np.array([0.5, 0.9, 0.8, 0.6])) == pytest.approx(0.8)
    assert aiq(np.array([1.0, 2.0, 3.0, 1.5]), np.array([0.5, 0.9, 0.8, 0.8])) == pytest.approx(0.825)
    with pytest.raises(InvalidInputError, match="two distinct costs"):
        aiq(np.array([1.0, 1.0]), np.array([0.5, 0.6]))


def test_aiq_orders_routers_like_apgr_with_dollar_costs() -> None:
    truth, weak, strong = _data(2000, 7)
    rng = np.random.default_rng(8)
    cost_weak, cost_strong = 0.0006, rng.uniform(0.01, 0.03, truth.size)  # per-query dollars
    good = aiq(*cost_curve(truth, weak, strong, cost_weak, cost_strong))
    rand = aiq(*cost_curve(rng.random(truth.size), weak, strong, cost_weak, cost_strong))
    oracle = aiq(*cost_curve(strong - weak, weak, strong, cost_weak, cost_strong))
    assert rand < good < oracle
    cost, quality = cost_curve(truth, weak, strong, cost_weak, cost_strong)
    assert cost[0] == pytest.approx(cost_weak) and cost[-1] == pytest.approx(cost_strong.mean())
    assert quality[0] == pytest.approx(weak.mean()) and quality[-1] == pytest.approx(strong.mean())
