"""tinydancer: neural LLM routing research toolkit (JAX FastGRNN router with full observability)."""

from tinydancer import datasets
from tinydancer.collector import Collector, DecisionBatch, LogRecord, RequestRecord
from tinydancer.compat import CompatModelConfig, CompatParams, compat_forward, init_compat_params
from tinydancer.compression import quantize_params
from tinydancer.config import RouterConfig
from tinydancer.deploy import read_asset, write_assets
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
from tinydancer.fastgrnn import FastGRNNConfig, FastGRNNParams, fastgrnn_predict, init_fastgrnn_params
from tinydancer.fastgrnn_io import load_fastgrnn, save_fastgrnn
from tinydancer.logs import LogConfig, LogEvent, configure_logging, make_router_logger
from tinydancer.metrics import MetricSample, RouterMetrics
from tinydancer.metrics_server import MetricsServer
from tinydancer.modelio import load_compat_model, save_compat_model
from tinydancer.plots import plot_confidence, plot_latency, plot_overview, plot_span_waterfall, plot_uncertainty
from tinydancer.router import Router
from tinydancer.routing_spans import RoutingSpan
from tinydancer.span_export import ExporterStats
from tinydancer.trace_context import TraceContext
from tinydancer.tracing import TracingConfig, TracingSystem, active_tracing_system
from tinydancer.types import Candidate, RoutingDecision, RoutingRequest, RoutingResponse

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
