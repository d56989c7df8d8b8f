"""tinydancer: neural LLM routing research toolkit (JAX FastGRNN router with full observability)."""

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
from tinydancer.modelio import load_compat_model, save_compat_model
from tinydancer.router import Router
from tinydancer.types import Candidate, RoutingDecision, RoutingRequest, RoutingResponse

__version__ = "0.1.0"

__all__ = [
    "Candidate",
    "CircuitOpenError",
    "CompatModelConfig",
    "CompatParams",
    "ConfigError",
    "DataError",
    "InferenceError",
    "InferenceTimeoutError",
    "InvalidInputError",
    "ModelLoadError",
    "Router",
    "RouterConfig",
    "RoutingDecision",
    "RoutingRequest",
    "RoutingResponse",
    "TinyDancerError",
    "TrainingError",
    "__version__",
    "compat_forward",
    "init_compat_params",
    "load_compat_model",
    "save_compat_model",
]
