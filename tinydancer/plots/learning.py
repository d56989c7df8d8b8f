"""Plots of a router's learning results: routing curves (quality vs strong calls) and reliability.

Like :mod:`tinydancer.plots.routing`, every helper draws on the ``ax`` it is given and returns it; without
one it creates a figure with ``matplotlib.pyplot`` so that it shows up in notebooks. Axes are labelled
in percent of queries and percent accuracy; every curve is in the legend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tinydancer.learning.calibration import ece, reliability_bins
from tinydancer.learning.evaluation import RoutingCurve, apgr
from tinydancer.plots.style import PALETTE, REFERENCE_CURVE_STYLES, axes_or_new

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _style(name: str, index: int) -> dict[str, Any]:
    """Line style of a named curve; ``index`` numbers the distinct routers (name before " (")."""
    low = name.lower()
    if low.startswith("random"):
        return dict(REFERENCE_CURVE_STYLES["random"])
    if low.startswith("oracle"):
        return dict(REFERENCE_CURVE_STYLES["oracle"])
    if "quantile" in low:
        return {"color": f"C{index}", "ls": "none", "marker": "o"}
    return {"color": f"C{index}", "lw": 1.5}


def plot_routing_curves(curves: Mapping[str, RoutingCurve], ax: Axes | None = None) -> Axes:
    """Quality (%) against strong-model calls (%) for each curve, with all-weak/all-strong levels.

    Names starting with "random" or "oracle" get fixed styles; a name containing "quantile" is drawn
    as points (RouteLLM's 10-quantile protocol). Curves of one router share a colour: "FastGRNN
    (dense)" and "FastGRNN (10-quantile)" are both the first colour. Each legend entry gives the APGR.

    Args:
        curves: Name -> :class:`~tinydancer.learning.evaluation.RoutingCurve` (sharing q_weak and q_strong).
        ax: Axes to draw on (default: a new figure).

    Returns:
        The axes.

    Examples:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from tinydancer.learning.evaluation import routing_curve
        >>> c = routing_curve(np.array([0.9, 0.1]), np.array([0, 1]), np.array([1, 1]), np.array([0.5]))
        >>> plot_routing_curves({"router": c}).get_xlabel()
        'strong-model calls (% of queries)'
    """
    axes = axes_or_new(ax)
    first: RoutingCurve | None = None
    routers: dict[str, int] = {}
    for name, curve in curves.items():
        first = first or curve
        index = routers.setdefault(name.split(" (")[0], len(routers))
        axes.plot(
            100 * curve.strong_share,
            100 * curve.quality,
            label=f"{name}, APGR {apgr(curve):.2f}",
            **_style(name, index),
        )
    if first is not None:
        axes.axhline(
            100 * first.q_weak, color=PALETTE["vermillion"], lw=0.8, label=f"all weak ({100 * first.q_weak:.1f} %)"
        )
        axes.axhline(
            100 * first.q_strong, color=PALETTE["orange"], lw=0.8, label=f"all strong ({100 * first.q_strong:.1f} %)"
        )
    axes.set_xlabel("strong-model calls (% of queries)")
    axes.set_ylabel("accuracy of routed answers (%)")
    axes.set_title("Quality vs cost")
    axes.legend(fontsize=8, loc="lower right")
    return axes


def plot_reliability(
    p: np.ndarray, y: np.ndarray, n_bins: int = 15, ax: Axes | None = None, title: str = "Reliability"
) -> Axes:
    """Reliability diagram: observed frequency against mean predicted probability per bin.

    Marker areas are proportional to the bins' counts; the title gets the ECE (equal-width bins).

    Args:
        p: [N] predicted probabilities of label 1.
        y: [N] 0/1 labels.
        n_bins: Equal-width bins on [0, 1].
        ax: Axes to draw on (default: a new figure).
        title: Title prefix.

    Returns:
        The axes.

    Examples:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> plot_reliability(np.array([0.1, 0.2, 0.9]), np.array([0, 0, 1]), n_bins=2).get_title()
        'Reliability: ECE 0.133'
    """
    axes = axes_or_new(ax)
    bins = reliability_bins(p, y, n_bins)
    score = np.array([b.mean_score for b in bins])
    freq = np.array([b.frequency for b in bins])
    counts = np.array([b.n for b in bins], np.float64)
    axes.plot([0, 1], [0, 1], color="grey", ls="--", label="perfect calibration")
    axes.plot(score, freq, "-", color=PALETTE["blue"])
    axes.scatter(score, freq, s=10 + 200 * counts / counts.max(), color=PALETTE["blue"], label="bins (area ~ count)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("predicted probability")
    axes.set_ylabel("observed frequency")
    axes.set_title(f"{title}: ECE {ece(p, y, n_bins):.3f}")
    axes.legend(fontsize=8, loc="upper left")
    return axes
