"""The guide's routing spans: their names, the :class:`RoutingSpan` helpers and per-candidate span records.

Span tree of one ``route()`` (names and attributes as in the guide; the Router starts every one of them
through :class:`RoutingSpan` and :func:`emit_candidate_spans`)::

    routing_request            SERVER  candidate_count, then outcome (+ lightweight_routes, powerful_routes)
    ├── circuit_breaker_check          circuit_breaker.state
    ├── feature_engineering            batch_size
    └── model_inference                batch_size, model_type          (the one jitted call)
        ├── model_inference            candidate_id, confidence        (per candidate, <= limit)
        └── uncertainty_estimation     candidate_id, uncertainty, use_lightweight

Uncertainty is computed inside the same jitted call as the confidences, so it has no batch-level span
of its own: per candidate, ``uncertainty_estimation`` records what it gave. Per-candidate spans are
records emitted after the call, each carrying the batch's start/end timestamps. They exist only when
the parent span is recording, and at most ``limit`` candidates get them (``RouterConfig.max_candidate_spans``,
default :data:`DEFAULT_MAX_CANDIDATE_SPANS`); the rest are counted in ``CANDIDATE_SPANS_DROPPED``.

Every ``with`` helper makes its span current: an exception escaping the block sets the span's status
to ERROR and records an ``exception`` event (OpenTelemetry's defaults ``record_exception=True,
set_status_on_exception=True``, kept explicitly here).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import numpy as np
from numpy.typing import NDArray
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Status, StatusCode

from tinydancer.observability.root_sampling import DroppedRootSpan
from tinydancer.observability.span_export import begin_span_capture, end_span_capture
from tinydancer.observability.tracing import get_tracer

#: Span names of one route: the one set of them (the Router, RoutingSpan and the records below use these).
ROUTING_REQUEST = "routing_request"
CIRCUIT_BREAKER_CHECK = "circuit_breaker_check"
FEATURE_ENGINEERING = "feature_engineering"
MODEL_INFERENCE = "model_inference"
UNCERTAINTY_ESTIMATION = "uncertainty_estimation"
#: Every span name above, in tree order.
SPAN_NAMES: tuple[str, ...] = (
    ROUTING_REQUEST,
    CIRCUIT_BREAKER_CHECK,
    FEATURE_ENGINEERING,
    MODEL_INFERENCE,
    UNCERTAINTY_ESTIMATION,
)
#: Attribute the caller sets on the parent span: candidates without per-candidate spans.
CANDIDATE_SPANS_DROPPED = "candidate_spans_dropped"
#: Candidates that get per-candidate spans per sampled request unless told otherwise
#: (``RouterConfig.max_candidate_spans`` defaults to it).
DEFAULT_MAX_CANDIDATE_SPANS = 10

SpanCM = AbstractContextManager[trace.Span]


def _start(
    tracer: trace.Tracer | None,
    name: str,
    attributes: dict[str, str | int | float | bool],
    context: otel_context.Context | None = None,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
) -> SpanCM:
    chosen = tracer if tracer is not None else get_tracer(None)
    cm: SpanCM = chosen.start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=attributes,
        record_exception=True,
        set_status_on_exception=True,
    )
    return cm


class RoutingSpan:
    """The guide's ``RoutingSpan``: the spans of one route, as the Router starts them. ``tracer=None``: the global one.

    Examples:
        >>> from tinydancer.observability.tracing import TracingSystem, TracingConfig
        >>> system = TracingSystem(TracingConfig(service_name="doc-spans"))
        >>> with RoutingSpan.routing_request(3, tracer=system.tracer) as span:
        ...     with RoutingSpan.feature_engineering(3, tracer=system.tracer):
        ...         pass
        >>> [(s.name, dict(s.attributes)) for s in system.finished_spans()]
        [('feature_engineering', {'batch_size': 3}), ('routing_request', {'candidate_count': 3})]
        >>> system.shutdown()
    """

    @staticmethod
    def start_routing_request(
        candidate_count: int,
        tracer: trace.Tracer | None = None,
        context: otel_context.Context | None = None,
    ) -> trace.Span:
        """Start the root ``routing_request`` span (kind SERVER) without making it current; the caller ends it.

        The Router uses this form: it attaches the span's context itself, which costs less than a
        ``with`` block on a request that is not sampled.

        Args:
            candidate_count: number of candidates in the request.
            tracer: tracer to use (default: the process-wide one).
            context: parent context, e.g. ``TraceContext.from_w3c_traceparent(h).to_otel_context()``.

        Examples:
            >>> span = RoutingSpan.start_routing_request(3, tracer=trace.NoOpTracer())
            >>> span.is_recording()
            False
            >>> span.end()
        """
        chosen = tracer if tracer is not None else get_tracer(None)
        return chosen.start_span(ROUTING_REQUEST, context, trace.SpanKind.SERVER, {"candidate_count": candidate_count})

    @staticmethod
    def routing_request(
        candidate_count: int,
        tracer: trace.Tracer | None = None,
        context: otel_context.Context | None = None,
    ) -> SpanCM:
        """The root ``routing_request`` span (kind SERVER) in a ``with`` block: :meth:`start_routing_request`, current.

        Args:
            candidate_count: number of candidates in the request.
            tracer: tracer to use (default: the process-wide one).
            context: parent context, e.g. ``TraceContext.from_w3c_traceparent(h).to_otel_context()``.

        Examples:
            >>> with RoutingSpan.routing_request(3, tracer=trace.NoOpTracer()) as span:
            ...     span.is_recording()
            False
        """
        span = RoutingSpan.start_routing_request(int(candidate_count), tracer, context)
        return trace.use_span(span, end_on_exit=True, record_exception=True, set_status_on_exception=True)

    @staticmethod
    def circuit_breaker_check(state: str | None = None, tracer: trace.Tracer | None = None) -> SpanCM:
        """``circuit_breaker_check``; ``state`` ("closed"/"half_open"/"open") if known.

        Examples:
            >>> with RoutingSpan.circuit_breaker_check("closed", tracer=trace.NoOpTracer()):
            ...     pass
        """
        return _start(tracer, CIRCUIT_BREAKER_CHECK, {} if state is None else {"circuit_breaker.state": state})

    @staticmethod
    def feature_engineering(batch_size: int, tracer: trace.Tracer | None = None) -> SpanCM:
        """``feature_engineering`` with ``batch_size``.

        Examples:
            >>> with RoutingSpan.feature_engineering(3, tracer=trace.NoOpTracer()):
            ...     pass
        """
        return _start(tracer, FEATURE_ENGINEERING, {"batch_size": int(batch_size)})

    @staticmethod
    def model_inference(batch_size: int, model_type: str = "fastgrnn", tracer: trace.Tracer | None = None) -> SpanCM:
        """Batch-level ``model_inference`` (the one jitted call) with ``batch_size``, ``model_type``.

        ``model_type`` names the model that serves: the Router passes its own (``"original"`` or
        ``"fastgrnn"``); the default is for callers that serve a FastGRNN.

        Examples:
            >>> with RoutingSpan.model_inference(3, tracer=trace.NoOpTracer()):
            ...     pass
        """
        return _start(tracer, MODEL_INFERENCE, {"batch_size": int(batch_size), "model_type": model_type})

    @staticmethod
    def uncertainty_estimation(tracer: trace.Tracer | None = None) -> SpanCM:
        """Batch-level ``uncertainty_estimation`` (a prompt router's calibration, conformal set, uncertainty).

        Examples:
            >>> with RoutingSpan.uncertainty_estimation(tracer=trace.NoOpTracer()):
            ...     pass
        """
        return _start(tracer, UNCERTAINTY_ESTIMATION, {})


def emit_candidate_spans(
    tracer: trace.Tracer,
    parent_span: trace.Span,
    candidate_ids: Sequence[str],
    confidence: NDArray[np.floating] | Sequence[float],
    uncertainty: NDArray[np.floating] | Sequence[float],
    use_lightweight: NDArray[np.bool_] | Sequence[bool],
    start_ns: int,
    end_ns: int,
    limit: int = DEFAULT_MAX_CANDIDATE_SPANS,
) -> int:
    """Emits per-candidate ``model_inference`` + ``uncertainty_estimation`` children of a span.

    Nothing happens (no loop, no array conversion) unless ``parent_span.is_recording()``.

    Args:
        tracer: tracer of the parent's provider.
        parent_span: the span the records hang under (e.g. the batch ``model_inference`` span).
        candidate_ids: N candidate ids.
        confidence: [N] model scores.
        uncertainty: [N] uncertainty estimates.
        use_lightweight: [N] routing decisions.
        start_ns: batch start, ns since the epoch (``time.time_ns()``).
        end_ns: batch end, ns since the epoch.
        limit: at most this many candidates get spans (two each).

    Returns:
        The number of candidates left without spans (``max(0, N - limit)``; 0 when not recording).
        Set it on the parent as ``CANDIDATE_SPANS_DROPPED`` when > 0.

    Examples:
        >>> from tinydancer.observability.tracing import TracingSystem, TracingConfig
        >>> system = TracingSystem(TracingConfig(service_name="doc-candidates"))
        >>> with system.tracer.start_as_current_span("model_inference") as parent:
        ...     emit_candidate_spans(system.tracer, parent, ["a", "b", "c"], np.array([0.9, 0.2, 0.5]),
        ...                          np.array([0.1, 0.3, 0.2]), np.array([True, False, False]), 0, 1, limit=2)
        1
        >>> spans = system.finished_spans()
        >>> sorted(s.attributes["candidate_id"] for s in spans if "candidate_id" in s.attributes)
        ['a', 'a', 'b', 'b']
        >>> system.shutdown()
    """
    if not parent_span.is_recording():
        return 0
    count = len(candidate_ids)
    emitted = max(0, min(count, int(limit)))
    context = trace.set_span_in_context(parent_span)
    # One conversion each instead of N numpy scalar reads; Python floats/bools are what OTel stores.
    conf = np.asarray(confidence)[:emitted].tolist()
    unc = np.asarray(uncertainty)[:emitted].tolist()
    light = np.asarray(use_lightweight)[:emitted].tolist()
    for cid, c, u, lw in zip(candidate_ids[:emitted], conf, unc, light, strict=True):
        cid_str = str(cid)
        span = tracer.start_span(
            MODEL_INFERENCE,
            context,
            attributes={"candidate_id": cid_str, "confidence": float(c)},
            start_time=start_ns,
        )
        span.end(end_time=end_ns)
        span = tracer.start_span(
            UNCERTAINTY_ESTIMATION,
            context,
            attributes={"candidate_id": cid_str, "uncertainty": float(u), "use_lightweight": bool(lw)},
            start_time=start_ns,
        )
        span.end(end_time=end_ns)
    return count - emitted


#: A child span of a request that is not sampled: nothing (one shared no-op; a nullcontext keeps no state).
UNSAMPLED: AbstractContextManager[trace.Span] = nullcontext(trace.INVALID_SPAN)


def span_ids(span: trace.Span | None) -> tuple[str | None, str | None]:
    """``(trace_id, span_id)`` of a span as lowercase hex, or ``(None, None)`` when it has no valid context.

    Examples:
        >>> span_ids(trace.INVALID_SPAN)
        (None, None)
    """
    if type(span) is DroppedRootSpan:  # most requests at low sampling ratios: formatted in one pass
        return span.hex_ids()
    ctx = span.get_span_context() if span is not None else None
    if ctx is None or not ctx.is_valid:
        return None, None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"  # as trace.format_trace_id / format_span_id


class RequestScope:
    """One routing call's root span, made current, with its sampled spans captured (the Router's both paths).

    A plain class instead of a ``with`` block: a request that is not sampled costs no generator-based context
    manager. :meth:`fail` marks the span with an exception; :meth:`close` detaches the context, ends the span
    and returns the spans captured while it was open (empty when not sampled), for the collector.

    Examples:
        >>> scope = RequestScope(3, trace.NoOpTracer(), None)
        >>> scope.span.is_recording(), scope.close()
        (False, ())
    """

    __slots__ = ("_capture", "_token", "span")

    def __init__(self, count: int, tracer: trace.Tracer, parent: otel_context.Context | None) -> None:
        self.span = RoutingSpan.start_routing_request(count, tracer, parent)
        self._token = otel_context.attach(trace.set_span_in_context(self.span))  # logs and children see it
        # A sampled request's spans (a TracingSystem's provider hands them over as they end) are kept.
        self._capture = begin_span_capture() if self.span.is_recording() else None

    def fail(self, exc: BaseException) -> None:
        """Record the exception on the span and set its status to ERROR (nothing when not sampled)."""
        if self.span.is_recording():
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))

    def close(self) -> tuple[ReadableSpan, ...]:
        """Detach the context, end the span; the spans captured meanwhile."""
        otel_context.detach(self._token)
        self.span.end()
        return () if self._capture is None else end_span_capture(self._capture)
