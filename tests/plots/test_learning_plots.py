"""Tests of the learning plots: labelled axes, legends, and drawn points equal to the computed curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tinydancer.learning.calibration import ece, reliability_bins
from tinydancer.learning.evaluation import apgr, oracle_curve, random_curve, routing_curve
from tinydancer.plots.learning import plot_reliability, plot_routing_curves

pytestmark = pytest.mark.usefixtures("close_figures")


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.random(n)
    weak = (rng.random(n) > scores).astype(float)
    strong = (rng.random(n) < 0.85).astype(float)
    return scores, weak, strong


def test_routing_curves_draws_each_curve_in_percent_with_apgr_in_the_legend() -> None:
    s, w, g = _data()
    curves = {
        "router (10-quantile)": routing_curve(s, w, g),
        "random": random_curve(w, g),
        "oracle": oracle_curve(w, g),
    }
    ax = plot_routing_curves(curves)
    assert ax.get_xlabel() == "strong-model calls (% of queries)"
    assert ax.get_ylabel() == "accuracy of routed answers (%)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for name, curve in curves.items():
        assert f"{name}, APGR {apgr(curve):.2f}" in labels
    assert any(label.startswith("all weak") for label in labels)
    router_line = ax.get_lines()[0]
    np.testing.assert_allclose(router_line.get_xdata(), 100 * curves["router (10-quantile)"].strong_share)
    np.testing.assert_allclose(router_line.get_ydata(), 100 * curves["router (10-quantile)"].quality)
    assert router_line.get_linestyle() == "None"  # the quantile protocol is drawn as points
    assert ax.get_lines()[1].get_linestyle() == "--"  # random


def test_curves_of_one_router_share_a_colour() -> None:
    s, w, g = _data()
    ax = plot_routing_curves(
        {
            "a (dense)": routing_curve(s, w, g, np.unique(s)),
            "a (10-quantile)": routing_curve(s, w, g),
            "b": routing_curve(-s, w, g),
        }
    )
    colours = [line.get_color() for line in ax.get_lines()[:3]]
    assert colours[0] == colours[1] != colours[2]


def test_routing_curves_uses_the_given_axes() -> None:
    s, w, g = _data()
    _, ax = plt.subplots()
    assert plot_routing_curves({"router": routing_curve(s, w, g)}, ax=ax) is ax


def test_reliability_points_are_the_bins_and_title_has_ece() -> None:
    s, w, _ = _data(1000, seed=1)
    y = 1.0 - w
    ax = plot_reliability(s, y, n_bins=10, title="raw")
    bins = reliability_bins(s, y, 10)
    line = ax.get_lines()[1]
    np.testing.assert_allclose(line.get_xdata(), [b.mean_score for b in bins])
    np.testing.assert_allclose(line.get_ydata(), [b.frequency for b in bins])
    assert ax.get_title() == f"raw: ECE {ece(s, y, 10):.3f}"
    assert ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["perfect calibration", "bins (area ~ count)"]
