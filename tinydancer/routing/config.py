"""Router configuration: a frozen, hashable dataclass validated on construction.

Examples:
    >>> cfg = RouterConfig(confidence_threshold=0.9)
    >>> cfg.max_uncertainty, cfg.circuit_breaker_threshold
    (0.15, 5)
    >>> RouterConfig(confidence_threshold=1.5)
    Traceback (most recent call last):
    ...
    tinydancer.errors.ConfigError: confidence_threshold: expected a finite number >= 0 and <= 1, got 1.5
"""

from __future__ import annotations

from dataclasses import dataclass

from tinydancer.model.prompt_scoring import UNCERTAINTY_MODES
from tinydancer.observability.route_spans import DEFAULT_MAX_CANDIDATE_SPANS
from tinydancer.validation import check_bool, check_choice, check_int, check_number, check_optional, check_text


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
        enable_quantization: accepted for compatibility with the original; no effect (the original
            does not use it either). Still validated: True or False.
        database_path: accepted for compatibility with the original; no effect (the original does not
            use it either). Still validated: None or a string.
        max_candidate_spans: candidates that get per-candidate spans per sampled request (the rest are
            counted on the ``model_inference`` span); default 10
            (:data:`~tinydancer.observability.route_spans.DEFAULT_MAX_CANDIDATE_SPANS`).
        inference_timeout_s: model inference slower than this fails the request with
            ``InferenceTimeoutError`` and counts towards opening the breaker; None = no limit.
        operating_point: a prompt router's operating point to start with (None: the artifact's default).
        prompt_uncertainty: how a prompt router computes uncertainty: ``"auto"``, ``"conformal"``,
            ``"mutual_information"`` or ``"original"`` (:mod:`tinydancer.model.prompt_scoring`).
        max_prompt_chars: longer prompts are rejected with ``InvalidInputError``.
        record_prompts: keep each prompt's text in the collector's decisions (prompts are user data: off
            by default; the length and a hash are always kept).
        outcome_window: labelled requests (and routed prompts) the live quality series cover
            (:mod:`tinydancer.observability.outcomes`).
        drift_window: recent prompts compared with the artifact's calibration rows
            (:mod:`tinydancer.observability.drift`).
        exploration_rate: share of prompts routed to a model drawn at random (each with probability 1/2,
            seeded by ``seed``), the propensity of every decision recorded, so that a replay can estimate
            another policy off-policy; 0 (the default) routes every prompt by its threshold.
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
    max_candidate_spans: int = DEFAULT_MAX_CANDIDATE_SPANS
    inference_timeout_s: float | None = None
    operating_point: str | None = None
    prompt_uncertainty: str = "auto"
    max_prompt_chars: int = 100_000
    record_prompts: bool = False
    outcome_window: int = 1000
    drift_window: int = 1000
    exploration_rate: float = 0.0

    def __post_init__(self) -> None:
        check_text("model_path", self.model_path)
        check_number("confidence_threshold", self.confidence_threshold, low=0, high=1)
        check_number("max_uncertainty", self.max_uncertainty, low=0, high=1)
        check_bool("enable_circuit_breaker", self.enable_circuit_breaker)
        check_int("circuit_breaker_threshold", self.circuit_breaker_threshold, low=1)
        check_number("circuit_breaker_reset_timeout_s", self.circuit_breaker_reset_timeout_s, low=0)
        check_int("circuit_breaker_half_open_probes", self.circuit_breaker_half_open_probes, low=1)
        check_int("seed", self.seed, low=0, high=2**63 - 1)
        check_bool("enable_quantization", self.enable_quantization)
        check_optional(check_text, "database_path", self.database_path, allow_empty=True)
        check_int("max_candidate_spans", self.max_candidate_spans, low=0)
        check_optional(check_number, "inference_timeout_s", self.inference_timeout_s, low=0, low_open=True)
        check_optional(check_text, "operating_point", self.operating_point)
        check_choice("prompt_uncertainty", self.prompt_uncertainty, UNCERTAINTY_MODES)
        check_int("max_prompt_chars", self.max_prompt_chars, low=1)
        check_bool("record_prompts", self.record_prompts)
        check_int("outcome_window", self.outcome_window, low=1)
        check_int("drift_window", self.drift_window, low=1)
        check_number("exploration_rate", self.exploration_rate, low=0, high=1)
