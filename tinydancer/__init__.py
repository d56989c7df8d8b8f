"""tinydancer: neural LLM routing research toolkit (JAX FastGRNN router with full observability)."""

from tinydancer.errors import (
    CircuitOpenError,
    ConfigError,
    DataError,
    InferenceError,
    InvalidInputError,
    ModelLoadError,
    TinyDancerError,
    TrainingError,
)

__version__ = "0.1.0"

__all__ = [
    "CircuitOpenError",
    "ConfigError",
    "DataError",
    "InferenceError",
    "InvalidInputError",
    "ModelLoadError",
    "TinyDancerError",
    "TrainingError",
    "__version__",
]
