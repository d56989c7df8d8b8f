"""The guide's routing spans: :class:`RoutingSpan` helpers and per-candidate span records.

Span tree of one ``route()`` (names and attributes as in the guide)::

    routing_request            SERVER  candidate_count
    ├── circuit_breaker_check          circuit_breaker.state (optional)
    ├── feature_engineering            batch_size
    ├── model_inference                batch_size, model_type          (the one jitted call)
    │   ├── model_inference            candidate_id, confidence        (per candidate, <= limit)
    │   └── uncertainty_estimation     candidate_id, uncertainty, use_lightweight
    └── uncertainty_estimation         batch_size                      (optional, batch level)

The whole batch is computed in one jitted call, so per-candidate spans are records emitted after it,
each carrying the batch's start/end timestamps. They exist only when the parent span is recording,
and at most ``limit`` candidates get them; the rest are counted in ``CANDIDATE_SPANS_DROPPED``.

Every helper returns ``tracer.start_as_current_span(...)``: an exception escaping the ``with`` block
sets the span's status to ERROR and records an ``exception`` event (OpenTelemetry's defaults
``record_exception=True, set_status_on_exception=True``, kept explicitly here).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

import numpy as np
from numpy.typing import NDArray
from opentelemetry import context as otel_context
from opentelemetry import trace

from tinydancer.observability.tracing import get_tracer

#: Attribute the caller sets on the parent span: candidates without per-candidate spans.
CANDIDATE_SPANS_DROPPED = "candidate_spans_dropped"

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
    """Pre-defined span helpers (the guide's ``RoutingSpan``). ``tracer=None`` uses the global one.

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
    def routing_request(
        candidate_count: int,
        tracer: trace.Tracer | None = None,
        context: otel_context.Context | None = None,
    ) -> SpanCM:
        """The root ``routing_request`` span (kind SERVER).

        Args:
            candidate_count: number of candidates in the request.
            tracer: tracer to use (default: the process-wide one).
            context: parent context, e.g. ``TraceContext.from_w3c_traceparent(h).to_otel_context()``.

        Examples:
            >>> with RoutingSpan.routing_request(3, tracer=trace.NoOpTracer()) as span:
            ...     span.is_recording()
            False
        """
        return _start(
            tracer,
            "routing_request",
            {"candidate_count": int(candidate_count)},
            context,
            trace.SpanKind.SERVER,
        )

    @staticmethod
    def circuit_breaker_check(state: str | None = None, tracer: trace.Tracer | None = None) -> SpanCM:
        """``circuit_breaker_check``; ``state`` ("closed"/"half_open"/"open") if known.

        Examples:
            >>> with RoutingSpan.circuit_breaker_check("closed", tracer=trace.NoOpTracer()):
            ...     pass
        """
        return _start(tracer, "circuit_breaker_check", {} if state is None else {"circuit_breaker.state": state})

    @staticmethod
    def feature_engineering(batch_size: int, tracer: trace.Tracer | None = None) -> SpanCM:
        """``feature_engineering`` with ``batch_size``.

        Examples:
            >>> with RoutingSpan.feature_engineering(3, tracer=trace.NoOpTracer()):
            ...     pass
        """
        return _start(tracer, "feature_engineering", {"batch_size": int(batch_size)})

    @staticmethod
    def model_inference(batch_size: int, model_type: str = "fastgrnn", tracer: trace.Tracer | None = None) -> SpanCM:
        """Batch-level ``model_inference`` (the one jitted call) with ``batch_size``, ``model_type``.

        Examples:
            >>> with RoutingSpan.model_inference(3, tracer=trace.NoOpTracer()):
            ...     pass
        """
        return _start(tracer, "model_inference", {"batch_size": int(batch_size), "model_type": model_type})

    @staticmethod
    def uncertainty_estimation(batch_size: int, tracer: trace.Tracer | None = None) -> SpanCM:
        """Batch-level ``uncertainty_estimation`` with ``batch_size``.

        Examples:
            >>> with RoutingSpan.uncertainty_estimation(3, tracer=trace.NoOpTracer()):
            ...     pass
        """
        return _start(tracer, "uncertainty_estimation", {"batch_size": int(batch_size)})


def emit_candidate_spans(
    tracer: trace.Tracer,
    parent_span: trace.Span,
    candidate_ids: Sequence[str],
    confidence: NDArray[np.floating] | Sequence[float],
    uncertainty: NDArray[np.floating] | Sequence[float],
    use_lightweight: NDArray[np.bool_] | Sequence[bool],
    start_ns: int,
    end_ns: int,
    limit: int = 100,
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
            "model_inference",
            context,
            attributes={"candidate_id": cid_str, "confidence": float(c)},
            start_time=start_ns,
        )
        span.end(end_time=end_ns)
        span = tracer.start_span(
            "uncertainty_estimation",
            context,
            attributes={"candidate_id": cid_str, "uncertainty": float(u), "use_lightweight": bool(lw)},
            start_time=start_ns,
        )
        span.end(end_time=end_ns)
    return count - emitted
