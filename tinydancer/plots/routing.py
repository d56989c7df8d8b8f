"""Distribution plots of a Collector's frames: latency, confidence and uncertainty (matplotlib).

Every helper draws on the ``ax`` it is given and returns it; without one it creates a figure with
``matplotlib.pyplot`` (the only pyplot use, so figures show up in notebooks). Histograms are stacked
by group (outcome, or the routing decision), so a bar's total height is the count of all rows in the
bin and the legend gives each group's size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tinydancer.observability.collector import Collector
from tinydancer.observability.route_spans import ROUTING_REQUEST
from tinydancer.plots.style import DECISION_COLORS, OUTCOME_COLORS, PALETTE, axes_or_new

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _stacked_hist(
    ax: Axes, groups: dict[str, np.ndarray], edges: np.ndarray, colors: Mapping[str, str], unit: str
) -> None:
    """Draws one stacked histogram (len(edges) - 1 bars per group), or a 'no data' note."""
    groups = {k: v for k, v in groups.items() if v.size}
    if not groups:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="0.4")
        return
    ax.hist(
        list(groups.values()),
        bins=edges.tolist(),
        stacked=True,
        color=[colors.get(k, "0.5") for k in groups],
        label=[f"{k} (n={v.size:,} {unit})" for k, v in groups.items()],
        edgecolor="white",
        linewidth=0.5,
    )


def _split(values: np.ndarray, keys: np.ndarray, order: Sequence[str]) -> dict[str, np.ndarray]:
    """values [N] split by keys [N], in ``order`` first, then any other key in sorted order."""
    present = [k for k in order if k in set(keys)] + sorted(set(keys) - set(order))
    return {k: values[keys == k] for k in present}


def plot_latency(
    requests: pd.DataFrame, ax: Axes | None = None, *, bins: int = 40, log_scale: bool | None = None
) -> Axes:
    """Histogram of route-call latency, stacked by outcome, with p50 / p95 / p99 of all requests.

    Args:
        requests: ``Collector.requests()`` frame (uses ``latency_us`` and ``outcome``), N rows.
        ax: axes to draw on; a new figure when None.
        bins: number of bins.
        log_scale: logarithmic bins and x axis (positive latencies only); None picks it when the
            largest latency is over 100x the smallest (e.g. a first call that compiled).

    Returns:
        The axes drawn on.

    Examples:
        >>> import pandas as pd
        >>> from matplotlib.figure import Figure
        >>> df = pd.DataFrame({"latency_us": [50.0, 60.0, 400.0], "outcome": ["success"] * 3})
        >>> ax = plot_latency(df, Figure().subplots(), bins=10)
        >>> ax.get_xlabel(), len(ax.patches)
        ('latency per route call (µs)', 10)
    """
    ax = axes_or_new(ax)
    lat = requests["latency_us"].to_numpy(dtype=np.float64)
    outcomes = requests["outcome"].to_numpy(dtype=object)
    if lat.size:
        lo, hi = float(lat.min()), float(lat.max())
        if log_scale is None:
            log_scale = lo > 0 and hi > 100 * lo
        if log_scale:
            lo = max(lo, 1e-3)
            edges = np.geomspace(lo, max(hi, lo * 1.01), bins + 1)
            ax.set_xscale("log")
        else:
            edges = np.linspace(lo, max(hi, lo + 1.0), bins + 1)
            ax.ticklabel_format(axis="x", style="plain", useOffset=False)  # plain µs, no "1e6" factor
        _stacked_hist(ax, _split(lat, outcomes, list(OUTCOME_COLORS)), edges, OUTCOME_COLORS, "requests")
        for q, style in ((50, "-"), (95, "--"), (99, ":")):
            value = float(np.percentile(lat, q))
            ax.axvline(value, color="black", linestyle=style, linewidth=1, label=f"p{q} (all) = {value:,.1f} µs")
        ax.legend(fontsize="small")
    else:
        _stacked_hist(ax, {}, np.zeros(0), OUTCOME_COLORS, "requests")
    ax.set_xlabel("latency per route call (µs)")
    ax.set_ylabel("requests")
    ax.set_title(f"Routing latency ({lat.size:,} requests)")
    return ax


def _plot_decision_hist(
    decisions: pd.DataFrame,
    ax: Axes | None,
    column: str,
    bins: int,
    line: float | None,
    line_label: str,
    xlabel: str,
    title: str,
) -> Axes:
    ax = axes_or_new(ax)
    values = decisions[column].to_numpy(dtype=np.float64)
    light = decisions["use_lightweight"].to_numpy(dtype=bool)
    groups = {"lightweight": values[light], "powerful": values[~light]}
    hi = max(1.0, float(values.max())) if values.size else 1.0
    noun = _decision_noun(decisions)
    _stacked_hist(ax, groups, np.linspace(0.0, hi, bins + 1), DECISION_COLORS, noun)
    if line is not None:
        ax.axvline(line, color="black", linestyle="--", linewidth=1, label=f"{line_label} = {line:g}")
    if values.size or line is not None:
        ax.legend(fontsize="small", title="routing decision")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(noun)
    ax.set_title(f"{title} ({values.size:,} {noun})")
    return ax


def _decision_noun(decisions: pd.DataFrame) -> str:
    """What a decision row is: "prompts" when every row is a prompt router's (no candidate id), else "candidates"."""
    if len(decisions) and "p_strong" in decisions and decisions["p_strong"].notna().all():
        return "prompts"
    return "candidates"


