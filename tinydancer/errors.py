"""Typed errors of tinydancer: a leaf module that imports nothing from the package.

Every error is a :class:`TinyDancerError`; where an error refines a builtin it also inherits it, so
``except ValueError`` keeps working for callers that do not know tinydancer.

Examples:
    >>> err = InvalidInputError("query_embedding: expected a 1-D vector, got shape (2, 3)")
    >>> isinstance(err, TinyDancerError), isinstance(err, ValueError)
    (True, True)
    >>> CircuitOpenError(retry_after=12.5).retry_after
    12.5
"""

from __future__ import annotations


class TinyDancerError(Exception):
    """Base class of every error raised on purpose by tinydancer."""

    #: Stable, low-cardinality name used as the ``error_type`` metric label.
    error_type: str = "internal_error"


class InvalidInputError(TinyDancerError, ValueError):
    """A routing request, candidate or argument is malformed; the message says expected versus got."""

    error_type = "invalid_input"


class ConfigError(TinyDancerError, ValueError):
    """A configuration value is out of its allowed range."""

    error_type = "invalid_config"


class ModelLoadError(TinyDancerError, ValueError):
    """A model file is missing, unreadable, of the wrong format, or holds invalid tensors."""

    error_type = "model_load_error"


class InferenceError(TinyDancerError, RuntimeError):
    """Model inference failed (an exception inside the model, or non-finite outputs)."""

    error_type = "inference_error"


class InferenceTimeoutError(InferenceError):
    """Model inference took longer than ``RouterConfig.inference_timeout_s`` (a slow call is a failure)."""

    error_type = "inference_timeout"


class CircuitOpenError(TinyDancerError, RuntimeError):
    """The circuit breaker is open: requests are rejected until ``retry_after`` seconds have passed."""

    error_type = "circuit_breaker_open"

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = float(retry_after)
        super().__init__(message or f"Circuit breaker is open; retry after {self.retry_after:.3f} s")


class DataError(TinyDancerError, ValueError):
    """A training or evaluation dataset is malformed (missing columns, bad values, too small)."""

    error_type = "data_error"


class TrainingError(TinyDancerError, RuntimeError):
    """Training failed, e.g. the loss diverged; the message names the epoch."""

    error_type = "training_error"


#: The fixed set of ``error_type`` label values (no free text ever becomes a label).
ERROR_TYPES: tuple[str, ...] = (
    "invalid_input",
    "invalid_config",
    "model_load_error",
    "inference_error",
    "inference_timeout",
    "circuit_breaker_open",
    "data_error",
    "training_error",
    "internal_error",
)
