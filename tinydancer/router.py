"""The Router: the stateful shell around the pure, jitted route kernel.

It holds the device model (swapped atomically on reload), the circuit breaker and the clock.

Examples:
    >>> import numpy as np, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     router = Router(RouterConfig(model_path="/nonexistent/model.safetensors", seed=3))
    >>> request = RoutingRequest.from_arrays(np.ones(8), np.eye(8)[:3], ids=["a", "b", "c"])
    >>> response = router.route(request, now=1_700_000_000)
    >>> response.candidates_processed, len(response.decisions), router.circuit_breaker_state
    (3, 3, 'closed')
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinydancer.breaker import BreakerPolicy, CircuitBreaker, Ticket
from tinydancer.compat import CompatModelConfig, init_compat_params
from tinydancer.config import RouterConfig
from tinydancer.engine import DeviceModel, run_route_kernel
from tinydancer.errors import InferenceError, ModelLoadError
from tinydancer.modelio import load_compat_model
from tinydancer.packing import PackedRequest, pack_request
from tinydancer.types import RoutingRequest, RoutingResponse

#: Signature of the model-inference step; replaceable for fault injection.
InferenceFn = Callable[[DeviceModel, PackedRequest, float, float], tuple[np.ndarray, np.ndarray, np.ndarray]]


def default_inference(
    model: DeviceModel, packed: PackedRequest, threshold: float, max_uncertainty: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the jitted route kernel on a packed request."""
    return run_route_kernel(
        model,
        packed.query,
        packed.embeddings,
        packed.age_s,
        packed.access_count,
        packed.success_rate,
        packed.metadata_match,
        threshold,
        max_uncertainty,
    )


def _load_device_model(path: Path) -> DeviceModel:
    params, config = load_compat_model(path)
    if config.input_dim != 5:
        raise ModelLoadError(f"model file {str(path)!r} has input_dim {config.input_dim}; the router's features need 5")
    return DeviceModel.from_params(params, config)


class Router:
    """Routes requests to a lightweight or a powerful model.

    Args:
        config: router configuration.
        clock: wall clock in Unix seconds (``now`` of a route call defaults to it; the breaker uses it).
        inference: the model-inference step (default: the jitted kernel); tests inject faults here.
    """

    def __init__(
        self,
        config: RouterConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        inference: InferenceFn = default_inference,
    ) -> None:
        self.config = config or RouterConfig()
        self._clock = clock
        self._inference = inference
        self._reload_lock = threading.Lock()
        self._model = self._initial_model()
        policy = BreakerPolicy(
            threshold=self.config.circuit_breaker_threshold,
            reset_timeout_s=self.config.circuit_breaker_reset_timeout_s,
            probes=self.config.circuit_breaker_half_open_probes,
            enabled=self.config.enable_circuit_breaker,
        )
        self._breaker = CircuitBreaker(policy, clock=clock)

    def _initial_model(self) -> DeviceModel:
        path = Path(self.config.model_path)
        if not path.exists():
            warnings.warn(
                f"model file {str(path)!r} not found: using a random model (seed {self.config.seed})",
                RuntimeWarning,
                stacklevel=3,
            )
            config = CompatModelConfig()
            return DeviceModel.from_params(init_compat_params(config, self.config.seed), config)
        return _load_device_model(path)

    @property
    def model(self) -> DeviceModel:
        """The model serving now."""
        return self._model

    @property
    def circuit_breaker_state(self) -> str:
        """'closed' | 'half_open' | 'open'; reading it has no side effects."""
        return self._breaker.state

    def reload_model(self) -> None:
        """Hot-reload the model from ``config.model_path``; atomic, and a bad file keeps the old model.

        Raises:
            ModelLoadError: the file is missing or invalid; the old model keeps serving.
        """
        with self._reload_lock:
            self._model = _load_device_model(Path(self.config.model_path))  # one reference swap: atomic

    def route(self, request: RoutingRequest, now: float | None = None) -> RoutingResponse:
        """Score every candidate and decide lightweight versus powerful.

        Args:
            request: the query and its candidates.
            now: Unix seconds used for candidate ages; None reads the clock. Whole seconds, as the original.

        Returns:
            Decisions for every candidate, sorted by confidence descending.

        Raises:
            CircuitOpenError: the breaker is open (``retry_after`` says for how long).
            InvalidInputError: the request is malformed.
            InferenceError: the model failed (counts towards opening the breaker).
        """
        start = time.perf_counter()
        model = self._model  # one read: the whole request sees one model
        ticket = self._breaker.admit()
        try:
            now_s = float(np.floor(self._clock() if now is None else now))
            packed = pack_request(request, now_s)
        except BaseException:
            self._breaker.release(ticket)
            raise
        feature_done = time.perf_counter()
        confidence, uncertainty, light = self._infer(model, packed, ticket)
        order = np.argsort(-confidence, kind="stable")
        return RoutingResponse(
            candidate_ids=tuple(packed.ids[i] for i in order),
            confidence=confidence[order],
            uncertainty=uncertainty[order],
            use_lightweight=light[order],
            inference_time_us=(time.perf_counter() - start) * 1e6,
            candidates_processed=len(packed.ids),
            feature_time_us=(feature_done - start) * 1e6,
        )

    def _infer(
        self, model: DeviceModel, packed: PackedRequest, ticket: Ticket
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            confidence, uncertainty, light = self._inference(
                model, packed, self.config.confidence_threshold, self.config.max_uncertainty
            )
            if not np.isfinite(confidence).all():
                raise InferenceError("model produced NaN or infinite confidences")
        except Exception as exc:
            self._breaker.failure(ticket)
            if isinstance(exc, InferenceError):
                raise
            raise InferenceError(f"model inference failed: {type(exc).__name__}: {exc}") from exc
        self._breaker.success(ticket)
        return confidence, uncertainty, light
