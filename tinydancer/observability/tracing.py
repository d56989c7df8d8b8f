"""Distributed tracing: :class:`TracingConfig` and :class:`TracingSystem` (the guide's tracing setup).

A :class:`TracingSystem` owns one OpenTelemetry SDK ``TracerProvider`` with

* a ``ParentBased(TraceIdRatioBased(sampling_ratio))`` sampler, so an incoming sampled
  ``traceparent`` is honoured even at ratio 0 and an unsampled one is never recorded (root spans the ratio
  drops skip the SDK's span-creation work: :mod:`~tinydancer.observability.root_sampling`);
* a bounded in-memory span buffer (always on, synchronous; :meth:`TracingSystem.finished_spans`);
* a :class:`~tinydancer.observability.span_export.SpanCapture`, through which a Router's collector receives the
  spans of its own requests as they end (and then keeps them past this system's shutdown);
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
import sys
import threading
import warnings
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from tinydancer._version import __version__
from tinydancer.errors import ConfigError
from tinydancer.observability.provider_switch import TracerSwitch
from tinydancer.observability.root_sampling import RatioRootTracerProvider
from tinydancer.observability.span_export import BoundedSpanBuffer, CountingBatchProcessor, ExporterStats, SpanCapture
from tinydancer.validation import check_bool, check_int, check_number, check_text

#: Largest in-memory buffer or export queue accepted (spans); beyond it a deque cannot even be sized.
MAX_BUFFER_SPANS = 2**31 - 1

#: Instrumentation scope name of every tinydancer span (and the logger name of the guide's logs).
INSTRUMENTATION_NAME = "tiny_dancer_router"


def _package_version() -> str:
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
        check_text("service_name", self.service_name)
        check_text("service_version", self.service_version)
        if self.jaeger_agent_endpoint is not None:
            parse_host_port(self.jaeger_agent_endpoint)
        check_number("sampling_ratio", self.sampling_ratio, low=0, high=1)
        check_bool("enable_stdout", self.enable_stdout)
        if self.otlp_endpoint is not None and (
            not isinstance(self.otlp_endpoint, str) or not self.otlp_endpoint.startswith(("http://", "https://"))
        ):
            raise ConfigError(f"otlp_endpoint: expected None or an http(s):// URL, got {self.otlp_endpoint!r}")
        for name in ("in_memory_capacity", "export_queue_size"):
            check_int(name, getattr(self, name), low=1, high=MAX_BUFFER_SPANS)
        check_number("export_timeout_s", self.export_timeout_s, low=0, low_open=True)


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
    if not isinstance(endpoint, str):
        raise ConfigError(f'jaeger_agent_endpoint: expected "host:port", got {endpoint!r}')
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f'jaeger_agent_endpoint: expected "host:port", got {endpoint!r}')
    return host, int(port)


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
        self._exporters: list[CountingBatchProcessor] = []
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
        # ParentBased(TraceIdRatioBased(ratio)), with the roots the ratio drops made without the SDK's work.
        provider = RatioRootTracerProvider(float(config.sampling_ratio), resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(self._buffer))
        provider.add_span_processor(SpanCapture())
        self._exporters = []
        if config.jaeger_agent_endpoint is not None:
            host, port = parse_host_port(config.jaeger_agent_endpoint)
            self._exporters.append(
                CountingBatchProcessor("jaeger", _jaeger_exporter(host, port), config.export_queue_size)
            )
        if config.otlp_endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=config.otlp_endpoint, timeout=float(config.export_timeout_s))
            self._exporters.append(CountingBatchProcessor("otlp", exporter, config.export_queue_size))
        for processor in self._exporters:
            provider.add_span_processor(processor)
        if config.enable_stdout:
            # The stdout of now (a notebook's or pytest's), not the one bound when the SDK was imported.
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
        return provider

    def init(self) -> None:
        """Makes this system's provider the process-wide one (re-runnable; see module docstring).

        A previously active system is not shut down (a Router may still hold its provider); call
        its ``shutdown()`` to flush it and stop its exporter threads.

        Raises:
            ConfigError: other code already set a non-tinydancer global tracer provider.

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

        A Router's collector keeps the spans it recorded too (until its ``clear()`` or capacity).
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
    # Its DeprecationWarning says exactly that; we offer OTLP too, so it is silenced here only.
    # Oversized batches are split across datagrams instead of being dropped with a log line.
    from opentelemetry.exporter.jaeger.thrift import JaegerExporter

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*Jaeger.*")
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
