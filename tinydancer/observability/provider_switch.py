"""The process-wide tracer switch: a delegating provider installed once as OpenTelemetry's global.

OpenTelemetry allows ``trace.set_tracer_provider`` once per process. :class:`TracerSwitch` is set
there the first time ``TracingSystem.init()`` runs; every tracer it hands out forwards each span to
whatever SDK provider is the switch's target *now*, so code that cached a tracer (third-party
instrumentation included) follows later ``init()`` calls. The switch object is reachable only
through ``trace.get_tracer_provider()``: no module-level state here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.util import types
from opentelemetry.util._decorator import _agnosticcontextmanager

from tinydancer.errors import ConfigError


class TracerSwitch(trace.TracerProvider):
    """A tracer provider that delegates to a swappable target provider.

    Examples:
        >>> switch = TracerSwitch()
        >>> with switch.get_tracer("demo").start_as_current_span("s") as span:
        ...     span.is_recording()
        False
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.target: trace.TracerProvider = trace.NoOpTracerProvider()
        #: The object that activated the current target (a TracingSystem), or None.
        self.owner: object | None = None

    @staticmethod
    def installed() -> TracerSwitch | None:
        """The switch if it is the process-wide provider, else None."""
        provider = trace.get_tracer_provider()
        return provider if isinstance(provider, TracerSwitch) else None

    @classmethod
    def install(cls) -> TracerSwitch:
        """Returns the process-wide switch, making a new one the global provider if none is yet.

        Raises:
            ConfigError: another (non-tinydancer) provider is already the process-wide one.
        """
        existing = cls.installed()
        if existing is not None:
            return existing
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(cls())
        switch = cls.installed()
        if switch is None:
            raise ConfigError(
                "process-wide tracer provider: expected none or tinydancer's, got "
                f"{type(trace.get_tracer_provider()).__name__} set by other code; hand the Router "
                "tracing_system.provider explicitly instead of calling init()"
            )
        return switch

    def activate(self, owner: object, target: trace.TracerProvider) -> None:
        """Routes every tracer of this switch to ``target`` from now on."""
        with self._lock:
            self.owner, self.target = owner, target

    def deactivate(self, owner: object) -> None:
        """Turns tracing back into a no-op if ``owner`` is the active one."""
        with self._lock:
            if self.owner is owner:
                self.owner, self.target = None, trace.NoOpTracerProvider()

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes | None = None,
    ) -> trace.Tracer:
        """A tracer that follows the switch's target (see class docstring)."""
        return _SwitchedTracer(self, (instrumenting_module_name, instrumenting_library_version, schema_url, attributes))


class _SwitchedTracer(trace.Tracer):
    """Forwards to a tracer of the switch's current target, re-fetched only when the target changes."""

    def __init__(
        self, switch: TracerSwitch, scope: tuple[str, str | None, str | None, types.Attributes | None]
    ) -> None:
        self._switch = switch
        self._scope = scope
        self._cached: tuple[trace.TracerProvider, trace.Tracer] | None = None

    def _current(self) -> trace.Tracer:
        target = self._switch.target
        cached = self._cached
        if cached is not None and cached[0] is target:
            return cached[1]
        tracer = target.get_tracer(*self._scope)
        self._cached = (target, tracer)
        return tracer

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        return self._current().start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        with self._current().start_as_current_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
        ) as span:
            yield span