def plot_confidence(
    decisions: pd.DataFrame, ax: Axes | None = None, threshold: float | None = None, *, bins: int = 20
) -> Axes:
    """Histogram of candidate confidence on [0, 1], stacked by decision (lightweight vs powerful).

    Args:
        decisions: ``Collector.decisions()`` frame (uses ``confidence``, ``use_lightweight``), N rows.
        ax: axes to draw on; a new figure when None.
        threshold: the router's ``confidence_threshold``, drawn as a dashed line when given.
        bins: number of equal bins on [0, 1].

    Returns:
        The axes drawn on.

    Examples:
        >>> import pandas as pd
        >>> from matplotlib.figure import Figure
        >>> df = pd.DataFrame({"confidence": [0.95, 0.3], "use_lightweight": [True, False]})
        >>> ax = plot_confidence(df, Figure().subplots(), threshold=0.85, bins=10)
        >>> len(ax.patches), ax.get_legend_handles_labels()[1]
        (20, ['lightweight (n=1 candidates)', 'powerful (n=1 candidates)', 'confidence threshold = 0.85'])
    """
    return _plot_decision_hist(
        decisions, ax, "confidence", bins, threshold, "confidence threshold",
        "confidence (model probability)", "Confidence by routing decision",
    )  # fmt: skip


def plot_uncertainty(
    decisions: pd.DataFrame, ax: Axes | None = None, max_uncertainty: float | None = None, *, bins: int = 20
) -> Axes:
    """Histogram of candidate uncertainty (from 0 to max(1, largest)), stacked by decision.

    Args:
        decisions: ``Collector.decisions()`` frame (uses ``uncertainty``, ``use_lightweight``), N rows.
        ax: axes to draw on; a new figure when None.
        max_uncertainty: the router's ``max_uncertainty``, drawn as a dashed line when given.
        bins: number of equal bins.

    Returns:
        The axes drawn on.

    Examples:
        >>> import pandas as pd
        >>> from matplotlib.figure import Figure
        >>> df = pd.DataFrame({"uncertainty": [0.1, 0.6], "use_lightweight": [True, False]})
        >>> ax = plot_uncertainty(df, Figure().subplots(), max_uncertainty=0.15)
        >>> ax.get_title()
        'Uncertainty by routing decision (2 candidates)'
    """
    return _plot_decision_hist(
        decisions, ax, "uncertainty", bins, max_uncertainty, "max uncertainty",
        "uncertainty (0 = certain)", "Uncertainty by routing decision",
    )  # fmt: skip


