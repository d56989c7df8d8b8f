"""The observability wing: the guide's metrics, spans, logs, collectors, /metrics server and monitoring assets.

Per-instance objects a Router records into; it never imports the routing wing.
"""

from __future__ import annotations

from tinydancer.observability.alerting import AlertFiring, evaluate_alerts, samples_to_series
from tinydancer.observability.collector import Collector, DecisionBatch, LogRecord, RequestBatch, RequestRecord
from tinydancer.observability.logs import LogConfig, LogEvent, configure_logging
from tinydancer.observability.metrics import BREAKER_STATES, MetricSample, RouterMetrics
from tinydancer.observability.metrics_server import MetricsServer
from tinydancer.observability.monitoring_assets import read_asset, write_assets
from tinydancer.observability.recording import (
    RECORDING_VERSION,
    Recording,
    joined_outcomes,
    load_recording,
    recording_outcomes,
    recording_segments,
)
from tinydancer.observability.route_spans import RoutingSpan
from tinydancer.observability.span_export import ExporterStats
from tinydancer.observability.trace_context import TraceContext
from tinydancer.observability.tracing import TracingConfig, TracingSystem, active_tracing_system

__all__ = [
    "BREAKER_STATES",
    "RECORDING_VERSION",
    "AlertFiring",
    "Collector",
    "DecisionBatch",
    "ExporterStats",
    "LogConfig",
    "LogEvent",
    "LogRecord",
    "MetricSample",
    "MetricsServer",
    "Recording",
    "RequestBatch",
    "RequestRecord",
    "RouterMetrics",
    "RoutingSpan",
    "TraceContext",
    "TracingConfig",
    "TracingSystem",
    "active_tracing_system",
    "configure_logging",
    "evaluate_alerts",
    "joined_outcomes",
    "load_recording",
    "read_asset",
    "recording_outcomes",
    "recording_segments",
    "samples_to_series",
    "write_assets",
]
