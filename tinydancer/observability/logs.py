"""Structured logs of the router (the guide's "Structured Logging") built on structlog.

Each Router gets its own logger from :func:`make_router_logger` (``structlog.wrap_logger``, never
the global ``structlog.configure``), so two routers with different levels or renderers coexist.
One processor drops any embeddings (they never reach a record), adds ``level``, ``timestamp`` (Unix
seconds), ``logger="tiny_dancer_router"`` and, inside a valid OpenTelemetry span, ``trace_id`` /
``span_id``, and hands a copy to the ``sink`` (the router's in-memory collector, so it receives every
record at or above the level); then the record is rendered (console or JSON line with an ISO-8601 UTC
timestamp). Records below the level never reach the processors: ``make_filtering_bound_logger`` turns those
methods into no-ops. With ``renderer="none"`` nothing is rendered, so a :class:`SinkLogger` makes the same
records without structlog's processor chain, and a router at INFO hands a successful route's two records to
its collector as one :class:`RouteLogs` (made into the same records when read).

The guide's events (``LogEvent`` holds the exact messages):

========  ==========================================  =================================================
level     message                                     fields
========  ==========================================  =================================================
INFO      Initializing Tiny Dancer router
INFO      Circuit breaker enabled with threshold: 5
WARNING   Model path not found                        model_path
INFO      Processing routing request                  candidate_count
DEBUG     Extracting features                         batch_size
DEBUG     Model inference completed                   candidate_id, confidence
DEBUG     Routing decision made                       candidate_id, use_lightweight, uncertainty
INFO      Routing request completed successfully      inference_time_us, lightweight_routes,
                                                      powerful_routes
ERROR     Circuit breaker is open, rejecting request  retry_after_s
ERROR     Routing request failed                      error_type, error
WARNING   Circuit breaker state changed               from_state, to_state (INFO when it closes)
INFO      Model reloaded                              model_path
ERROR     Model reload failed, keeping the previous   error_type, error
          model
========  ==========================================  =================================================

The one deliberate process-wide switch here is :func:`configure_logging`: it replaces the default
:class:`LogConfig` (held in ``_PROCESS_DEFAULTS``) of routers created without one, those already made
included. Such a router registers with :func:`follow_default_log_config`, and ``configure_logging``
swaps in a new logger for it (one attribute assignment), so ``route()`` reads its logger exactly as
before: no lookup of the process default per call.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, Protocol, TextIO

import numpy as np
import structlog
from numpy.typing import NDArray
from opentelemetry import trace
from structlog.typing import FilteringBoundLogger, Processor, WrappedLogger

from tinydancer.errors import ConfigError
from tinydancer.validation import check_choice

#: Logger name of every record (the guide's ``tiny_dancer_router:`` prefix).
LOGGER_NAME = "tiny_dancer_router"
#: Accepted level names, lowest first.
LEVELS: dict[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
#: Keys holding vectors; removed from every record.
EMBEDDING_KEYS = frozenset({"query_embedding", "embedding", "embeddings", "candidate_embeddings"})

Renderer = Literal["console", "json", "none"]
Sink = Callable[[dict[str, Any]], None]


class LogEvent:
    """The guide's log messages, exactly (see the module table for levels and fields)."""

    ROUTER_INIT = "Initializing Tiny Dancer router"
    CIRCUIT_BREAKER_ENABLED = "Circuit breaker enabled with threshold: {threshold}"
    MODEL_PATH_NOT_FOUND = "Model path not found"
    REQUEST_STARTED = "Processing routing request"
    FEATURES = "Extracting features"
    INFERENCE_COMPLETED = "Model inference completed"
    DECISION = "Routing decision made"
    REQUEST_COMPLETED = "Routing request completed successfully"
    CIRCUIT_OPEN = "Circuit breaker is open, rejecting request"
    REQUEST_FAILED = "Routing request failed"
    CIRCUIT_STATE_CHANGED = "Circuit breaker state changed"
    MODEL_RELOADED = "Model reloaded"
    MODEL_RELOAD_FAILED = "Model reload failed, keeping the previous model"
    OPERATING_POINT_CHANGED = "Operating point changed"


