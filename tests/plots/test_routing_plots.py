"""Tests of the distribution plots: labels, legends, and bar counts that add up to the data."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tinydancer.observability.collector import Collector, DecisionBatch, RequestRecord
from tinydancer.plots.routing import plot_confidence, plot_latency, plot_overview, plot_uncertainty

pytestmark = pytest.mark.usefixtures("close_figures")


def filled_collector(n_requests: int = 60, seed: int = 0) -> Collector:
    rng = np.random.default_rng(seed)
    c = Collector()
    for i in range(n_requests):
        n = int(rng.integers(1, 20))
        outcome = ("success", "success", "failure", "rejected")[i % 4]
        rid = c.next_request_id()
        p = rng.uniform(0, 1, n)
        u = np.clip(1 - 2 * np.abs(p - 0.5), 0, 1)
        light = (p >= 0.85) & (u <= 0.15)
        lat = float(rng.lognormal(4, 0.5))
        c.record_request(RequestRecord(rid, 1.8e9 + i, lat, 1.0, n, outcome, None, None, None, 0, 0))
        ids = tuple(f"c{j}" for j in range(n))
        c.record_decisions(DecisionBatch(rid, 1.8e9 + i, ids, p, u, light, np.argsort(-p), "fastgrnn"))
    return c


def bar_heights(ax: Axes) -> list[np.ndarray]:
    """Per stacked group, the bar heights (the group's own counts, not the stacked tops)."""
    return [np.array([b.get_height() for b in c]) for c in ax.containers if isinstance(c, BarContainer)]


def labels(ax: Axes) -> list[str]:
    return ax.get_legend_handles_labels()[1]


def test_latency_histogram_counts_every_request_by_outcome() -> None:
    requests = filled_collector().requests()
    ax = Figure().subplots()
    assert plot_latency(requests, ax, bins=12) is ax
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("latency per route call (µs)", "requests")
    assert ax.get_title() == "Routing latency (60 requests)"
    assert len(ax.patches) == 12 * 3  # success, failure, rejected
    heights = bar_heights(ax)
    counts = requests.outcome.value_counts()
    assert [h.sum() for h in heights] == [counts["success"], counts["failure"], counts["rejected"]]
    p50 = np.percentile(requests.latency_us, 50)
    assert labels(ax) == [
        "success (n=30 requests)",
        "failure (n=15 requests)",
        "rejected (n=15 requests)",
        f"p50 (all) = {p50:,.1f} µs",
        f"p95 (all) = {np.percentile(requests.latency_us, 95):,.1f} µs",
        f"p99 (all) = {np.percentile(requests.latency_us, 99):,.1f} µs",
    ]
    assert np.asarray(ax.lines[0].get_xdata())[0] == pytest.approx(p50)


def test_latency_log_scale() -> None:
    ax = plot_latency(filled_collector().requests(), Figure().subplots(), log_scale=True, bins=8)
    assert ax.get_xscale() == "log"
    assert sum(h.sum() for h in bar_heights(ax)) == 60


@pytest.mark.parametrize(("latencies", "log_scale", "scale"), [
    ([10.0, 20.0, 900.0], None, "linear"),
    ([10.0, 20.0, 1_500_000.0], None, "log"),  # a first call that compiled
    ([10.0, 20.0, 1_500_000.0], False, "linear"),
])  # fmt: skip
def test_latency_scale_is_automatic_for_heavy_tails(latencies: list[float], log_scale: bool | None, scale: str) -> None:
    frame = pd.DataFrame({"latency_us": latencies, "outcome": ["success"] * 3})
    ax = plot_latency(frame, Figure().subplots(), log_scale=log_scale, bins=5)
    assert ax.get_xscale() == scale
    assert bar_heights(ax)[0].sum() == 3


def test_confidence_histogram_splits_by_decision_with_threshold() -> None:
    decisions = filled_collector().decisions()
    ax = plot_confidence(decisions, Figure().subplots(), threshold=0.85, bins=20)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("confidence (model probability)", "candidates")
    assert ax.get_title() == f"Confidence by routing decision ({len(decisions)} candidates)"
    assert len(ax.patches) == 2 * 20
    light, powerful = bar_heights(ax)
    assert light.sum() == decisions.use_lightweight.sum()
    assert powerful.sum() == (~decisions.use_lightweight).sum()
    assert light[:17].sum() == 0  # nothing below 0.85 is routed to the lightweight model
    n_light = int(decisions.use_lightweight.sum())
    assert labels(ax) == [
        f"lightweight (n={n_light} candidates)",
        f"powerful (n={len(decisions) - n_light} candidates)",
        "confidence threshold = 0.85",
    ]
    legend = ax.get_legend()
    assert legend is not None and legend.get_title().get_text() == "routing decision"
    first, last = ax.patches[0], ax.patches[19]
    assert isinstance(first, Rectangle) and isinstance(last, Rectangle)
    assert (first.get_x(), last.get_x() + last.get_width()) == pytest.approx((0.0, 1.0))


def test_uncertainty_histogram_with_max_line() -> None:
    decisions = filled_collector().decisions()
    ax = plot_uncertainty(decisions, Figure().subplots(), max_uncertainty=0.15, bins=10)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("uncertainty (0 = certain)", "candidates")
    assert len(ax.patches) == 2 * 10
    light, _ = bar_heights(ax)
    assert light[2:].sum() == 0  # lightweight needs uncertainty <= 0.15
    assert labels(ax)[-1] == "max uncertainty = 0.15"


def test_one_group_only_draws_one_set_of_bars() -> None:
    frame = pd.DataFrame({"confidence": [0.1, 0.2, 0.3], "use_lightweight": [False] * 3})
    ax = plot_confidence(frame, Figure().subplots(), bins=5)
    assert len(ax.patches) == 5
    assert labels(ax) == ["powerful (n=3 candidates)"]


@pytest.mark.parametrize("plot", [plot_latency, plot_confidence, plot_uncertainty])
def test_empty_frames_say_no_data(plot: object) -> None:
    c = Collector()
    frame = c.requests() if plot is plot_latency else c.decisions()
    ax = plot(frame, Figure().subplots())  # type: ignore[operator]
    assert len(ax.patches) == 0
    assert [t.get_text() for t in ax.texts] == ["no data"]
    assert "(0 " in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_without_ax_a_new_figure_is_made() -> None:
    ax = plot_confidence(filled_collector().decisions())
    assert isinstance(ax.figure, Figure)
    assert plt.get_fignums() == [ax.figure.number]


@pytest.mark.parametrize("from_frames", [False, True])
def test_overview_is_one_row_of_three(from_frames: bool) -> None:
    c = filled_collector()
    fig = plot_overview((c.requests(), c.decisions()) if from_frames else c, threshold=0.85, bins=10)
    assert [ax.get_title().split(" (")[0] for ax in fig.axes] == [
        "Routing latency",
        "Confidence by routing decision",
        "Uncertainty by routing decision",
    ]
    specs = [ax.get_subplotspec() for ax in fig.axes]
    assert [s.colspan.start for s in specs if s is not None] == [0, 1, 2]
    assert len(fig.axes[0].patches) == 3 * 10
    assert labels(fig.axes[1])[-1] == "confidence threshold = 0.85"


def test_span_waterfall_of_a_real_route(tmp_path: Path) -> None:
    from tinydancer import Router, RouterConfig, RoutingRequest, TracingConfig, TracingSystem
    from tinydancer.plots.routing import plot_span_waterfall

    system = TracingSystem(TracingConfig(service_name="waterfall"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # random model: no file
            router = Router(RouterConfig(model_path=str(tmp_path / "none.safetensors")), tracing=system)
        router.route(RoutingRequest.from_arrays(np.ones(4), np.eye(4)[:3]), now=1_700_000_000)
        ax = plot_span_waterfall(router.collector.spans(), ax=Figure().subplots())
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels[0] == "routing_request" and len(labels) == 1 + 1 + 1 + 1 + 3 * 2
        assert labels[1:4] == ["· circuit_breaker_check", "· feature_engineering", "· model_inference"]
        assert sorted(labels[4:]) == ["· · model_inference"] * 3 + ["· · uncertainty_estimation"] * 3
        assert len(ax.patches) == len(labels)
    finally:
        system.shutdown()
