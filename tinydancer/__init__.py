"""tinydancer: neural LLM routing research toolkit (JAX FastGRNN router with full observability)."""

from tinydancer import datasets
from tinydancer.errors import (
    CircuitOpenError,
    ConfigError,
    DataError,
    InferenceError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelLoadError,
    TinyDancerError,
    TrainingError,
)
from tinydancer.model.compression import quantize_params
from tinydancer.model.fastgrnn import FastGRNNConfig, FastGRNNParams, fastgrnn_predict, init_fastgrnn_params
from tinydancer.model.fastgrnn_file import load_fastgrnn, save_fastgrnn
from tinydancer.model.original import CompatModelConfig, CompatParams, compat_forward, init_compat_params
from tinydancer.model.original_file import load_compat_model, save_compat_model
from tinydancer.observability.collector import Collector, DecisionBatch, LogRecord, RequestRecord
from tinydancer.observability.logs import LogConfig, LogEvent, configure_logging, make_router_logger
from tinydancer.observability.metrics import MetricSample, RouterMetrics
from tinydancer.observability.metrics_server import MetricsServer
from tinydancer.observability.monitoring_assets import read_asset, write_assets
from tinydancer.observability.route_spans import RoutingSpan
from tinydancer.observability.span_export import ExporterStats
from tinydancer.observability.trace_context import TraceContext
from tinydancer.observability.tracing import TracingConfig, TracingSystem, active_tracing_system
from tinydancer.plots.routing import plot_confidence, plot_latency, plot_overview, plot_span_waterfall, plot_uncertainty
from tinydancer.routing.config import RouterConfig
from tinydancer.routing.requests import Candidate, RoutingDecision, RoutingRequest, RoutingResponse
from tinydancer.routing.router import Router

__version__ = "0.1.0"

__all__ = [
    "Candidate",
    "CircuitOpenError",
    "Collector",
    "CompatModelConfig",
    "CompatParams",
    "ConfigError",
    "DataError",
    "DecisionBatch",
    "ExporterStats",
    "FastGRNNConfig",
    "FastGRNNParams",
    "InferenceError",
    "InferenceTimeoutError",
    "InvalidInputError",
    "LogConfig",
    "LogEvent",
    "LogRecord",
    "MetricSample",
    "MetricsServer",
    "ModelLoadError",
    "RequestRecord",
    "Router",
    "RouterConfig",
    "RouterMetrics",
    "RoutingDecision",
    "RoutingRequest",
    "RoutingResponse",
    "RoutingSpan",
    "TinyDancerError",
    "TraceContext",
    "TracingConfig",
    "TracingSystem",
    "TrainingError",
    "__version__",
    "active_tracing_system",
    "compat_forward",
    "configure_logging",
    "datasets",
    "fastgrnn_predict",
    "init_compat_params",
    "init_fastgrnn_params",
    "load_compat_model",
    "load_fastgrnn",
    "make_router_logger",
    "plot_confidence",
    "plot_latency",
    "plot_overview",
    "plot_span_waterfall",
    "plot_uncertainty",
    "quantize_params",
    "read_asset",
    "save_compat_model",
    "save_fastgrnn",
    "write_assets",
]
