"""The Router: the stateful shell around the pure, jitted route kernel.

It holds the device model (swapped atomically on reload), the circuit breaker, the clock and the
observability objects: a private Prometheus registry (:class:`RouterMetrics`), a structlog logger, a
tracer, and the in-memory :class:`Collector` that turns all of it into pandas DataFrames.

Span tree of one route (children only when the request's span is recording, i.e. sampled; names and
attributes in :mod:`tinydancer.observability.route_spans`, whose :class:`RoutingSpan` starts them)::

    routing_request (SERVER) -> circuit_breaker_check, feature_engineering,
                                model_inference -> per candidate: model_inference, uncertainty_estimation

Every metric, span attribute and collector row that names a model says what served the request:
``model_type`` is ``"original"`` for the original's model, ``"fastgrnn"`` for a FastGRNN checkpoint on
candidate features, ``"fastgrnn_prompt"`` for a FastGRNN prompt router and ``"scorer_prompt"`` for a scorer
router (:data:`MODEL_TYPES`), and follows a hot reload that switches kinds.

A prompt router (a ``tinydancer-prompt-router-v1`` artifact, :mod:`tinydancer.model.prompt_artifact`, or a
``tinydancer-scorer-router-v1`` artifact serving any scorer, :mod:`tinydancer.model.scorer_router`) is
served by :meth:`Router.route_prompt` and :meth:`Router.route_prompts`; each prompt is one request in the
metrics and the collectors. Its span tree::

    routing_request (SERVER) -> circuit_breaker_check, feature_engineering (tokenise),
                                model_inference (embed, FastGRNN, calibrate) -> uncertainty_estimation

``route()`` on a prompt router and ``route_prompt()`` on a candidate router raise ``InvalidInputError``
saying which to call (counted as a failed request).

A Collector belongs to one Router: handing the same one to a second Router raises ``ConfigError``
(see :meth:`tinydancer.observability.collector.Collector.attach`).

Examples:
    >>> import numpy as np, warnings
    >>> from tinydancer.observability.logs import LogConfig
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     router = Router(RouterConfig(model_path="/nonexistent/model.safetensors", seed=3),
    ...                     log_config=LogConfig(renderer="none"))
    >>> request = RoutingRequest.from_arrays(np.ones(8), np.eye(8)[:3], ids=["a", "b", "c"])
    >>> response = router.route(request, now=1_700_000_000)
    >>> response.candidates_processed, len(response.decisions), router.circuit_breaker_state
    (3, 3, 'closed')
    >>> len(router.collector.decisions()), 'tiny_dancer_routing_requests_total{status="success"} 1.0' in \
router.export_metrics()
    (3, True)
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
from opentelemetry import trace

from tinydancer.errors import (
    CircuitOpenError,
    ConfigError,
    InferenceError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelLoadError,
)
from tinydancer.model.family import model_from_file
from tinydancer.model.original import CompatModelConfig, init_compat_params
from tinydancer.model.safetensors_file import read_safetensors
from tinydancer.model.scorer_router import is_router_file, router_from_file
from tinydancer.model.served_fastgrnn import ROUTER_INPUT_DIM
from tinydancer.observability.collector import Collector, DecisionBatch, RequestRecord
from tinydancer.observability.drift import DriftMonitor
from tinydancer.observability.logs import (
    LogConfig,
    LogEvent,
    RouteLogs,
    RouterLogger,
    defers_route_logs,
    follow_default_log_config,
    log_candidate_results,
    log_circuit_open,
    log_request_completed,
    log_request_failed,
    log_request_started,
    log_router_initialized,
    make_router_logger,
    started_record,
)
from tinydancer.observability.metrics import BREAKER_STATES, RouterMetrics
from tinydancer.observability.metrics_server import MetricsServer, WsgiApp
from tinydancer.observability.outcomes import OutcomeMonitor
from tinydancer.observability.route_spans import (
    CANDIDATE_SPANS_DROPPED,
    RequestScope,
    RoutingSpan,
    emit_candidate_spans,
    span_ids,
)
from tinydancer.observability.trace_context import TraceContext
from tinydancer.observability.tracing import TracingSystem, get_tracer
from tinydancer.routing.breaker import BreakerPolicy, CircuitBreaker
from tinydancer.routing.config import RouterConfig
from tinydancer.routing.kernel import DeviceModel, run_route
from tinydancer.routing.packing import PackedRequest, floor_unix_seconds, pack_request
from tinydancer.routing.prompt_serving import PromptServing, Served
from tinydancer.routing.prompts import (
    PROMPT_MODEL_TYPE,
    SCORER_MODEL_TYPE,
    PromptModel,
)
from tinydancer.routing.requests import RoutingRequest, RoutingResponse

if TYPE_CHECKING:
    pass

#: Signature of the model-inference step; replaceable for fault injection.
InferenceFn = Callable[[DeviceModel, PackedRequest, float, float], tuple[np.ndarray, np.ndarray, np.ndarray]]
#: ``model_type`` label (metrics, spans, collector rows) of what serves, by the kind of its model: the
#: original's model, or a trained FastGRNN checkpoint on the same five features.
MODEL_TYPES: Mapping[str, str] = MappingProxyType(
    {"compat": "original", "fastgrnn": "fastgrnn", "prompt": PROMPT_MODEL_TYPE, "scorer_prompt": SCORER_MODEL_TYPE}
)


def model_type_of(model: Served) -> str:
    """The ``model_type`` label of a model: ``"original"``, ``"fastgrnn"`` or ``"fastgrnn_prompt"``.

    The one place the router reads what kind of model it holds.

    Raises:
        ModelLoadError: the model is of a kind without a label.

    Examples:
        >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
        >>> model_type_of(DeviceModel.from_params(init_compat_params(CompatModelConfig(), 0), CompatModelConfig()))
        'original'
    """
    kind = model.kind
    label = MODEL_TYPES.get(kind)
    if label is None:
        raise ModelLoadError(f"model kind: expected one of {tuple(MODEL_TYPES)}, got {kind!r}")
    return label


def default_inference(
    model: DeviceModel, packed: PackedRequest, threshold: float, max_uncertainty: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the route on a packed request (``run_route``: the compiled host twin for up to 1,024 candidates)."""
    return run_route(model, packed.query, packed.embeddings, packed.columns, threshold, max_uncertainty, packed.rows)


