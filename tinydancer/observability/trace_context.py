"""W3C trace context: :class:`TraceContext` (the guide's "Trace Context Propagation").

``traceparent`` is ``"00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"`` (W3C Trace Context,
level 1, section 3.2). Parsing is strict: version ``00`` only, lowercase hex, non-zero ids, exactly
four fields; anything else is an :class:`~tinydancer.errors.InvalidInputError`.
"""

from __future__ import annotations

import dataclasses
import re

from opentelemetry import context as otel_context
from opentelemetry import trace

from tinydancer.errors import InvalidInputError

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16


@dataclasses.dataclass(frozen=True)
class TraceContext:
    """Identifiers of one span, as carried between services.

    Args:
        trace_id: 32 lowercase hex digits, not all zero.
        span_id: 16 lowercase hex digits, not all zero.
        sampled: the W3C ``sampled`` flag (bit 0 of trace-flags).

    Raises:
        InvalidInputError: an id is malformed.

    Examples:
        >>> ctx = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)
        >>> ctx.to_w3c_traceparent()
        '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    """

    trace_id: str
    span_id: str
    sampled: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.trace_id, str) or not _TRACE_ID.fullmatch(self.trace_id):
            raise InvalidInputError(f"trace_id: expected 32 lowercase hex digits, got {self.trace_id!r}")
        if self.trace_id == _ZERO_TRACE_ID:
            raise InvalidInputError("trace_id: expected a non-zero id, got all zeros")
        if not isinstance(self.span_id, str) or not _SPAN_ID.fullmatch(self.span_id):
            raise InvalidInputError(f"span_id: expected 16 lowercase hex digits, got {self.span_id!r}")
        if self.span_id == _ZERO_SPAN_ID:
            raise InvalidInputError("span_id: expected a non-zero id, got all zeros")

    @classmethod
    def from_current(cls) -> TraceContext | None:
        """The context of the currently active span, or None outside any valid span.

        Unsampled spans have valid ids too (they are propagated with ``sampled=False``).

        Examples:
            >>> TraceContext.from_current() is None
            True
        """
        return cls.from_span_context(trace.get_current_span().get_span_context())

    @classmethod
    def from_span_context(cls, span_context: trace.SpanContext) -> TraceContext | None:
        """Converts an OpenTelemetry span context; None when it is invalid.

        Examples:
            >>> sc = trace.SpanContext(1, 2, is_remote=False, trace_flags=trace.TraceFlags(1))
            >>> TraceContext.from_span_context(sc).span_id
            '0000000000000002'
        """
        if not span_context.is_valid:
            return None
        return cls(
            trace.format_trace_id(span_context.trace_id),
            trace.format_span_id(span_context.span_id),
            span_context.trace_flags.sampled,
        )

    def to_w3c_traceparent(self) -> str:
        """The W3C ``traceparent`` header value.

        Examples:
            >>> ctx = TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", False)
            >>> ctx.to_w3c_traceparent()
            '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00'
        """
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    @classmethod
    def from_w3c_traceparent(cls, traceparent: str) -> TraceContext:
        """Parses a ``traceparent`` header value strictly.

        Args:
            traceparent: ``"00-<32 hex>-<16 hex>-<2 hex>"``, lowercase.

        Returns:
            The parsed context; ``sampled`` is bit 0 of the flags.

        Raises:
            InvalidInputError: wrong version, length, case, separator, or an all-zero id.

        Examples:
            >>> header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            >>> TraceContext.from_w3c_traceparent(header).sampled
            True
        """
        match = _TRACEPARENT.fullmatch(traceparent) if isinstance(traceparent, str) else None
        if match is None:
            raise InvalidInputError(
                'traceparent: expected "00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex>", '
                f"got {traceparent!r}"
            )
        trace_id, span_id, flags = match.groups()
        try:
            return cls(trace_id, span_id, bool(int(flags, 16) & 0x01))
        except InvalidInputError as err:
            raise InvalidInputError(f"traceparent {traceparent!r}: {err}") from None

    def to_span_context(self) -> trace.SpanContext:
        """A remote OpenTelemetry span context with these ids.

        Examples:
            >>> ctx = TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
            >>> ctx.to_span_context().is_remote
            True
        """
        flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if self.sampled else trace.TraceFlags.DEFAULT)
        return trace.SpanContext(int(self.trace_id, 16), int(self.span_id, 16), is_remote=True, trace_flags=flags)

    def to_otel_context(self, parent: otel_context.Context | None = None) -> otel_context.Context:
        """An OpenTelemetry context whose current span is this remote parent.

        Spans started with ``context=`` this join the incoming trace (same trace id, parent span id
        = ``span_id``); with a ``ParentBased`` sampler the ``sampled`` flag decides recording.

        Args:
            parent: context to extend (default: an empty one).

        Examples:
            >>> ctx = TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
            >>> trace.get_current_span(ctx.to_otel_context()).get_span_context().span_id == 0xB7AD6B7169203331
            True
        """
        span = trace.NonRecordingSpan(self.to_span_context())
        return trace.set_span_in_context(span, parent if parent is not None else otel_context.Context())
