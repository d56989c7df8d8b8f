"""Plots of what a router recorded (latency, confidence, uncertainty, spans) and of learning results."""

from __future__ import annotations

from tinydancer.plots.learning import plot_reliability, plot_routing_curves
from tinydancer.plots.routing import plot_confidence, plot_latency, plot_overview, plot_span_waterfall, plot_uncertainty

__all__ = [
    "plot_confidence",
    "plot_latency",
    "plot_overview",
    "plot_reliability",
    "plot_routing_curves",
    "plot_span_waterfall",
    "plot_uncertainty",
]