@dataclasses.dataclass(frozen=True)
class LogConfig:
    """How a router logs.

    Args:
        level: lowest level emitted: DEBUG, INFO, WARNING, ERROR or CRITICAL.
        renderer: ``"console"`` (the guide's ``LEVEL tiny_dancer_router: message k=v`` lines),
            ``"json"`` (one JSON object per line), or ``"none"`` (sink only).
        stream: text stream written to (default: ``sys.stderr`` when the logger is made).

    Raises:
        ConfigError: unknown level or renderer.

    Examples:
        >>> LogConfig(level="debug").level
        'DEBUG'
    """

    level: str = "INFO"
    renderer: Renderer = "console"
    stream: TextIO | None = None

    def __post_init__(self) -> None:
        given = self.level.upper() if isinstance(self.level, str) else self.level  # "debug" is stored as "DEBUG"
        object.__setattr__(self, "level", check_choice("level", given, tuple(LEVELS)))
        check_choice("renderer", self.renderer, ("console", "json", "none"))
        if self.stream is not None and not callable(getattr(self.stream, "write", None)):
            raise ConfigError(f"stream: expected None or a text stream with a write() method, got {self.stream!r}")


ConfigListener = Callable[[LogConfig], None]


class _ProcessDefaults:
    """Holder of the process-wide default LogConfig (the deliberate switch, see module docstring)
    and of the listeners that follow it (routers created without a LogConfig)."""

    def __init__(self) -> None:
        # Reentrant: a listener may read the default while set() is telling it about the new one.
        self._lock = threading.RLock()
        # Until configure_logging() is called nothing is rendered (records still reach the collector),
        # like a Rust program without a tracing subscriber: a notebook routing 10^4 requests stays quiet.
        self._config = LogConfig(renderer="none")
        # Bound methods are held weakly (a router that is gone is dropped); plain callables strongly.
        self._listeners: list[Callable[[], ConfigListener | None]] = []
        self._prune_at = 64  # dead listeners are dropped when the list reaches this size (amortised O(1))

    def get(self) -> LogConfig:
        with self._lock:
            return self._config

    def set(self, config: LogConfig) -> None:
        with self._lock:
            self._config = config
            for listener in self._live_listeners():
                listener(config)

    def follow(self, listener: ConfigListener) -> None:
        with self._lock:  # registered and told the current default atomically: no set() slips between
            ref: Callable[[], ConfigListener | None]
            ref = weakref.WeakMethod(listener) if inspect.ismethod(listener) else (lambda: listener)
            if len(self._listeners) >= self._prune_at:  # the list does not grow with every router ever made
                self._live_listeners()
                self._prune_at = 2 * len(self._listeners) + 64
            self._listeners.append(ref)
            listener(self._config)

    def _live_listeners(self) -> list[ConfigListener]:
        live = [(ref, ref()) for ref in self._listeners]
        self._listeners = [ref for ref, listener in live if listener is not None]
        return [listener for _, listener in live if listener is not None]


_PROCESS_DEFAULTS = _ProcessDefaults()


def configure_logging(
    level: str = "INFO",
    renderer: Renderer = "console",
    stream: TextIO | None = None,
) -> LogConfig:
    """Sets the default :class:`LogConfig` of routers created without one, existing ones included; returns it.

    Every router made with ``log_config=None`` (before or after this call) logs with the new config from
    its next record on; routers given a ``LogConfig`` keep theirs, and so do loggers made directly with
    :func:`make_router_logger` (a snapshot). Before the first call, routers render nothing (their records
    still reach the collector); ``configure_logging()`` turns on the guide's console lines at INFO.
    ``stream=None`` means ``sys.stderr`` as it is at this call.

    Examples:
        >>> configure_logging("DEBUG", "json").renderer
        'json'
        >>> default_log_config().level
        'DEBUG'
        >>> configure_logging().renderer  # console lines at INFO, as the guide's fmt().init()
        'console'
    """
    config = LogConfig(level, renderer, stream)
    _PROCESS_DEFAULTS.set(config)
    return config


def follow_default_log_config(listener: ConfigListener) -> None:
    """Call ``listener`` with the process default now and with each new one :func:`configure_logging` sets.

    How a router created without a :class:`LogConfig` follows the default: its listener builds a new
    logger (:func:`make_router_logger`) and swaps it in. A bound method is held weakly, so following
    keeps no router alive; any other callable is held for the life of the process.

    Args:
        listener: Called with the current default (at once, before this returns) and with every new one,
            while the default's lock is held (so in the order the defaults were set).

    Examples:
        >>> class Follower:  # a router's listener rebuilds its logger; this one notes the renderer
        ...     def __init__(self) -> None:
        ...         self.renderers: list[str] = []
        ...     def use(self, config: LogConfig) -> None:
        ...         self.renderers.append(config.renderer)
        >>> follower = Follower()
        >>> follow_default_log_config(follower.use)  # told the current default at once
        >>> _ = configure_logging(renderer="json")
        >>> _ = configure_logging()
        >>> follower.renderers[-2:]
        ['json', 'console']
    """
    _PROCESS_DEFAULTS.follow(listener)


