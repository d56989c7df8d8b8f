"""tinydancer: neural LLM routing research toolkit (JAX FastGRNN router with full observability)."""

from tinydancer.collector import Collector, DecisionBatch, LogRecord, RequestRecord
from tinydancer.compat import CompatModelConfig, CompatParams, compat_forward, init_compat_params
from tinydancer.config import RouterConfig
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
from tinydancer.logs import LogConfig, LogEvent, configure_logging
from tinydancer.metrics import RouterMetrics
from tinydancer.modelio import load_compat_model, save_compat_model
from tinydancer.plots import plot_confidence, plot_latency, plot_overview, plot_uncertainty
from tinydancer.router import Router
from tinydancer.routing_spans import RoutingSpan
from tinydancer.trace_context import TraceContext
from tinydancer.tracing import TracingConfig, TracingSystem
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
    "InferenceError",
    "InferenceTimeoutError",
    "InvalidInputError",
    "LogConfig",
    "LogEvent",
    "LogRecord",
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
    "compat_forward",
    "configure_logging",
    "init_compat_params",
    "load_compat_model",
    "plot_confidence",
    "plot_latency",
    "plot_overview",
    "plot_uncertainty",
    "save_compat_model",
]