def plot_overview(
    source: Collector | tuple[pd.DataFrame, pd.DataFrame],
    *,
    threshold: float | None = None,
    max_uncertainty: float | None = None,
    **latency_kwargs: Any,
) -> Figure:
    """A 1x3 figure: latency, confidence and uncertainty distributions.

    Args:
        source: a Collector, or its ``(requests(), decisions())`` frames.
        threshold: the router's ``confidence_threshold`` (optional line).
        max_uncertainty: the router's ``max_uncertainty`` (optional line).
        **latency_kwargs: passed on to :func:`plot_latency` (``bins``, ``log_scale``).

    Returns:
        The new figure (created with ``matplotlib.pyplot``, so a notebook shows it).

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> fig = plot_overview(Collector(), threshold=0.85)
        >>> [ax.get_title() for ax in fig.axes][0], len(fig.axes)
        ('Routing latency (0 requests)', 3)
        >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    requests, decisions = (source.requests(), source.decisions()) if isinstance(source, Collector) else source
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), layout="constrained")
    plot_latency(requests, axes[0], **latency_kwargs)
    plot_confidence(decisions, axes[1], threshold)
    plot_uncertainty(decisions, axes[2], max_uncertainty)
    return fig


def plot_span_waterfall(spans: pd.DataFrame, trace_id: str | None = None, ax: Axes | None = None) -> Axes:
    """One trace's spans as a waterfall: a bar per span from its start to its end, children under parents.

    Args:
        spans: a ``Collector.spans()`` frame.
        trace_id: the trace to draw (default: the trace of the latest ``routing_request`` span).
        ax: axes to draw on (default: a new figure).

    Returns:
        The axes; y labels are span names, one "· " per level of depth; x is µs since the trace started.

    Examples:
        >>> import pandas as pd
        >>> from matplotlib.figure import Figure
        >>> t0 = pd.Timestamp("2026-01-01", tz="UTC")
        >>> frame = pd.DataFrame({"trace_id": ["t", "t"], "span_id": ["a", "b"], "parent_span_id": [None, "a"],
        ...                       "name": ["routing_request", "model_inference"],
        ...                       "start": [t0, t0 + pd.Timedelta(5, "us")], "end": [t0 + pd.Timedelta(50, "us")] * 2})
        >>> ax = plot_span_waterfall(frame, ax=Figure().subplots())
        >>> [t.get_text() for t in ax.get_yticklabels()]
        ['routing_request', '· model_inference']
    """
    ax = axes_or_new(ax)
    if trace_id is None:
        roots = spans[spans.name == ROUTING_REQUEST].sort_values("start")
        trace_id = None if roots.empty else roots.trace_id.iloc[-1]
    own = spans[spans.trace_id == trace_id].sort_values("start")
    if own.empty:
        ax.text(0.5, 0.5, "no spans", ha="center", va="center", transform=ax.transAxes)
        return ax
    # Depth-first: each span directly above its children (siblings by start time).
    children: dict[Any, list[int]] = {}
    for i, parent in enumerate(own.parent_span_id):
        children.setdefault(parent if parent in set(own.span_id) else None, []).append(i)
    order: list[tuple[int, int]] = []
    stack = [(i, 0) for i in reversed(children.get(None, []))]
    while stack:
        i, depth = stack.pop()
        order.append((i, depth))
        stack.extend((j, depth + 1) for j in reversed(children.get(own.span_id.iloc[i], [])))
    own = own.iloc[[i for i, _ in order]]
    depths = [d for _, d in order]
    t0 = own.start.min()
    starts = (own.start - t0).dt.total_seconds().to_numpy() * 1e6
    widths = (own.end - own.start).dt.total_seconds().to_numpy() * 1e6
    rows = np.arange(len(own))
    colors = [PALETTE["blue"] if name == ROUTING_REQUEST else PALETTE["sky_blue"] for name in own.name]
    ax.barh(rows, np.maximum(widths, widths.max() * 0.002), left=starts, color=colors)
    ax.set_yticks(rows, ["· " * d + name for d, name in zip(depths, own.name, strict=True)])
    ax.invert_yaxis()
    ax.set_xlabel("µs since the request started")
    ax.set_title(f"Spans of trace {str(trace_id)[:8]}… ({len(own)} spans)")
    return ax
