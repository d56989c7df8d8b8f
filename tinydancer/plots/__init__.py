"""Plots of what a router recorded (latency, confidence, uncertainty, spans) and of learning results.

The colours and line styles (:mod:`tinydancer.plots.style`) are public, so notebooks draw their own figures
in the same colours: ``td.plots.OUTCOME_COLORS["failure"]``, ``td.plots.PALETTE["blue"]``, ...
"""

from __future__ import annotations

from tinydancer.plots.learning import plot_reliability, plot_routing_curves
from tinydancer.plots.routing import plot_confidence, plot_latency, plot_overview, plot_span_waterfall, plot_uncertainty
from tinydancer.plots.style import DECISION_COLORS, OUTCOME_COLORS, PALETTE, REFERENCE_CURVE_STYLES

__all__ = [
    "DECISION_COLORS",
    "OUTCOME_COLORS",
    "PALETTE",
    "REFERENCE_CURVE_STYLES",
    "plot_confidence",
    "plot_latency",
    "plot_overview",
    "plot_reliability",
    "plot_routing_curves",
    "plot_span_waterfall",
    "plot_uncertainty",
]