def default_log_config() -> LogConfig:
    """The current process default set by :func:`configure_logging`.

    Examples:
        >>> isinstance(default_log_config(), LogConfig)
        True
    """
    return _PROCESS_DEFAULTS.get()


class _SpanIds:
    """The last span context seen and its hex ids, shared by a logger and the loggers it binds: a request's
    records share one span, formatted once. One tuple, replaced whole, so threads never see a context paired
    with another's ids."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: tuple[trace.SpanContext | None, str, str] = (None, "", "")

    def of(self, context: trace.SpanContext) -> tuple[str, str]:
        last = self.last
        if last[0] is not context:
            last = self.last = (
                context,
                trace.format_trace_id(context.trace_id),
                trace.format_span_id(context.span_id),
            )
        return last[1], last[2]


def _enrich(record: MutableMapping[str, Any], level: str, ids: _SpanIds) -> None:
    """Drop embeddings; add ``level``, ``timestamp``, ``logger`` and, in a valid span, ``trace_id`` / ``span_id``."""
    if not EMBEDDING_KEYS.isdisjoint(record):
        for key in EMBEDDING_KEYS.intersection(record):
            del record[key]
    record["level"] = level
    record["timestamp"] = time.time()
    record["logger"] = LOGGER_NAME
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        record["trace_id"], record["span_id"] = ids.of(context)


class _Enrich:
    """The one enrichment processor: drops embeddings, adds ``level``, ``timestamp`` (Unix seconds),
    ``logger`` and, inside a valid OpenTelemetry span, ``trace_id`` / ``span_id``; hands a copy to the sink.

    One processor instead of five keeps a record to ~one Python call of work (two records per route).
    """

    def __init__(self, sink: Sink | None) -> None:
        self._sink = sink
        self._ids = _SpanIds()

    def __call__(self, _: WrappedLogger, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        _enrich(event_dict, _METHOD_LEVELS.get(method_name, method_name), self._ids)
        if self._sink is not None:
            self._sink(dict(event_dict))  # a copy: the renderers go on to change the record
        return event_dict


#: structlog method names that are not level names.
_METHOD_LEVELS = {"warn": "warning", "exception": "error", "fatal": "critical"}


def _iso_timestamp(_: WrappedLogger, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Unix seconds -> ISO 8601 UTC (``...Z``), for rendered lines only."""
    stamp = datetime.fromtimestamp(event_dict["timestamp"], UTC).isoformat()
    event_dict["timestamp"] = stamp.replace("+00:00", "Z")
    return event_dict


def _json_default(value: object) -> object:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return repr(value)


def _console_value(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, np.ndarray | np.generic):
        return json.dumps(value.tolist())
    return str(value)


_CONSOLE_SKIP = frozenset({"timestamp", "level", "logger", "event"})


def render_console(_: WrappedLogger, __: str, event_dict: MutableMapping[str, Any]) -> str:
    """Renders the guide's line: ``<ts> LEVEL tiny_dancer_router: message k=v ...``.

    Examples:
        >>> render_console(None, "info", {"timestamp": "T", "level": "info", "logger": "tiny_dancer_router",
        ...                               "event": "Routing decision made", "candidate_id": "c-1",
        ...                               "use_lightweight": True})
        'T  INFO tiny_dancer_router: Routing decision made candidate_id="c-1" use_lightweight=true'
    """
    fields = " ".join(f"{k}={_console_value(v)}" for k, v in event_dict.items() if k not in _CONSOLE_SKIP)
    head = (
        f"{event_dict.get('timestamp', '')} {str(event_dict.get('level', '')).upper():>5} "
        f"{event_dict.get('logger', LOGGER_NAME)}: {event_dict.get('event', '')}"
    )
    return f"{head} {fields}" if fields else head


