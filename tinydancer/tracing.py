"""Distributed tracing: :class:`TracingConfig` and :class:`TracingSystem` (the guide's tracing setup).

A :class:`TracingSystem` owns one OpenTelemetry SDK ``TracerProvider`` with

* a ``ParentBased(TraceIdRatioBased(sampling_ratio))`` sampler, so an incoming sampled
  ``traceparent`` is honoured even at ratio 0 and an unsampled one is never recorded;
* a bounded in-memory span buffer (always on, synchronous; :meth:`TracingSystem.finished_spans`);
* optional Jaeger (thrift compact over UDP to an agent) and OTLP/HTTP exporters, each behind a
  ``BatchSpanProcessor`` whose queue is bounded: when an exporter is slow or down the caller never
  blocks, spans beyond the queue are dropped and counted (:meth:`TracingSystem.exporter_stats`);
* an optional console exporter (``enable_stdout``).

The one deliberate process-wide switch: OpenTelemetry lets a process set its global tracer provider
once. :meth:`TracingSystem.init` therefore installs, the first time, a small delegating provider
(``_TracerSwitch``) as the global one and afterwards only swaps the switch's target. Re-running
``init()`` (a notebook cell) with a new config thus takes effect without "Overriding of current
TracerProvider is not allowed". The switch lives inside OpenTelemetry's own global; this module holds
no mutable state. A Router can also be handed ``tracing_system.provider`` explicitly and then never
looks at the global.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from tinydancer.errors import ConfigError
from tinydancer.trace_switch import TracerSwitch

_logger = logging.getLogger(__name__)

#: Instrumentation scope name of every tinydancer span (and the logger name of the guide's logs).
INSTRUMENTATION_NAME = "tiny_dancer_router"

# Spans are exported in the background every 500 ms (the SDK default is 5 s, too slow for a
# notebook that looks at Jaeger right after a cell ran).
_SCHEDULE_DELAY_MS = 500.0


def _package_version() -> str:
    # Imported lazily: tinydancer/__init__.py may import this module before it defines __version__.
    from tinydancer import __version__

    return __version__


@dataclasses.dataclass(frozen=True)
class TracingConfig:
    """Tracing settings (the guide's ``TracingConfig`` plus OTLP and buffer bounds).

    Args:
        service_name: ``service.name`` resource attribute.
        service_version: ``service.version`` resource attribute (default: the package version).
        jaeger_agent_endpoint: ``"host:port"`` of a Jaeger agent (thrift compact over UDP), or None.
        sampling_ratio: fraction of new root traces recorded, in [0, 1].
        enable_stdout: also print every finished span as JSON to stdout.
        otlp_endpoint: OTLP/HTTP traces URL (``http://host:4318/v1/traces``), or None.
        in_memory_capacity: spans kept by the in-memory buffer; older ones are dropped and counted.
        export_queue_size: bound of each background exporter's queue (spans); beyond it spans are
            dropped and counted instead of blocking the caller.
        export_timeout_s: OTLP HTTP timeout per export, retries included. Kept short (2 s) so a dead
            collector only delays the background thread and ``shutdown()``, never a route.

    Raises:
        ConfigError: a value is out of range.

    Examples:
        >>> TracingConfig(sampling_ratio=0.1).sampling_ratio
        0.1
        >>> TracingConfig(jaeger_agent_endpoint="localhost").service_name
        Traceback (most recent call last):
        ...
        tinydancer.errors.ConfigError: jaeger_agent_endpoint: expected "host:port", got 'localhost'
    """

    service_name: str = "tiny-dancer"
    service_version: str = dataclasses.field(default_factory=_package_version)
    jaeger_agent_endpoint: str | None = None
    sampling_ratio: float = 1.0
    enable_stdout: bool = False
    otlp_endpoint: str | None = None
    in_memory_capacity: int = 10_000
    export_queue_size: int = 2048
    export_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.service_name, str) or not self.service_name:
            raise ConfigError(f"service_name: expected a non-empty string, got {self.service_name!r}")
        if not isinstance(self.service_version, str) or not self.service_version:
            raise ConfigError(f"service_version: expected a non-empty string, got {self.service_version!r}")
        if self.jaeger_agent_endpoint is not None:
            parse_host_port(self.jaeger_agent_endpoint)
        ratio = self.sampling_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"sampling_ratio: expected a number in [0, 1], got {ratio!r}")
        if self.otlp_endpoint is not None and not self.otlp_endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"otlp_endpoint: expected an http(s):// URL, got {self.otlp_endpoint!r}")
        for name in ("in_memory_capacity", "export_queue_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.export_timeout_s, int | float) or not self.export_timeout_s > 0:
            raise ConfigError(f"export_timeout_s: expected a number > 0, got {self.export_timeout_s!r}")


def parse_host_port(endpoint: str) -> tuple[str, int]:
    """Splits ``"host:port"`` into ``(host, port)``.

    Args:
        endpoint: e.g. ``"localhost:6831"``.

    Returns:
        The host name and the port number.

    Raises:
        ConfigError: not of the form host:port with a port in 1..65535.

    Examples:
        >>> parse_host_port("localhost:6831")
        ('localhost', 6831)
    """
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f'jaeger_agent_endpoint: expected "host:port", got {endpoint!r}')
    return host, int(port)


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


class _CountingBatchProcessor(SpanProcessor):
    """A ``BatchSpanProcessor`` with a hard bound on spans in flight and exact drop counts.

    The SDK's batch queue already drops silently when full; counting in front of it (spans handed
    over minus spans whose export finished) keeps the bound and makes every drop visible, without
    touching SDK internals. Export errors (a refused connection) are caught and counted as failed.
    """

    def __init__(self, name: str, exporter: SpanExporter, queue_size: int) -> None:
        self._name = name
        self._exporter = exporter
        self._limit = queue_size
        self._lock = threading.Lock()
        self._enqueued = self._dropped = self._exported = self._failed = self._max_in_flight = 0
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
            if in_flight >= self._limit:
                self._dropped += 1
                return
            self._enqueued += 1
            self._max_in_flight = max(self._max_in_flight, in_flight + 1)
        self._inner.on_end(span)

    def finished(self, count: int, ok: bool) -> None:
        with self._lock:
            if ok:
                self._exported += count
            else:
                self._failed += count

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

    def __init__(self, owner: _CountingBatchProcessor) -> None:
        self._owner = owner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._owner._exporter.export(spans)
        except Exception as exc:  # a dead collector must not kill the worker thread
            _logger.warning("%s span export failed: %s", self._owner._name, exc)
            result = SpanExportResult.FAILURE
        self._owner.finished(len(spans), result is SpanExportResult.SUCCESS)
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


class TracingSystem:
    """Owns a tracer provider built from a :class:`TracingConfig` (the guide's ``TracingSystem``).

    ``provider``/``tracer`` build the provider on first use without touching the process; ``init()``
    additionally makes it the process-wide provider (see the module docstring), ``shutdown()``
    flushes the exporters, closes them and, if this system is the active one, turns global tracing
    back into a no-op. Calling ``init()`` again (same or another instance) is safe.

    Args:
        config: tracing settings; defaults to ``TracingConfig()``.

    Examples:
        >>> system = TracingSystem(TracingConfig(service_name="doc"))
        >>> with system.tracer.start_as_current_span("routing_request"):
        ...     pass
        >>> [span.name for span in system.finished_spans()]
        ['routing_request']
        >>> system.shutdown()
    """

    def __init__(self, config: TracingConfig | None = None) -> None:
        self.config = config if config is not None else TracingConfig()
        self._lock = threading.Lock()
        self._provider: TracerProvider | None = None
        self._buffer = BoundedSpanBuffer(self.config.in_memory_capacity)
        self._exporters: list[_CountingBatchProcessor] = []
        self._tracer: trace.Tracer | None = None

    @property
    def provider(self) -> TracerProvider:
        """The SDK tracer provider of this system (built on first access)."""
        with self._lock:
            if self._provider is None:
                self._provider = self._build()
            return self._provider

    @property
    def tracer(self) -> trace.Tracer:
        """A tracer of this system's own provider (scope ``tiny_dancer_router``)."""
        provider = self.provider
        with self._lock:
            if self._tracer is None:
                self._tracer = provider.get_tracer(INSTRUMENTATION_NAME, self.config.service_version)
            return self._tracer

    def _build(self) -> TracerProvider:
        config = self.config
        resource = Resource.create({SERVICE_NAME: config.service_name, SERVICE_VERSION: config.service_version})
        provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(float(config.sampling_ratio))), resource=resource
        )
        provider.add_span_processor(SimpleSpanProcessor(self._buffer))
        self._exporters = []
        if config.jaeger_agent_endpoint is not None:
            host, port = parse_host_port(config.jaeger_agent_endpoint)
            self._exporters.append(
                _CountingBatchProcessor("jaeger", _jaeger_exporter(host, port), config.export_queue_size)
            )
        if config.otlp_endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=config.otlp_endpoint, timeout=float(config.export_timeout_s))
            self._exporters.append(_CountingBatchProcessor("otlp", exporter, config.export_queue_size))
        for processor in self._exporters:
            provider.add_span_processor(processor)
        if config.enable_stdout:
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        return provider

    def init(self) -> None:
        """Makes this system's provider the process-wide one (re-runnable; see module docstring).

        Examples:
            >>> system = TracingSystem(TracingConfig(service_name="doc-init"))
            >>> system.init()
            >>> active_tracing_system() is system
            True
            >>> system.shutdown()
            >>> active_tracing_system() is None
            True
        """
        TracerSwitch.install().activate(self, self.provider)

    def shutdown(self) -> None:
        """Flushes and closes the exporters; the in-memory spans stay readable.

        A later ``provider``/``init()`` builds a fresh provider with the same config.
        """
        with self._lock:
            provider, self._provider, self._tracer = self._provider, None, None
        switch = TracerSwitch.installed()
        if switch is not None:
            switch.deactivate(self)
        if provider is not None:
            provider.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Exports everything queued now; True when every processor finished in time."""
        with self._lock:
            provider = self._provider
        return True if provider is None else bool(provider.force_flush(timeout_millis))

    def finished_spans(self) -> tuple[ReadableSpan, ...]:
        """The in-memory spans, oldest first (at most ``in_memory_capacity``)."""
        return self._buffer.finished_spans()

    @property
    def dropped_spans(self) -> int:
        """Spans dropped by the in-memory buffer (capacity overflow)."""
        return self._buffer.dropped

    def clear(self) -> None:
        """Empties the in-memory buffer and resets its drop counter."""
        self._buffer.clear()

    def exporter_stats(self) -> tuple[ExporterStats, ...]:
        """Counts of each background exporter (``jaeger``, ``otlp``) of the current provider."""
        with self._lock:
            exporters = tuple(self._exporters)
        return tuple(processor.stats() for processor in exporters)


def _jaeger_exporter(host: str, port: int) -> SpanExporter:
    # Deprecated upstream (Jaeger >= 1.35 ingests OTLP); still the only UDP agent exporter.
    from opentelemetry.exporter.jaeger.thrift import JaegerExporter

    exporter: SpanExporter = JaegerExporter(agent_host_name=host, agent_port=port, udp_split_oversized_batches=True)
    return exporter


def active_tracing_system() -> TracingSystem | None:
    """The :class:`TracingSystem` whose ``init()`` made it process-wide, if any (and not shut down).

    Examples:
        >>> active_tracing_system() is None or isinstance(active_tracing_system(), TracingSystem)
        True
    """
    switch = TracerSwitch.installed()
    owner: Any = None if switch is None else switch.owner
    return owner if isinstance(owner, TracingSystem) else None


def get_tracer(tracing: TracingSystem | trace.TracerProvider | None = None) -> trace.Tracer:
    """The tracer a Router should use.

    Args:
        tracing: a TracingSystem, an explicit provider, or None for the process-wide provider
            (follows later ``init()`` calls; a no-op tracer while none was installed).

    Returns:
        A tracer with scope ``tiny_dancer_router``.

    Examples:
        >>> tracer = get_tracer(None)
        >>> with tracer.start_as_current_span("x") as span:
        ...     isinstance(span, trace.Span)
        True
    """
    if isinstance(tracing, TracingSystem):
        return tracing.tracer
    provider = tracing if tracing is not None else trace.get_tracer_provider()
    return provider.get_tracer(INSTRUMENTATION_NAME, _package_version())
