"""Router configuration: a frozen, hashable dataclass validated on construction.

Examples:
    >>> cfg = RouterConfig(confidence_threshold=0.9)
    >>> cfg.max_uncertainty, cfg.circuit_breaker_threshold
    (0.15, 5)
    >>> RouterConfig(confidence_threshold=1.5)
    Traceback (most recent call last):
    ...
    tinydancer.errors.ConfigError: confidence_threshold must be a finite number in [0, 1], got 1.5
"""

from __future__ import annotations

from dataclasses import dataclass

from tinydancer.errors import ConfigError
from tinydancer.validation import finite_number


def _check_unit_interval(name: str, value: float) -> None:
    if not finite_number(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a finite number in [0, 1], got {value!r}")


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class RouterConfig:
    """Configuration of a :class:`tinydancer.Router` (names and defaults of the original).

    Attributes:
        model_path: safetensors model file; a missing file at start-up gives a seeded random model.
        confidence_threshold: route to the lightweight model only when confidence >= this.
        max_uncertainty: ... and uncertainty <= this.
        enable_circuit_breaker: reject requests after repeated inference failures.
        circuit_breaker_threshold: consecutive inference failures that open the breaker.
        circuit_breaker_reset_timeout_s: seconds the breaker stays open before probing (half-open).
        circuit_breaker_half_open_probes: successful probes needed to close it again.
        seed: seed of the random model used when ``model_path`` does not exist.
        enable_quantization: accepted for compatibility with the original (unused there too).
        database_path: accepted for compatibility with the original (unused there too).
        max_candidate_spans: per-candidate spans emitted per sampled request (the rest are counted).
        inference_timeout_s: model inference slower than this fails the request with
            ``InferenceTimeoutError`` and counts towards opening the breaker; None = no limit.
    """

    model_path: str = "./models/fastgrnn.safetensors"
    confidence_threshold: float = 0.85
    max_uncertainty: float = 0.15
    enable_circuit_breaker: bool = True
    circuit_breaker_threshold: int = 5
    circuit_breaker_reset_timeout_s: float = 60.0
    circuit_breaker_half_open_probes: int = 3
    seed: int = 0
    enable_quantization: bool = True
    database_path: str | None = None
    max_candidate_spans: int = 10
    inference_timeout_s: float | None = None

    def __post_init__(self) -> None:
        _check_unit_interval("confidence_threshold", self.confidence_threshold)
        _check_unit_interval("max_uncertainty", self.max_uncertainty)
        _check_positive_int("circuit_breaker_threshold", self.circuit_breaker_threshold)
        _check_positive_int("circuit_breaker_half_open_probes", self.circuit_breaker_half_open_probes)
        timeout = self.circuit_breaker_reset_timeout_s
        if not finite_number(timeout) or timeout < 0:
            raise ConfigError(f"circuit_breaker_reset_timeout_s must be a finite number >= 0, got {timeout!r}")
        if not isinstance(self.model_path, str) or not self.model_path or "\x00" in self.model_path:
            raise ConfigError(f"model_path must be a non-empty string without NUL bytes, got {self.model_path!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be an integer in [0, 2**63), got {self.seed!r}")
        for flag in ("enable_circuit_breaker", "enable_quantization"):
            if not isinstance(getattr(self, flag), bool):  # "no" would silently mean True
                raise ConfigError(f"{flag} must be True or False, got {getattr(self, flag)!r}")
        if self.database_path is not None and not isinstance(self.database_path, str):
            raise ConfigError(f"database_path must be a string or None, got {self.database_path!r}")
        if isinstance(self.max_candidate_spans, bool) or not isinstance(self.max_candidate_spans, int):
            raise ConfigError(f"max_candidate_spans must be an integer >= 0, got {self.max_candidate_spans!r}")
        limit = self.inference_timeout_s
        if limit is not None and (not finite_number(limit) or limit <= 0):
            raise ConfigError(f"inference_timeout_s must be None or a finite number > 0, got {limit!r}")
        if self.max_candidate_spans < 0:
            raise ConfigError(f"max_candidate_spans must be an integer >= 0, got {self.max_candidate_spans!r}")