class RouterLogger(Protocol):
    """What a router's logger offers (structlog's ``FilteringBoundLogger`` and :class:`SinkLogger` both do)."""

    def is_enabled_for(self, level: int) -> bool: ...
    def debug(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def info(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def warning(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def error(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def critical(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def exception(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def bind(self, **new_values: Any) -> RouterLogger: ...


def _sink_method(level: int, name: str) -> Callable[..., None]:
    """:class:`SinkLogger`'s method for one level: the record made and enriched, no processor chain."""

    def emit(self: SinkLogger, event: str, *args: Any, **fields: Any) -> None:
        if self._level > level:
            return
        record = {**self._context, **fields} if self._context else fields  # fields: a new dict per call
        record["event"] = event % args if args else event
        _enrich(record, name, self._ids)
        if self._sink is not None:
            self._sink(record)

    emit.__name__ = emit.__qualname__ = name
    emit.__doc__ = f"Emit a {name.upper()} record (when the level allows): ``event % args`` and ``fields``."
    return emit


class SinkLogger:
    """The logger of ``renderer="none"``: each record at or above the level is enriched and handed to the sink.

    The records structlog's logger makes with :class:`_Enrich` (same keys, same order: bound values, fields,
    ``event``, ``level``, ``timestamp``, ``logger``, then ``trace_id`` / ``span_id`` inside a valid span), made
    inline: no processor chain, bound-logger dispatch or silent renderer for a record that nothing prints.
    Records below the level cost one comparison.

    Args:
        level: lowest level emitted (a :data:`LEVELS` value).
        sink: called with every record emitted (a new dict, the sink's to keep).
        context: values bound into every record (:meth:`bind`).

    Examples:
        >>> records = []
        >>> log = SinkLogger(logging.INFO, records.append).bind(router="a")
        >>> log.debug(LogEvent.FEATURES, batch_size=3)
        >>> log.info(LogEvent.REQUEST_STARTED, candidate_count=3)
        >>> [(r["router"], r["candidate_count"], r["event"], r["level"]) for r in records]
        [('a', 3, 'Processing routing request', 'info')]
    """

    __slots__ = ("_context", "_ids", "_level", "_sink")

    def __init__(self, level: int, sink: Sink | None, context: dict[str, Any] | None = None) -> None:
        self._level = level
        self._sink = sink
        self._context = context or {}
        self._ids = _SpanIds()

    def is_enabled_for(self, level: int) -> bool:
        """Whether records at ``level`` are emitted."""
        return level >= self._level

    def get_effective_level(self) -> int:
        """The lowest level emitted."""
        return self._level

    def bind(self, **new_values: Any) -> SinkLogger:
        """A logger adding ``new_values`` to every record (this one is unchanged)."""
        return self.new(**self._context, **new_values)

    def new(self, **new_values: Any) -> SinkLogger:
        """A logger with only ``new_values`` bound, to the same sink."""
        logger = SinkLogger(self._level, self._sink, new_values)
        logger._ids = self._ids
        return logger

    debug = _sink_method(logging.DEBUG, "debug")
    info = msg = _sink_method(logging.INFO, "info")
    warning = warn = _sink_method(logging.WARNING, "warning")
    error = _sink_method(logging.ERROR, "error")
    critical = fatal = _sink_method(logging.CRITICAL, "critical")

    def exception(self, event: str, *args: Any, **kw: Any) -> None:
        """An ERROR record with ``exc_info=True``, as structlog's."""
        kw.setdefault("exc_info", True)
        self.error(event, *args, **kw)


class RouteLogs(NamedTuple):
    """The two INFO records of one successful route (``renderer="none"``, level INFO), kept as one entry.

    A :class:`~tinydancer.observability.collector.Collector` stores it as it comes (one append, no dicts) and
    makes the two records when it is read: :meth:`records` gives exactly what :class:`SinkLogger` would have
    handed the sink (same keys, order and values; each record's own timestamp).

    Examples:
        >>> started, completed = RouteLogs(1.0, 3, 1.5, 245, 2, 1, None, None).records()
        >>> started["event"], started["candidate_count"], completed["powerful_routes"], completed["timestamp"]
        ('Processing routing request', 3, 1, 1.5)
    """

    started_at: float  # Unix seconds of "Processing routing request"
    candidate_count: int
    completed_at: float  # Unix seconds of "Routing request completed successfully"
    inference_time_us: int
    lightweight_routes: int
    powerful_routes: int
    trace_id: str | None  # lowercase hex of the request's span, when its context is valid
    span_id: str | None

    def records(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The two records: ``request_started`` then ``request_completed``."""
        completed = {
            "inference_time_us": self.inference_time_us,
            "lightweight_routes": self.lightweight_routes,
            "powerful_routes": self.powerful_routes,
            "event": LogEvent.REQUEST_COMPLETED,
            "level": "info",
            "timestamp": self.completed_at,
            "logger": LOGGER_NAME,
        }
        started = started_record(self.candidate_count, self.started_at, self.trace_id, self.span_id)
        if self.trace_id is not None:
            completed["trace_id"], completed["span_id"] = self.trace_id, self.span_id
        return started, completed


def started_record(candidate_count: int, timestamp: float, trace_id: str | None, span_id: str | None) -> dict[str, Any]:
    """The ``Processing routing request`` record as :class:`SinkLogger` makes it (for a request whose start was
    deferred, :class:`RouteLogs`, and that failed).

    Examples:
        >>> list(started_record(2, 1.0, None, None))
        ['candidate_count', 'event', 'level', 'timestamp', 'logger']
    """
    record: dict[str, Any] = {
        "candidate_count": int(candidate_count),
        "event": LogEvent.REQUEST_STARTED,
        "level": "info",
        "timestamp": timestamp,
        "logger": LOGGER_NAME,
    }
    if trace_id is not None:
        record["trace_id"], record["span_id"] = trace_id, span_id
    return record


def defers_route_logs(config: LogConfig) -> bool:
    """Whether a router logging with ``config`` hands a successful route's records over as one :class:`RouteLogs`.

    True for ``renderer="none"`` at level INFO (the default until :func:`configure_logging`): nothing is
    printed, and the route's records are exactly its two INFO ones. Any renderer prints each record as it
    happens, and DEBUG adds records between the two, so those log record by record.

    Examples:
        >>> defers_route_logs(LogConfig(renderer="none")), defers_route_logs(LogConfig()), \
defers_route_logs(LogConfig("DEBUG", "none"))
        (True, False, False)
    """
    return config.renderer == "none" and config.level == "INFO"


def make_router_logger(config: LogConfig | None = None, sink: Sink | None = None) -> RouterLogger:
    """A structlog logger for one router (independent of structlog's global configuration).

    Args:
        config: log settings (default: :func:`default_log_config` as it is now; a later
            :func:`configure_logging` does not change this logger, see :func:`follow_default_log_config`).
        sink: called with a copy of every emitted record (after enrichment, before rendering).

    Returns:
        A :class:`RouterLogger`: ``.debug/.info/.warning/.error(event, **fields)``, ``.bind``. For
        ``renderer="none"`` a :class:`SinkLogger` (nothing to render: no structlog processor chain), else a
        structlog ``FilteringBoundLogger`` whose one processor is the same enrichment, then the renderer.

    Examples:
        >>> records = []
        >>> log = make_router_logger(LogConfig(renderer="none"), sink=records.append)
        >>> log.debug(LogEvent.FEATURES, batch_size=3)
        >>> log.info(LogEvent.REQUEST_STARTED, candidate_count=3)
        >>> [(r["level"], r["event"], r["candidate_count"]) for r in records]
        [('info', 'Processing routing request', 3)]
    """
    config = config if config is not None else default_log_config()
    if config.renderer == "none":
        return SinkLogger(LEVELS[config.level], sink)
    json_renderer = structlog.processors.JSONRenderer(default=_json_default)
    renderer = render_console if config.renderer == "console" else json_renderer
    processors: list[Processor] = [_Enrich(sink), _iso_timestamp, renderer]
    wrapped = structlog.PrintLogger(file=config.stream if config.stream is not None else sys.stderr)
    proxy = structlog.wrap_logger(
        wrapped,
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[config.level]),
        context_class=dict,
        cache_logger_on_first_use=False,
    )
    logger: FilteringBoundLogger = proxy.bind()  # the concrete logger: no lazy-proxy hop per call
    return logger


def log_router_initialized(logger: RouterLogger, circuit_breaker_threshold: int | None) -> None:
    """``Initializing Tiny Dancer router`` then, if the breaker is on, its threshold (INFO).

    Examples:
        >>> log_router_initialized(make_router_logger(LogConfig(renderer="none")), 5)
    """
    logger.info(LogEvent.ROUTER_INIT)
    if circuit_breaker_threshold is not None:
        logger.info(LogEvent.CIRCUIT_BREAKER_ENABLED.format(threshold=circuit_breaker_threshold))


def log_request_started(logger: RouterLogger, candidate_count: int) -> None:
    """``Processing routing request`` (INFO) with ``candidate_count``.

    Args:
        logger: the router's logger.
        candidate_count: number of candidates.

    Examples:
        >>> records = []
        >>> log = make_router_logger(LogConfig(renderer="none"), sink=records.append)
        >>> log_request_started(log, 3)
        >>> records[0]["event"], records[0]["candidate_count"]
        ('Processing routing request', 3)
    """
    logger.info(LogEvent.REQUEST_STARTED, candidate_count=int(candidate_count))


def log_candidate_results(
    logger: RouterLogger,
    candidate_ids: Sequence[str],
    confidence: NDArray[np.floating] | Sequence[float],
    uncertainty: NDArray[np.floating] | Sequence[float],
    use_lightweight: NDArray[np.bool_] | Sequence[bool],
) -> int:
    """Per-candidate DEBUG records (inference result, then decision); nothing when DEBUG is off.

    Args:
        logger: the router's logger.
        candidate_ids: N ids.
        confidence: [N] scores.
        uncertainty: [N] uncertainty estimates.
        use_lightweight: [N] decisions.

    Returns:
        Number of records emitted (2 N, or 0 when DEBUG is filtered out).

    Examples:
        >>> log = make_router_logger(LogConfig(level="DEBUG", renderer="none"))
        >>> log_candidate_results(log, ["a"], np.array([0.9]), np.array([0.05]), np.array([True]))
        2
    """
    if not logger.is_enabled_for(logging.DEBUG):
        return 0
    conf = np.asarray(confidence).tolist()
    unc = np.asarray(uncertainty).tolist()
    light = np.asarray(use_lightweight).tolist()
    for cid, c, u, lw in zip(candidate_ids, conf, unc, light, strict=True):
        logger.debug(LogEvent.INFERENCE_COMPLETED, candidate_id=str(cid), confidence=float(c))
        logger.debug(LogEvent.DECISION, candidate_id=str(cid), use_lightweight=bool(lw), uncertainty=float(u))
    return 2 * len(conf)


def log_request_completed(
    logger: RouterLogger, inference_time_us: int, lightweight_routes: int, powerful_routes: int
) -> None:
    """``Routing request completed successfully`` (INFO) with the guide's three fields.

    Examples:
        >>> log_request_completed(make_router_logger(LogConfig(renderer="none")), 245, 2, 1)
    """
    logger.info(
        LogEvent.REQUEST_COMPLETED,
        inference_time_us=int(inference_time_us),
        lightweight_routes=int(lightweight_routes),
        powerful_routes=int(powerful_routes),
    )


def log_circuit_open(logger: RouterLogger, retry_after_s: float) -> None:
    """``Circuit breaker is open, rejecting request`` (ERROR) with ``retry_after_s``.

    Examples:
        >>> log_circuit_open(make_router_logger(LogConfig(renderer="none")), 12.5)
    """
    logger.error(LogEvent.CIRCUIT_OPEN, retry_after_s=float(retry_after_s))


def log_request_failed(logger: RouterLogger, error: BaseException) -> None:
    """``Routing request failed`` (ERROR) with ``error_type`` (the metric label) and ``error``.

    Examples:
        >>> log_request_failed(make_router_logger(LogConfig(renderer="none")), ValueError("bad"))
    """
    error_type = getattr(error, "error_type", "internal_error")
    logger.error(LogEvent.REQUEST_FAILED, error_type=str(error_type), error=str(error))


def log_operating_point_changed(logger: RouterLogger, from_point: str | None, to_point: str, threshold: float) -> None:
    """``Operating point changed`` (INFO) with ``from_operating_point``, ``to_operating_point``, ``threshold``.

    Examples:
        >>> records = []
        >>> log = make_router_logger(LogConfig(renderer="none"), sink=records.append)
        >>> log_operating_point_changed(log, None, "a", 0.5)
        >>> records[0]["to_operating_point"], records[0]["threshold"]
        ('a', 0.5)
    """
    logger.info(
        LogEvent.OPERATING_POINT_CHANGED,
        from_operating_point=from_point,
        to_operating_point=to_point,
        threshold=float(threshold),
    )
