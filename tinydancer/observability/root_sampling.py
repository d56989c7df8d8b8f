"""Ratio-sampled root spans without the SDK's work for the ones the ratio drops.

A :class:`TracingSystem <tinydancer.observability.tracing.TracingSystem>` samples with
``ParentBased(TraceIdRatioBased(r))``: a root span (no valid parent) is recorded iff the low 64 bits of its
random trace id are below ``r * 2^64``. At 1% the SDK still walks its whole span-creation path for the 99% it
drops (ids, the sampler's two context lookups, a ``SamplingResult``, the span context), several microseconds
of a route that costs tens. :class:`RatioRootTracerProvider` hands out tracers that draw the trace id first
and, when the ratio drops it, return the same non-recording span the SDK would (valid ids, flags not
sampled), directly. When the ratio keeps it, the id is handed to the SDK through :class:`PrimedIdGenerator`
(per thread), so the SDK's sampler sees the same id and decides the same way, and the span is the SDK's own.
Spans with a valid parent (an incoming ``traceparent``, or a current span) always take the SDK's path.

Examples:
    >>> provider = RatioRootTracerProvider(0.0)
    >>> span = provider.get_tracer("doc").start_span("routing_request")
    >>> span.is_recording(), span.get_span_context().is_valid, span.get_span_context().trace_flags.sampled
    (False, True, False)
    >>> RatioRootTracerProvider(1.0).get_tracer("doc").start_span("routing_request").is_recording()
    True
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.util import types
from opentelemetry.util._decorator import _agnosticcontextmanager


class PrimedIdGenerator(RandomIdGenerator):
    """Random ids, except that a trace id primed on this thread is the next one generated (once)."""

    def __init__(self) -> None:
        self._primed = threading.local()

    def prime(self, trace_id: int) -> None:
        """Make ``trace_id`` the next trace id this thread's SDK span gets."""
        self._primed.trace_id = trace_id

    def generate_trace_id(self) -> int:
        primed = getattr(self._primed, "trace_id", None)
        if primed is None:
            return super().generate_trace_id()
        self._primed.trace_id = None
        return int(primed)


class RatioRootTracerProvider(TracerProvider):
    """The SDK provider sampling ``ParentBased(TraceIdRatioBased(ratio))``, whose tracers drop roots cheaply.

    Args:
        ratio: share of root spans recorded, in [0, 1].
        **kwargs: the rest of :class:`opentelemetry.sdk.trace.TracerProvider`'s arguments (not ``sampler`` or
            ``id_generator``).
    """

    def __init__(self, ratio: float, **kwargs: Any) -> None:
        self._ids = PrimedIdGenerator()
        self._bound = TraceIdRatioBased.get_bound_for_rate(ratio)
        super().__init__(sampler=ParentBased(TraceIdRatioBased(ratio)), id_generator=self._ids, **kwargs)

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        tracer = super().get_tracer(*args, **kwargs)
        if not isinstance(tracer, Tracer):  # the SDK disabled (OTEL_SDK_DISABLED): its no-op tracer
            return tracer
        return RatioRootTracer(tracer, self._ids, self._bound)


#: The bits of a trace id that TraceIdRatioBased compares with its bound.
_SAMPLED_BITS = TraceIdRatioBased.TRACE_ID_LIMIT
_NOT_SAMPLED = trace.TraceFlags(trace.TraceFlags.DEFAULT)
_SPAN_ID_BITS = (1 << 64) - 1


class DroppedRootSpan(trace.NonRecordingSpan):
    """The non-recording root span of a trace the ratio dropped: valid ids, flags not sampled.

    Its trace id (high 128 bits) and span id (low 64) are drawn as one random number, and formatted as hex in
    one pass (:meth:`hex_ids`, what the Router's records carry); its ``SpanContext`` is made when first asked
    for (most dropped requests never are: the Router reads :meth:`hex_ids`).

    Examples:
        >>> span = DroppedRootSpan((0xA << 64) | 0xB)
        >>> span.hex_ids()
        ('0000000000000000000000000000000a', '000000000000000b')
        >>> context = span.get_span_context()
        >>> (context.trace_id, context.span_id, context.is_valid, context.trace_flags.sampled)
        (10, 11, True, False)
    """

    def __init__(self, ids: int) -> None:
        super().__init__(trace.INVALID_SPAN_CONTEXT)  # replaced by the real one on first use
        self._ids = ids
        self._made = False

    def get_span_context(self) -> trace.SpanContext:
        if not self._made:  # two threads racing here make equal contexts
            self._context = trace.SpanContext(self._ids >> 64, self._ids & _SPAN_ID_BITS, False, _NOT_SAMPLED)
            self._made = True
        return self._context

    def hex_ids(self) -> tuple[str, str]:
        """``(trace_id, span_id)`` as lowercase hex (32 and 16 digits)."""
        text = f"{self._ids:048x}"
        return text[:32], text[32:]

    def __repr__(self) -> str:
        return f"DroppedRootSpan({self.get_span_context()!r})"


class RatioRootTracer(trace.Tracer):
    """An SDK tracer whose root spans the ratio drops are made directly (module docstring)."""

    def __init__(self, sdk: Tracer, ids: PrimedIdGenerator, bound: int) -> None:
        self._sdk, self._ids, self._bound = sdk, ids, bound

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        if not trace.get_current_span(context).get_span_context().is_valid:  # a root span
            ids = random.getrandbits(192)  # trace id (128 bits), span id (64)
            while ids >> 64 == trace.INVALID_TRACE_ID or ids & _SPAN_ID_BITS == trace.INVALID_SPAN_ID:
                ids = random.getrandbits(192)  # as RandomIdGenerator: never an invalid id
            trace_id = ids >> 64
            if trace_id & _SAMPLED_BITS >= self._bound:  # what TraceIdRatioBased decides for this id: drop
                return DroppedRootSpan(ids)
            self._ids.prime(trace_id)
        return self._sdk.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


__all__ = ["DroppedRootSpan", "PrimedIdGenerator", "RatioRootTracer", "RatioRootTracerProvider"]