def _checked_outputs(outputs: object, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate what an injected inference step returned: three [n] arrays, scores finite and in [0, 1].

    A broken hook (or an injected fault) must fail the request as an inference error that counts
    towards the breaker, never reach the response, the metrics or the collectors. The default step
    is not checked here: :func:`run_route_kernel` checks its own outputs.
    """
    try:
        confidence, uncertainty, light = (np.asarray(a) for a in outputs)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise InferenceError(
            f"model inference returned {type(outputs).__name__}, expected (confidence, uncertainty, use_lightweight)"
        ) from exc
    shapes = (confidence.shape, uncertainty.shape, light.shape)
    if any(shape != (n,) for shape in shapes):
        raise InferenceError(f"model inference returned shapes {shapes}, expected ({n},) each for {n} candidates")
    try:
        scores = np.stack([confidence, uncertainty]).astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InferenceError(f"model inference returned non-numeric scores ({exc})") from exc
    if not np.isfinite(scores).all():
        raise InferenceError("model produced NaN or infinite confidences or uncertainties")
    if ((scores < 0) | (scores > 1)).any():
        raise InferenceError("model produced confidences or uncertainties outside [0, 1]")
    # Copies: the response, the collector and the metrics never share arrays a hook may change later.
    return confidence.astype(np.float32), uncertainty.astype(np.float32), light.astype(bool)


def _checked_hook(hook: InferenceFn) -> InferenceFn:
    """``hook`` with its outputs validated by :func:`_checked_outputs` (the only check an injected step gets).

    A hook's outputs are checked even when they are the kernel's own ``KernelOutputs`` passed through:
    the router cannot tell those from hand-made ones.
    """

    def checked(
        model: DeviceModel, packed: PackedRequest, threshold: float, max_uncertainty: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _checked_outputs(hook(model, packed, threshold, max_uncertainty), len(packed.ids))

    return checked


def _load_served(path: Path, uncertainty: str) -> Served:
    """One read of ``path``: a prompt router, the original's model file, or a FastGRNN on the five features."""
    file = read_safetensors(path)
    if is_router_file(file):
        return PromptModel(router_from_file(file), uncertainty, path)
    params, config = model_from_file(file)
    if config.input_dim != ROUTER_INPUT_DIM:
        raise ModelLoadError(
            f"model file {str(path)!r} has input_dim {config.input_dim}; the router's candidate features need "
            f"{ROUTER_INPUT_DIM}"
        )
    return DeviceModel.from_params(params, config)


class Router(PromptServing):
    """Routes requests to a lightweight or a powerful model, with metrics, spans, logs and collectors.

    Args:
        config: router configuration.
        clock: wall clock in Unix seconds (``now`` of a route call defaults to it; the breaker uses it).
        inference: the model-inference step (default: the jitted kernel, which checks its own
            outputs); tests inject faults here. An injected step's outputs are checked: anything but
            three [N] arrays of finite scores in [0, 1] fails the request as an ``InferenceError``
            that counts towards the breaker.
        tracing: a TracingSystem or TracerProvider; None follows the process-wide ``TracingSystem.init()``.
        log_config: logging settings; None follows the process default (``configure_logging``, also
            when it is called after this router was made).
        collector: the in-memory collector (default: a new one with default capacities). It becomes
            this router's own: it reads this router's metrics.

    Raises:
        ConfigError: ``collector`` already belongs to another Router (give each router its own), or
            was made with a ``metric_source`` of its own.
        ModelLoadError: ``config.model_path`` exists but is not a valid model file.
    """

    def __init__(
        self,
        config: RouterConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        inference: InferenceFn = default_inference,
        tracing: TracingSystem | trace.TracerProvider | None = None,
        log_config: LogConfig | None = None,
        collector: Collector | None = None,
    ) -> None:
        self.config = config or RouterConfig()
        self._clock = clock
        # The default step's outputs are checked inside the kernel; an injected step's here, once.
        self._inference = inference if inference is default_inference else _checked_hook(inference)
        self._tracing = tracing
        self._tracer = get_tracer(tracing)
        self._reload_lock = threading.Lock()
        model, random_model = self._initial_model()
        # (model, its model_type label), swapped as one reference on reload: a request reads both at once.
        self._serving: tuple[Served, str] = (model, model_type_of(model))
        self.metrics = RouterMetrics(self._serving[1])
        # (name, threshold) of the operating point in force (prompt routers), swapped as one reference.
        self._operating: tuple[str, float] = ("", float("nan"))
        self._outcomes: OutcomeMonitor | None = None  # made when a prompt router first serves
        self._drift: DriftMonitor | None = None  # likewise
        self._exploration = np.random.default_rng(self.config.seed)  # exploration_rate's draws, seeded
        self._exploration_lock = threading.Lock()
        if isinstance(model, PromptModel):
            name, point = model.artifact.resolve_operating_point(self.config.operating_point)
            self._operating = (name, point.threshold)
            self._publish_operating_point(model, name)
            self._watch_drift(model)
        self.collector = collector if collector is not None else Collector(clock=clock)
        registry = self.metrics.registry  # the source holds the registry, not the router: no reference cycle
        self.collector.attach(f"Router at {id(self):#x}", lambda: registry)
        if log_config is None:  # the process default, now and after every later configure_logging()
            follow_default_log_config(self._use_log_config)
        else:
            self._use_log_config(log_config)
        log_router_initialized(
            self._log, self.config.circuit_breaker_threshold if self.config.enable_circuit_breaker else None
        )
        if random_model:
            path = str(Path(self.config.model_path))
            self._log.warning(LogEvent.MODEL_PATH_NOT_FOUND, model_path=path, seed=self.config.seed)
        policy = BreakerPolicy(
            threshold=self.config.circuit_breaker_threshold,
            reset_timeout_s=self.config.circuit_breaker_reset_timeout_s,
            probes=self.config.circuit_breaker_half_open_probes,
            enabled=self.config.enable_circuit_breaker,
        )
        breaker = self._breaker = CircuitBreaker(policy, clock=clock, on_transition=self._breaker_changed)
        # The gauge reads the breaker at scrape time, so it follows the time-driven open -> half-open too.
        self.metrics.bind_breaker_state(lambda: BREAKER_STATES[breaker.state])

    def _initial_model(self) -> tuple[Served, bool]:
        """The configured model, or a seeded random one and True when its file does not exist (logged later)."""
        path = Path(self.config.model_path)
        if not path.exists():
            warnings.warn(
                f"model file {str(path)!r} not found: using a random model (seed {self.config.seed})",
                RuntimeWarning,
                stacklevel=3,
            )
            config = CompatModelConfig()
            return DeviceModel.from_params(init_compat_params(config, self.config.seed), config), True
        return _load_served(path, self.config.prompt_uncertainty), False

    def _use_log_config(self, config: LogConfig) -> None:
        # One reference swap (atomic): a route reads (logger, whether it hands its INFO records over as one
        # RouteLogs) once, so each request logs wholly through the old setting or the new one.
        logger = make_router_logger(config, sink=self.collector.record_log)
        self._logging = (logger, defers_route_logs(config))
        self._log = logger  # the cold paths' logger (breaker changes, reloads, warnings)

    def _breaker_changed(self, old: str, new: str) -> None:
        level = self._log.warning if new != "closed" else self._log.info
        level(LogEvent.CIRCUIT_STATE_CHANGED, from_state=old, to_state=new)

    @property
    def model(self) -> Served:
        """The model serving now: a ``DeviceModel`` (candidates) or a ``PromptModel`` (prompts)."""
        return self._serving[0]

    @property
    def model_type(self) -> str:
        """The ``model_type`` label of the model serving now (a value of :data:`MODEL_TYPES`)."""
        return self._serving[1]

    @property
    def circuit_breaker_state(self) -> str:
        """'closed' | 'half_open' | 'open'; reading it has no side effects."""
        return self._breaker.state

    def reload_model(self) -> None:
        """Hot-reload the model from ``config.model_path``; atomic, and a bad file keeps the old model.

        Raises:
            ModelLoadError: the file is missing or invalid; the old model keeps serving (and
                ``errors_total{error_type="model_load_error"}`` counts it).
        """
        with self._reload_lock:
            try:
                model = _load_served(Path(self.config.model_path), self.config.prompt_uncertainty)
                serving = (model, model_type_of(model))
            except (ModelLoadError, ConfigError) as exc:
                error = exc if isinstance(exc, ModelLoadError) else ModelLoadError(str(exc))
                self.metrics.record_exception(error)
                self._log.error(LogEvent.MODEL_RELOAD_FAILED, error_type=error.error_type, error=str(exc))
                raise error from exc
            if isinstance(model, PromptModel):  # keep the operating point in force if the new artifact has it
                current = self._operating[0]
                keep = current if current in model.artifact.operating_points else None
                name, point = model.artifact.resolve_operating_point(keep)
                changed = (name, point.threshold) != self._operating
                self._serving = serving
                if changed:  # logged and published
                    self._set_operating(name, point.threshold)
                else:  # the new artifact's targets and coverage level
                    self._publish_operating_point(model, name)
                self._watch_drift(model)
            self._serving = serving  # one reference swap: atomic; later requests record the new model_type
        self._log.info(LogEvent.MODEL_RELOADED, model_path=self.config.model_path, model_type=serving[1])

    def export_metrics(self) -> str:
        """Every metric of this router in the Prometheus text exposition format."""
        return self.metrics.export()

    def serve_metrics(self, host: str = "127.0.0.1", port: int = 9090) -> MetricsServer:
        """Serve ``/metrics`` over HTTP (loopback by default); ``.stop()`` on the handle ends it."""
        return self.metrics.serve(host, port)

    def metrics_wsgi_app(self) -> WsgiApp:
        """A WSGI app serving this router's metrics, to mount in an existing server."""
        return self.metrics.wsgi_app()

    def route(
        self, request: RoutingRequest, now: float | None = None, traceparent: str | None = None
    ) -> RoutingResponse:
        """Score every candidate and decide lightweight versus powerful.

        Args:
            request: the query and its candidates.
            now: Unix seconds used for candidate ages; None reads the clock. Whole seconds, as the original.
            traceparent: a W3C ``traceparent`` header; the request's span joins that trace.

        Returns:
            Decisions for every candidate, sorted by confidence descending.

        Raises:
            CircuitOpenError: the breaker is open (``retry_after`` says for how long).
            InvalidInputError: the request (or the traceparent) is malformed.
            InferenceError: the model failed (counts towards opening the breaker).
        """
        start = time.perf_counter()
        request_id, started_at = self.collector.next_request_id(), self._clock()  # records stamp the start
        count = len(request) if isinstance(request, RoutingRequest) else 0
        try:
            parent = None if traceparent is None else TraceContext.from_w3c_traceparent(traceparent).to_otel_context()
        except Exception as exc:
            self._record_failure(exc, request_id, started_at, count, start, None)
            raise
        scope = RequestScope(count, self._tracer, parent)  # sampled spans go to the collector, which keeps them
        log, defer_logs = self._logging
        logged_start: float | None = None  # when "Processing routing request" is deferred: its Unix time
        try:
            served = self._serving  # one read: the whole request sees one model and its label
            if isinstance(served[0], PromptModel):
                raise InvalidInputError(
                    "route: this router serves a prompt router; call route_prompt(text) or route_prompts(texts)"
                )
            if defer_logs:
                logged_start = time.time()
            else:
                log_request_started(log, count)
            response, inference_s = self._route(request, served[0], served[1], log, count, now, start, scope.span)
            self._record_success(
                response, served[1], inference_s, request_id, started_at, scope.span, log, logged_start
            )
        except Exception as exc:  # recorded inside the span, so error logs carry its trace id
            if logged_start is not None:  # the deferred start record, before the failure's
                self.collector.record_log(started_record(count, logged_start, *span_ids(scope.span)))
            self._record_failure(exc, request_id, started_at, count, start, scope.span)
            scope.fail(exc)
            raise
        finally:
            self.collector.record_spans(scope.close())
        return response

    def _route(
        self,
        request: RoutingRequest,
        model: DeviceModel,
        model_type: str,
        log: RouterLogger,
        count: int,
        now: float | None,
        start: float,
        span: trace.Span,
    ) -> tuple[RoutingResponse, float]:
        """The response and the inference seconds; records nothing itself but the DEBUG ``features`` record."""
        recording = span.is_recording()
        tracer, breaker = self._tracer, self._breaker
        # Spans wrap the steps only when the request is sampled: an unsampled one enters no context manager.
        if recording:
            with RoutingSpan.circuit_breaker_check(breaker.state, tracer):
                ticket = breaker.admit()
        else:
            ticket = breaker.admit()
        # The ticket's whole life is here: it is released if the request never reaches inference (bad
        # input), reported failed if inference fails, successful otherwise -- in the one `finally`.
        settle = breaker.release
        # Stored candidates are read in place by the host route: their store stays locked until inference ends.
        store_lock = self._store_lock(request, model)
        if store_lock is not None:
            store_lock.acquire()
        in_place = store_lock is not None
        try:
            now_s = floor_unix_seconds(self._clock() if now is None else now)
            if recording:
                with RoutingSpan.feature_engineering(count, tracer) as fe:
                    packed = pack_request(request, now_s, in_place=in_place)
                    if len(packed.ids) != count:  # what was packed (count is 0 for candidates without a len)
                        fe.set_attribute("batch_size", len(packed.ids))
            else:
                packed = pack_request(request, now_s, in_place=in_place)
            n = len(packed.ids)
            log.debug(LogEvent.FEATURES, batch_size=n)
            feature_done = time.perf_counter()
            try:
                if recording:
                    confidence, uncertainty, light = self._infer_traced(model, model_type, packed, tracer)
                else:
                    confidence, uncertainty, light = self._infer(model, packed)
            except InferenceError:  # an interrupt is no model failure: its ticket is released
                settle = breaker.failure
                raise
            settle = breaker.success
        finally:
            settle(ticket)
            if store_lock is not None:
                store_lock.release()
        inference_done = time.perf_counter()
        if n == 1:  # nothing to sort (the outputs are this request's own: a hook's are copied when checked)
            ids = tuple(packed.ids)
        else:
            order = (-confidence).argsort(kind="stable")
            ids = tuple(map(packed.ids.__getitem__, order.tolist()))
            confidence, uncertainty, light = confidence[order], uncertainty[order], light[order]
        response = RoutingResponse(
            candidate_ids=ids,
            confidence=confidence,
            uncertainty=uncertainty,
            use_lightweight=light,
            inference_time_us=(time.perf_counter() - start) * 1e6,
            candidates_processed=n,
            feature_time_us=(feature_done - start) * 1e6,
        )
        return response, inference_done - feature_done

    def _store_lock(self, request: RoutingRequest, model: DeviceModel) -> threading.RLock | None:
        """The lock of the store whose rows this request's inference reads in place (the default inference on
        the host route), or None: every other request gets its own arrays."""
        if type(request) is not RoutingRequest or self._inference is not default_inference or model.host is None:
            return None
        selection = request.store_selection
        return None if selection is None else selection.store.lock

    def _infer_traced(
        self, model: DeviceModel, model_type: str, packed: PackedRequest, tracer: trace.Tracer
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_infer` inside the ``model_inference`` span, with the per-candidate spans (a sampled request)."""
        n, wall_start = len(packed.ids), time.time_ns()
        with RoutingSpan.model_inference(n, model_type, tracer) as inference_span:
            confidence, uncertainty, light = self._infer(model, packed)
            dropped = emit_candidate_spans(
                tracer, inference_span, packed.ids, confidence, uncertainty, light,
                wall_start, time.time_ns(), self.config.max_candidate_spans,
            )  # fmt: skip
            if dropped:
                inference_span.set_attribute(CANDIDATE_SPANS_DROPPED, dropped)
        return confidence, uncertainty, light

    def _infer(self, model: DeviceModel, packed: PackedRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the inference step; every way it fails (a timeout too) comes out as an ``InferenceError``."""
        started = self._clock()
        try:
            outputs = self._inference(model, packed, self.config.confidence_threshold, self.config.max_uncertainty)
            limit = self.config.inference_timeout_s
            if limit is not None and (took := self._clock() - started) > limit:
                raise InferenceTimeoutError(f"model inference took {took:.3f} s, more than inference_timeout_s={limit}")
        except InferenceError:
            raise
        except Exception as exc:
            raise InferenceError(f"model inference failed: {type(exc).__name__}: {exc}") from exc
        return outputs

    def _record_success(
        self,
        response: RoutingResponse,
        model_type: str,
        inference_s: float,
        request_id: int,
        timestamp: float,
        span: trace.Span,
        log: RouterLogger,
        logged_start: float | None,
    ) -> None:
        """Everything a successful request records: metrics, span attributes, collector rows, logs.

        ``logged_start``: None when ``Processing routing request`` was logged already, else its Unix time: the
        route's two INFO records go to the collector as one :class:`RouteLogs`.
        """
        n, light = response.candidates_processed, int(np.count_nonzero(response.use_lightweight))
        self.metrics.queue_route(  # applied at the next read: counts exact at every scrape
            response.inference_time_us / 1e6, response.feature_time_us / 1e6, inference_s, model_type,
            response.confidence, response.uncertainty, response.use_lightweight,
        )  # fmt: skip
        if span.is_recording():
            span.set_attribute("outcome", "success")
            span.set_attribute("lightweight_routes", light)
            span.set_attribute("powerful_routes", n - light)
        trace_id, span_id = self._record_request(
            request_id, timestamp, span, outcome="success", latency_us=response.inference_time_us,
            candidate_count=n, feature_time_us=response.feature_time_us, lightweight_routes=light,
            powerful_routes=n - light,
        )  # fmt: skip
        self.collector.record_decisions(
            DecisionBatch(request_id, timestamp, response.candidate_ids, response.confidence, response.uncertainty,
                          response.use_lightweight, np.arange(n), model_type)
        )  # fmt: skip
        if logged_start is not None:
            self.collector.record_route_logs(
                RouteLogs(logged_start, n, time.time(), int(response.inference_time_us), light, n - light,
                          trace_id, span_id)
            )  # fmt: skip
            return
        log_candidate_results(
            log, response.candidate_ids, response.confidence, response.uncertainty, response.use_lightweight
        )
        log_request_completed(log, int(response.inference_time_us), light, n - light)

    def _record_failure(
        self, exc: Exception, request_id: int, timestamp: float, count: int, start: float, span: trace.Span | None
    ) -> None:
        """Everything a failed or rejected request records: metrics, logs, span outcome, the request row."""
        latency_s = time.perf_counter() - start
        self.metrics.record_request(False, latency_s)
        error_type = self.metrics.record_exception(exc)
        if isinstance(exc, CircuitOpenError):
            log_circuit_open(self._log, exc.retry_after)
            outcome = "rejected"
        else:
            log_request_failed(self._log, exc)
            outcome = "failure"
        if span is not None:
            span.set_attribute("outcome", outcome)
        self._record_request(
            request_id, timestamp, span, outcome=outcome, latency_us=latency_s * 1e6, candidate_count=count,
            error_type=error_type,
        )  # fmt: skip

    def _record_request(
        self,
        request_id: int,
        timestamp: float,
        span: trace.Span | None,
        *,
        outcome: str,
        latency_us: float,
        candidate_count: int,
        error_type: str | None = None,
        feature_time_us: float = 0.0,
        lightweight_routes: int = 0,
        powerful_routes: int = 0,
    ) -> tuple[str | None, str | None]:
        """The collector's row of one request, whatever its outcome: the one place a RequestRecord is made.

        Returns the row's ``(trace_id, span_id)``.
        """
        trace_id, span_id = span_ids(span)
        self.collector.record_request(
            RequestRecord(
                request_id=request_id,
                timestamp=timestamp,
                latency_us=latency_us,
                feature_time_us=feature_time_us,
                candidate_count=candidate_count,
                outcome=outcome,
                error_type=error_type,
                trace_id=trace_id,
                span_id=span_id,
                lightweight_routes=lightweight_routes,
                powerful_routes=powerful_routes,
            )
        )
        return trace_id, span_id
