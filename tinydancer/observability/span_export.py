"""Span exporting plumbing of :class:`~tinydancer.observability.tracing.TracingSystem`: bounded, counted, non-blocking.

* :class:`BoundedSpanBuffer`: the always-on in-memory exporter (newest ``capacity`` spans, drop count).
* :class:`CountingBatchProcessor`: a ``BatchSpanProcessor`` with a hard bound on spans in flight and
  exact counts (:class:`ExporterStats`), so a slow or dead Jaeger agent / OTLP collector costs the
  caller one lock and a deque append, never a wait.
* :class:`SpanCapture`: hands every span that ends inside a capture (:func:`begin_span_capture` ...
  :func:`end_span_capture`, in the same thread or task) to that capture. A Router opens one around each
  sampled ``route()`` and stores what it caught in its own collector, so the collector keeps its spans
  whatever later happens to the tracing system (shutdown, a re-init with a new config).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from contextvars import ContextVar, Token
from typing import NamedTuple

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

_logger = logging.getLogger(__name__)

# Spans are exported in the background every 500 ms (the SDK default is 5 s, too slow for a
# notebook that looks at Jaeger right after a cell ran).
_SCHEDULE_DELAY_MS = 500.0


class ExporterStats(NamedTuple):
    """Counts of one background exporter (spans).

    ``enqueued + dropped`` is every sampled span offered; ``exported + failed`` those whose export
    finished; the rest are still queued or in flight.
    """

    name: str
    enqueued: int
    dropped: int
    exported: int
    failed: int
    max_in_flight: int


class CountingBatchProcessor(SpanProcessor):
    """A ``BatchSpanProcessor`` with a hard bound on spans in flight and exact drop counts.

    The SDK's batch queue already drops silently when full; counting in front of it (spans handed
    over minus spans whose export finished) keeps the bound and makes every drop visible, without
    touching SDK internals. Export errors (a refused connection) are caught and counted as failed.

    Args:
        name: label of the exporter in :class:`ExporterStats` (``"jaeger"``, ``"otlp"``).
        exporter: the real span exporter; runs on the processor's background thread.
        queue_size: most spans handed over and not yet finished exporting.

    Examples:
        >>> processor = CountingBatchProcessor("memory", BoundedSpanBuffer(8), queue_size=4)
        >>> processor.stats()
        ExporterStats(name='memory', enqueued=0, dropped=0, exported=0, failed=0, max_in_flight=0)
        >>> processor.shutdown()
    """

    def __init__(self, name: str, exporter: SpanExporter, queue_size: int) -> None:
        self._name = name
        self._exporter = exporter
        self._limit = queue_size
        self._lock = threading.Lock()
        self._enqueued = self._dropped = self._exported = self._failed = self._max_in_flight = 0
        # Logged once per episode, not per span or batch: a dead collector must not flood the logs.
        self._dropping = self._failing = False
        self._inner = BatchSpanProcessor(
            _FinishCounter(self),
            max_queue_size=queue_size,
            max_export_batch_size=min(512, queue_size),
            schedule_delay_millis=_SCHEDULE_DELAY_MS,
        )

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        with self._lock:
            in_flight = self._enqueued - self._exported - self._failed
            accepted = in_flight < self._limit
            first_drop = not accepted and not self._dropping
            if accepted:
                self._enqueued += 1
                self._max_in_flight = max(self._max_in_flight, in_flight + 1)
            else:
                self._dropped += 1
                self._dropping = True
        if accepted:
            self._inner.on_end(span)
        elif first_drop:
            _logger.warning(
                "%s span export queue is full (%d spans): dropping spans; further drops are counted in "
                "exporter_stats() and not logged until the queue drains",
                self._name,
                self._limit,
            )

    def finished(self, count: int, ok: bool, error: BaseException | None = None) -> None:
        """Counts a finished export batch; logs the first failure of an outage and the recovery."""
        with self._lock:
            if ok:
                self._exported += count
            else:
                self._failed += count
            if ok and self._enqueued == self._exported + self._failed:
                self._dropping = False  # drained by a working exporter: a later overflow is a new episode
            was_failing, self._failing = self._failing, not ok
        if self._failing and not was_failing:
            _logger.warning(
                "%s span export failed (%s); further failures are counted in exporter_stats() and not "
                "logged until an export succeeds",
                self._name,
                error if error is not None else "exporter returned FAILURE",
            )
        elif was_failing and not self._failing:
            _logger.info("%s span export recovered", self._name)

    def stats(self) -> ExporterStats:
        with self._lock:
            return ExporterStats(
                self._name, self._enqueued, self._dropped, self._exported, self._failed, self._max_in_flight
            )

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._inner.force_flush(timeout_millis))


class _FinishCounter(SpanExporter):
    """Wraps the real exporter: reports how each batch ended, turns exceptions into FAILURE."""

    def __init__(self, owner: CountingBatchProcessor) -> None:
        self._owner = owner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        error: BaseException | None = None
        try:
            result = self._owner._exporter.export(spans)
        except Exception as exc:  # a dead collector must not kill the worker thread
            error, result = exc, SpanExportResult.FAILURE
        self._owner.finished(len(spans), result is SpanExportResult.SUCCESS, error)
        return result

    def shutdown(self) -> None:
        self._owner._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._owner._exporter.force_flush(timeout_millis))


class BoundedSpanBuffer(SpanExporter):
    """Thread-safe in-memory span exporter keeping the newest ``capacity`` spans.

    Args:
        capacity: spans kept; each overflow drops the oldest and increments ``dropped``.

    Examples:
        >>> buffer = BoundedSpanBuffer(capacity=2)
        >>> buffer.finished_spans(), buffer.dropped
        ((), 0)
    """

    def __init__(self, capacity: int) -> None:
        self._lock = threading.Lock()
        self._spans: deque[ReadableSpan] = deque(maxlen=capacity)
        self._dropped = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            overflow = len(self._spans) + len(spans) - (self._spans.maxlen or 0)
            if overflow > 0:
                self._dropped += overflow
            self._spans.extend(spans)
        return SpanExportResult.SUCCESS

    def finished_spans(self) -> tuple[ReadableSpan, ...]:
        """Returns the kept spans, oldest first, as an immutable snapshot."""
        with self._lock:
            return tuple(self._spans)

    @property
    def dropped(self) -> int:
        """Spans dropped because the buffer was full."""
        with self._lock:
            return self._dropped

    def clear(self) -> None:
        """Forgets the kept spans and resets the drop counter."""
        with self._lock:
            self._spans.clear()
            self._dropped = 0

    def shutdown(self) -> None:
        """Keeps the spans readable after shutdown (nothing to release)."""


#: The span list of the capture open in this thread / task, if any (context-local, not shared state).
_CAPTURE: ContextVar[list[ReadableSpan] | None] = ContextVar("tinydancer_span_capture", default=None)


class OpenCapture(NamedTuple):
    """A capture opened by :func:`begin_span_capture`; pass it to :func:`end_span_capture`."""

    spans: list[ReadableSpan]
    token: Token[list[ReadableSpan] | None]


class SpanCapture(SpanProcessor):
    """Appends each finished span to the capture open in the ending thread's context, if any.

    Stateless and synchronous (one context-variable read per span); every provider a
    :class:`~tinydancer.observability.tracing.TracingSystem` builds has one.

    Examples:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(SpanCapture())
        >>> tracer = provider.get_tracer("doc")
        >>> tracer.start_span("outside").end()
        >>> capture = begin_span_capture()
        >>> with tracer.start_as_current_span("parent"):
        ...     tracer.start_span("child").end()
        >>> [span.name for span in end_span_capture(capture)]
        ['child', 'parent']
    """

    def on_end(self, span: ReadableSpan) -> None:
        spans = _CAPTURE.get()
        if spans is not None:
            spans.append(span)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is queued here; True, so the provider's flush reports only its exporters' result."""
        return True


def begin_span_capture() -> OpenCapture:
    """Opens a capture in the current context: spans ending here from now on are kept for it.

    Captures nest: an inner one takes the spans until it is ended, then the outer one resumes.
    """
    spans: list[ReadableSpan] = []
    return OpenCapture(spans, _CAPTURE.set(spans))


def end_span_capture(capture: OpenCapture) -> tuple[ReadableSpan, ...]:
    """Closes a capture (in the context that opened it) and returns its spans in the order they ended."""
    _CAPTURE.reset(capture.token)
    return tuple(capture.spans)
