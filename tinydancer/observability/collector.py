"""In-memory collectors of a Router's requests, decisions and logs, with a pandas bridge.

A :class:`Collector` keeps the most recent records of each kind in bounded deques behind one lock and
hands out immutable tuple snapshots (the habit of OpenTelemetry's ``InMemorySpanExporter``). Decisions
are stored columnar, one :class:`DecisionBatch` per route call, so a 1000-candidate request costs a
single append; they are expanded to one row per candidate only when :meth:`Collector.decisions` runs.
Spans are stored the same way, one tuple per sampled route call (:meth:`Collector.record_spans`), so
they outlive the tracing system that produced them (its shutdown, a re-init with a new config).
Metrics are not copied: they are read on demand from the Router's Prometheus registry. pandas is
imported here only, and lazily.

A Collector belongs to one Router: request ids, records, spans and the metrics it reads are that
router's, and nothing in them says which router a row came from. Handing it to a second Router raises
``ConfigError`` (:meth:`Collector.attach`) instead of mixing two routers' rows and showing one's
metrics; give each router its own Collector (the default) and compare their frames side by side.

Frames (fixed columns and dtypes; an empty frame has the same ones; missing strings are NaN):

* ``requests()``: request_id int64, timestamp datetime64[ns, UTC], latency_us float64,
  feature_time_us float64, candidate_count int64, outcome str ("success" | "failure" | "rejected"),
  error_type str, trace_id str (32 hex), span_id str (16 hex), lightweight_routes int64,
  powerful_routes int64.
* ``decisions()``: request_id int64, timestamp datetime64[ns, UTC], candidate_id str, rank int64,
  confidence float64, uncertainty float64, use_lightweight bool, decision str ("lightweight" |
  "powerful"), model_type str (the model that scored the request, e.g. "fastgrnn"); then, for a prompt
  router's rows (NaN on candidate rows): model str (the chosen model's name), p_strong float64
  (calibrated P(strong needed)), prediction_set str ("weak", "strong", "weak,strong" or "" for the empty
  set; NaN without a conformal quantile), operating_point str, threshold float64, prompt_chars float64,
  prompt_hash str (the first 16 hex digits of the prompt's SHA-256), prompt str (NaN unless the router
  records prompt text), propensity float64 (probability that the router took the decision it took: 1 without
  exploration).
* ``logs()``: timestamp datetime64[ns, UTC], level str, event str, trace_id str, span_id str,
  fields object (dict of every other key of the event dict; ``expand_fields=True`` adds one column
  per key).
* ``spans()``: trace_id str, span_id str, parent_span_id str, name str, kind str, start and end
  datetime64[ns, UTC], duration_us float64, status str ("UNSET" | "OK" | "ERROR"), attributes object.
* ``metrics()``: metric str (family name), type str, sample str, labels object (dict), value float64;
  ``expand_labels=True`` adds one column per label name.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from tinydancer.errors import ConfigError, InvalidInputError
from tinydancer.observability.logs import RouteLogs
from tinydancer.observability.outcomes import Outcome

if TYPE_CHECKING:
    import pandas as pd
    from opentelemetry.sdk.trace import ReadableSpan
    from prometheus_client.metrics_core import Metric


class RequestRecord(NamedTuple):
    """One route call. ``timestamp`` is Unix seconds; ids are lowercase hex or None when untraced."""

    request_id: int
    timestamp: float
    latency_us: float
    feature_time_us: float
    candidate_count: int
    outcome: str
    error_type: str | None
    trace_id: str | None
    span_id: str | None
    lightweight_routes: int
    powerful_routes: int


class RequestBatch(NamedTuple):
    """The request records of one batch call, kept as one entry: ``first`` is the first request's record, and
    request ``first.request_id + i`` shares its every field but the id and the routes, which are
    ``lightweight_routes[i]`` and ``powerful_routes[i]`` ([N] int arrays). A batch of prompts stores one of these
    instead of N :class:`RequestRecord` objects (fewer Python objects for the garbage collector to walk);
    :meth:`records` gives the rows.

    Examples:
        >>> first = RequestRecord(7, 0.0, 9.5, 1.0, 1, "success", None, None, None, 1, 0)
        >>> batch = RequestBatch(first, np.array([1, 0]), np.array([0, 1]))
        >>> [(r.request_id, r.powerful_routes) for r in batch.records()]
        [(7, 0), (8, 1)]
    """

    first: RequestRecord
    lightweight_routes: np.ndarray
    powerful_routes: np.ndarray

    @property
    def rows(self) -> int:
        """Request records in the batch."""
        return len(self.powerful_routes)

    def records(self) -> list[RequestRecord]:
        """The batch as one :class:`RequestRecord` per request, in request id order."""
        first_id, shared = self.first.request_id, self.first[1:9]
        routes = zip(self.lightweight_routes.tolist(), self.powerful_routes.tolist(), strict=True)
        return [RequestRecord(first_id + i, *shared, light, strong) for i, (light, strong) in enumerate(routes)]

    def without_first(self, count: int) -> RequestBatch:
        """The batch less its first ``count`` records."""
        return RequestBatch(
            self.first._replace(request_id=self.first.request_id + count),
            self.lightweight_routes[count:],
            self.powerful_routes[count:],
        )


class DecisionBatch(NamedTuple):
    """Every candidate decision of one route call, columnar; every array has shape [N].

    The collector keeps references to the arrays: the caller must not mutate them afterwards.
    """

    request_id: int
    timestamp: float
    candidate_ids: tuple[str, ...]
    confidence: np.ndarray
    uncertainty: np.ndarray
    use_lightweight: np.ndarray
    rank: np.ndarray
    model_type: str


class PromptDecisionBatch(NamedTuple):
    """The decisions of one prompt-routing call, columnar: prompt i is request ``first_request_id + i``.

    Every array has shape [N]. ``prompt_text`` is None unless the router was configured to record
    prompts (they are user data); ``in_set_*`` are None without a conformal quantile.
    """

    first_request_id: int
    timestamp: float
    prompt_chars: np.ndarray
    prompt_hash: tuple[str, ...]
    prompt_text: tuple[str, ...] | None
    use_strong: np.ndarray
    p_strong: np.ndarray
    confidence: np.ndarray
    uncertainty: np.ndarray
    in_set_weak: np.ndarray | None
    in_set_strong: np.ndarray | None
    weak_model: str
    strong_model: str
    operating_point: str
    threshold: float
    model_type: str
    propensity: np.ndarray | None = None


class LogRecord(NamedTuple):
    """One structlog event dict, split into the fixed columns and the rest (``fields``)."""

    timestamp: float
    level: str | None
    event: str | None
    trace_id: str | None
    span_id: str | None
    fields: Mapping[str, Any]


class _Registry(Protocol):
    def collect(self) -> Iterable[Metric]: ...


REQUEST_COLUMNS: tuple[str, ...] = RequestRecord._fields
CANDIDATE_DECISION_COLUMNS: tuple[str, ...] = (
    "request_id",
    "timestamp",
    "candidate_id",
    "rank",
    "confidence",
    "uncertainty",
    "use_lightweight",
    "decision",
    "model_type",
)
#: Columns of a prompt router's decisions, after :data:`DECISION_COLUMNS` (NaN on candidate rows).
PROMPT_DECISION_COLUMNS: tuple[str, ...] = (
    "model",
    "p_strong",
    "prediction_set",
    "operating_point",
    "threshold",
    "prompt_chars",
    "prompt_hash",
    "prompt",
    "propensity",
)
DECISION_COLUMNS: tuple[str, ...] = CANDIDATE_DECISION_COLUMNS + PROMPT_DECISION_COLUMNS
LOG_COLUMNS: tuple[str, ...] = LogRecord._fields
SPAN_COLUMNS: tuple[str, ...] = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start",
    "end",
    "duration_us",
    "status",
    "attributes",
)
METRIC_COLUMNS: tuple[str, ...] = ("metric", "type", "sample", "labels", "value")

_STR, _TS = "str", "datetime64[ns, UTC]"
_DECISIONS = ("powerful", "lightweight")  # category codes: int(use_lightweight)
_REQUEST_DTYPES = dict(zip(REQUEST_COLUMNS, ("int64", _TS, "float64", "float64", "int64", _STR, _STR,
                                              _STR, _STR, "int64", "int64"), strict=True))  # fmt: skip
_ARRAYS = ("confidence", "uncertainty", "use_lightweight", "rank")
_LOG_KEYS = ("timestamp", "level", "log_level", "event", "trace_id", "span_id")


class Collector:
    """Bounded, thread-safe in-memory store of a Router's records, with DataFrame views.

    Args:
        capacity_requests: request records kept; the oldest are dropped (and counted) beyond it.
        capacity_decisions: candidate ROWS kept; the oldest whole batches are dropped beyond it, so a
            request's decisions are either all present or all absent (a batch larger than the
            capacity is dropped at once).
        capacity_logs: log records kept (a route's two INFO records handed over as one
            :class:`~tinydancer.observability.logs.RouteLogs` count two and are dropped together).
        capacity_spans: spans kept; the oldest whole batches (one per route call) are dropped beyond it,
            so a request's spans are either all present or all absent.
        span_source: an extra, live source of finished spans, e.g. an
            ``InMemorySpanExporter.get_finished_spans``; read on every :meth:`spans` call and not kept
            (what it stops returning is gone). A Router records its spans with :meth:`record_spans`.
        metric_source: returns the Prometheus ``CollectorRegistry`` to read samples from, for a
            collector used on its own; a Router supplies its registry when it attaches the collector
            (:meth:`attach`).
        clock: Unix-seconds clock, used to stamp log events that carry no timestamp.

    Raises:
        ConfigError: a capacity is negative (0 keeps nothing and counts every record as dropped).

    Examples:
        >>> c = Collector(capacity_requests=2)
        >>> for _ in range(3):
        ...     c.record_request(RequestRecord(
        ...         request_id=c.next_request_id(), timestamp=0.0, latency_us=9.5, feature_time_us=1.0,
        ...         candidate_count=3, outcome="success", error_type=None, trace_id=None, span_id=None,
        ...         lightweight_routes=1, powerful_routes=2))
        >>> c.dropped["requests"], list(c.requests().request_id)
        (1, [1, 2])
    """

    def __init__(
        self,
        capacity_requests: int = 100_000,
        capacity_decisions: int = 1_000_000,
        capacity_logs: int = 100_000,
        capacity_spans: int = 10_000,
        *,
        span_source: Callable[[], Sequence[ReadableSpan]] | None = None,
        metric_source: Callable[[], _Registry] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        capacities = {
            "requests": capacity_requests,
            "decisions": capacity_decisions,
            "logs": capacity_logs,
            "spans": capacity_spans,
        }
        for kind, cap in capacities.items():
            if not isinstance(cap, int) or cap < 0:
                raise ConfigError(f"capacity_{kind}: expected an int >= 0, got {cap!r}")
        self.capacity = dict(capacities)
        self.span_source = span_source
        self.metric_source = metric_source
        self._owner: str | None = None
        self._clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._requests: deque[RequestRecord | RequestBatch] = deque()
        self._request_rows = 0  # request records in _requests
        self._batches: deque[DecisionBatch | PromptDecisionBatch] = deque()
        # One entry per record, or one RouteLogs per successful route (two records, kept or dropped together).
        self._logs: deque[tuple[dict[str, Any], float | None] | RouteLogs] = deque()
        self._log_count = 0  # records in _logs
        self._span_batches: deque[tuple[ReadableSpan, ...]] = deque()
        self._outcomes: deque[Outcome] = deque(maxlen=capacity_requests)  # as many as request records
        self._outcomes_dropped = 0
        self._rows = 0
        self._span_count = 0
        self._dropped = dict.fromkeys(capacities, 0)

    # -- owner -----------------------------------------------------------------------------------
    def attach(self, owner: str, metric_source: Callable[[], _Registry]) -> None:
        """Make this the collector of one router, ``owner``, whose metrics ``metric_source`` returns.

        A Router calls this when it is handed the collector. One collector serves one router: a
        second one would mix its requests, decisions, logs and spans into the first one's, with
        nothing to tell them apart, and :meth:`metrics` can read only one registry.

        Args:
            owner: who records into it, for messages (e.g. ``"Router at 0x7f..."``).
            metric_source: returns the owner's Prometheus registry.

        Raises:
            ConfigError: it already belongs to a router, or was made with a ``metric_source`` of
                its own (which the router's would silently replace).

        Examples:
            >>> from prometheus_client import CollectorRegistry
            >>> c, reg = Collector(), CollectorRegistry()
            >>> c.attach("router A", lambda: reg)
            >>> c.owner
            'router A'
            >>> c.attach("router B", lambda: reg)
            Traceback (most recent call last):
            ...
            tinydancer.errors.ConfigError: collector: expected a Collector no other router records into, \
got one that belongs to router A; give each Router its own Collector
        """
        with self._lock:
            if self._owner is not None:
                raise ConfigError(
                    f"collector: expected a Collector no other router records into, got one that belongs to "
                    f"{self._owner}; give each Router its own Collector"
                )
            if self.metric_source is not None:
                raise ConfigError(
                    "collector: expected a Collector without a metric_source (the router supplies its own "
                    "registry), got one made with metric_source=...; leave it out"
                )
            self._owner = owner
            self.metric_source = metric_source

    @property
    def owner(self) -> str | None:
        """Who records into this collector (set by :meth:`attach`); None for a collector used on its own."""
        return self._owner

    # -- writers ---------------------------------------------------------------------------------
    def next_request_id(self) -> int:
        """Returns a new request id: 0, 1, 2, ... unique across threads and across :meth:`clear`.

        Examples:
            >>> c = Collector()
            >>> c.next_request_id(), c.next_request_id()
            (0, 1)
        """
        with self._lock:
            return next(self._ids)

    def next_request_ids(self, count: int) -> range:
        """``count`` consecutive new request ids (a batch of prompts: one request each).

        Examples:
            >>> c = Collector()
            >>> list(c.next_request_ids(3)), c.next_request_id()
            ([0, 1, 2], 3)
        """
        with self._lock:
            first = next(self._ids)
            self._ids = itertools.count(first + max(count, 1))
        return range(first, first + count)

    def record_requests(self, records: Sequence[RequestRecord] | RequestBatch) -> None:
        """Stores request records in order (rows, or one :class:`RequestBatch`), dropping (and counting) the oldest
        beyond capacity."""
        with self._lock:
            if isinstance(records, RequestBatch):
                if records.rows:
                    self._requests.append(records)
                    self._request_rows += records.rows
            else:
                self._requests.extend(records)
                self._request_rows += len(records)
            self._trim_requests()

    def record_request(self, record: RequestRecord) -> None:
        """Stores one request record, dropping (and counting) the oldest when full."""
        with self._lock:
            self._requests.append(record)
            self._request_rows += 1
            if self._request_rows > self.capacity["requests"]:
                self._trim_requests()

    def _trim_requests(self) -> None:
        """Drops (and counts) the oldest request records beyond capacity, a batch's from its front; under the lock."""
        excess = self._request_rows - self.capacity["requests"]
        while excess > 0:
            old = self._requests.popleft()
            rows = old.rows if isinstance(old, RequestBatch) else 1
            if isinstance(old, RequestBatch) and rows > excess:
                self._requests.appendleft(old.without_first(excess))
                rows = excess
            self._request_rows -= rows
            self._dropped["requests"] += rows
            excess -= rows

    def record_decisions(self, batch: DecisionBatch) -> None:
        """Stores the decisions of one route call (arrays of shape [N]) in one append.

        Raises:
            InvalidInputError: the arrays and ``candidate_ids`` disagree in length.
        """
        n = len(batch.candidate_ids)
        try:
            ok = batch.confidence.shape == batch.uncertainty.shape == batch.use_lightweight.shape == batch.rank.shape
        except AttributeError:
            ok = False
        if not ok or batch.rank.shape != (n,):
            arrays = (batch.confidence, batch.uncertainty, batch.use_lightweight, batch.rank)
            got = {k: getattr(a, "shape", type(a).__name__) for k, a in zip(_ARRAYS, arrays, strict=True)}
            raise InvalidInputError(f"DecisionBatch: expected arrays of shape ({n},) for {n} ids, got {got}")
        self._append_batch(batch, n)

    def record_prompt_decisions(self, batch: PromptDecisionBatch) -> None:
        """Stores the decisions of one prompt-routing call in one append (capacity in rows, like candidates).

        Raises:
            InvalidInputError: the arrays and ``prompt_hash`` disagree in length.
        """
        n = len(batch.prompt_hash)
        arrays = (batch.prompt_chars, batch.use_strong, batch.p_strong, batch.confidence, batch.uncertainty)
        if any(np.shape(a) != (n,) for a in arrays):
            shapes = [np.shape(a) for a in arrays]
            raise InvalidInputError(f"PromptDecisionBatch: expected arrays of shape ({n},), got {shapes}")
        self._append_batch(batch, n)

    def _append_batch(self, batch: DecisionBatch | PromptDecisionBatch, rows: int) -> None:
        with self._lock:
            self._batches.append(batch)
            self._rows += rows
            # Whole batches only: a request's decisions are complete or absent, never cut.
            while self._rows > self.capacity["decisions"]:
                old = self._batches.popleft()
                size = len(old.candidate_ids) if isinstance(old, DecisionBatch) else len(old.prompt_hash)
                self._rows -= size
                self._dropped["decisions"] += size

    def record_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """Stores outcome reports (joined to a request or not), dropping (and counting) the oldest when full."""
        with self._lock:
            self._outcomes_dropped += max(len(self._outcomes) + len(outcomes) - self.capacity["requests"], 0)
            self._outcomes.extend(outcomes)

    @property
    def outcomes_dropped(self) -> int:
        """Outcome reports dropped since the last clear (the collector keeps as many as request records)."""
        with self._lock:
            return self._outcomes_dropped

    def outcomes(self) -> pd.DataFrame:
        """One row per outcome report, oldest first: request_id int64, timestamp (arrival, UTC), weak_correct,
        strong_correct, quality, cost float64 (NaN: not in that report), joined bool (False: the request id was
        unknown or forgotten).

        Examples:
            >>> c = Collector()
            >>> c.record_outcomes([Outcome(4, 0.0, 1.0, None, None, None, True)])
            >>> c.outcomes()[["request_id", "weak_correct", "joined"]].values.tolist()
            [[4, 1.0, True]]
        """
        import pandas as pd

        with self._lock:
            rows = list(self._outcomes)
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(Outcome._fields)
        return pd.DataFrame(
            {
                "request_id": pd.Series(cols[0], dtype="int64"),
                "timestamp": _to_utc(cols[1]),
                **{
                    name: pd.Series([np.nan if v is None else v for v in col], dtype="float64")
                    for name, col in zip(Outcome._fields[2:6], cols[2:6], strict=True)
                },
                "joined": pd.Series(cols[6], dtype="bool"),
            }
        )

    def record_log(self, event_dict: Mapping[str, Any]) -> None:
        """Stores a shallow copy of one structlog event dict (usable as a sink callable).

        ``timestamp`` may be Unix seconds or an ISO 8601 string (structlog ``TimeStamper``); without
        one, the collector's clock stamps it; an unparseable one shows as NaT and is kept in ``fields``.
        ``level`` (or ``log_level``), ``event``, ``trace_id`` and ``span_id`` become columns; every other
        key goes to ``fields``. Parsing happens when the records are read, not here.
        """
        # Hot path: copy and append only; parsing into a LogRecord waits for log_records() / logs().
        entry = (dict(event_dict), None if "timestamp" in event_dict else self._clock())
        with self._lock:
            self._logs.append(entry)
            self._keep_logs(1)

    def record_route_logs(self, entry: RouteLogs) -> None:
        """Stores a successful route's two INFO records as one entry; they become records when read.

        The router's hot path (a :class:`~tinydancer.observability.logs.RouteLogs` is one tuple, not two dicts).
        Capacity counts both records; when it is full they are dropped together, oldest first, and counted.

        Examples:
            >>> from tinydancer.observability.logs import RouteLogs
            >>> c = Collector()
            >>> c.record_route_logs(RouteLogs(1.0, 3, 1.5, 245, 2, 1, None, None))
            >>> c.logs()["event"].tolist(), c.stored["logs"]
            (['Processing routing request', 'Routing request completed successfully'], 2)
        """
        with self._lock:
            self._logs.append(entry)
            self._keep_logs(2)

    def _keep_logs(self, added: int) -> None:
        """Count ``added`` records; drop (and count) the oldest entries beyond capacity (caller holds the lock)."""
        self._log_count += added
        logs, dropped = self._logs, self._dropped
        while self._log_count > self.capacity["logs"]:
            records = 2 if isinstance(logs.popleft(), RouteLogs) else 1
            self._log_count -= records
            dropped["logs"] += records

    def record_spans(self, spans: Iterable[ReadableSpan]) -> None:
        """Stores the finished spans of one route call in one append (nothing for an empty batch).

        Beyond ``capacity_spans`` the oldest whole batches are dropped and counted (in spans), like
        decisions: a request's spans are complete or absent. The collector keeps references only.

        Examples:
            >>> from opentelemetry.sdk.trace import TracerProvider
            >>> tracer = TracerProvider().get_tracer("doc")
            >>> c = Collector(capacity_spans=2)
            >>> for name in ("a", "b", "c"):
            ...     span = tracer.start_span(name)
            ...     span.end()
            ...     c.record_spans([span])
            >>> [s.name for s in c.finished_spans()], c.dropped["spans"]
            (['b', 'c'], 1)
        """
        batch = tuple(spans)
        if not batch:
            return
        with self._lock:
            self._span_batches.append(batch)
            self._span_count += len(batch)
            while self._span_count > self.capacity["spans"]:
                old = self._span_batches.popleft()
                self._span_count -= len(old)
                self._dropped["spans"] += len(old)

    def clear(self) -> None:
        """Forgets every record and resets the drop counts; request ids keep increasing."""
        with self._lock:
            self._requests.clear()
            self._request_rows = 0
            self._batches.clear()
            self._logs.clear()
            self._log_count = 0
            self._span_batches.clear()
            self._outcomes.clear()
            self._outcomes_dropped = 0
            self._rows = 0
            self._span_count = 0
            self._dropped = dict.fromkeys(self._dropped, 0)

    def detach(self, *, clear: bool = False) -> Collector:
        """A new collector, attached to no router, holding a copy of every record (and the same metric source).

        The copy is taken under the lock, so it is one consistent moment; with ``clear`` the records move
        (this collector is emptied in the same step, drop counts reset), which is how a long-running router
        saves periodically with bounded memory (:meth:`save`). The live ``span_source`` is not copied.

        Examples:
            >>> c = Collector()
            >>> c.record_log({"event": "hello", "level": "info", "timestamp": 1.0})
            >>> copy = c.detach(clear=True)
            >>> len(copy.logs()), len(c.logs())
            (1, 0)
        """
        cap = self.capacity
        copy = Collector(cap["requests"], cap["decisions"], cap["logs"], cap["spans"], clock=self._clock)
        with self._lock:
            copy._requests.extend(self._requests)
            copy._request_rows = self._request_rows
            copy._batches.extend(self._batches)
            copy._logs.extend(self._logs)
            copy._log_count = self._log_count
            copy._span_batches.extend(self._span_batches)
            copy._outcomes.extend(self._outcomes)
            copy._outcomes_dropped = self._outcomes_dropped
            copy._rows, copy._span_count, copy._dropped = self._rows, self._span_count, dict(self._dropped)
            if clear:
                self._outcomes.clear()
                self._outcomes_dropped = 0
                self._requests.clear()
                self._batches.clear()
                self._logs.clear()
                self._span_batches.clear()
                self._rows = self._span_count = self._log_count = self._request_rows = 0
                self._dropped = dict.fromkeys(self._dropped, 0)
        copy.metric_source = self.metric_source
        return copy

    def save(self, path: str | Path, *, clear: bool = True) -> Path:
        """Append this collector's records to a recording folder as one Parquet segment (:mod:`.recording`).

        Args:
            path: The recording folder (created; later saves append segments).
            clear: Move the records (the default: periodic saves keep memory bounded); False copies them.

        Returns:
            The segment folder written.
        """
        from tinydancer.observability.recording import save_recording

        return save_recording(self, path, clear=clear)

    def __repr__(self) -> str:
        return f"Collector(stored={self.stored}, dropped={self.dropped}, capacity={self.capacity})"

    # -- snapshots -------------------------------------------------------------------------------
    @property
    def dropped(self) -> dict[str, int]:
        """Records dropped since the last clear, per kind (decisions in candidate rows, spans in spans)."""
        with self._lock:
            return dict(self._dropped)

    @property
    def stored(self) -> dict[str, int]:
        """Records currently kept, per kind (decisions in candidate rows, spans in spans)."""
        with self._lock:
            return {
                "requests": self._request_rows,
                "decisions": self._rows,
                "logs": self._log_count,
                "spans": self._span_count,
            }

    def request_records(self) -> tuple[RequestRecord, ...]:
        """An immutable snapshot of the kept request records, oldest first."""
        with self._lock:
            entries = tuple(self._requests)
        return tuple(
            itertools.chain.from_iterable(e.records() if isinstance(e, RequestBatch) else (e,) for e in entries)
        )

    def decision_batches(self) -> tuple[DecisionBatch | PromptDecisionBatch, ...]:
        """An immutable snapshot of the kept decision batches, oldest first."""
        with self._lock:
            return tuple(self._batches)

    def finished_spans(self) -> tuple[ReadableSpan, ...]:
        """An immutable snapshot of the recorded spans, oldest batch first (``span_source`` not included)."""
        with self._lock:
            batches = tuple(self._span_batches)
        return tuple(itertools.chain.from_iterable(batches))

    def log_records(self) -> tuple[LogRecord, ...]:
        """An immutable snapshot of the kept log records, oldest first."""
        with self._lock:
            entries = tuple(self._logs)
        records: list[LogRecord] = []
        for entry in entries:
            if isinstance(entry, RouteLogs):
                records += (_log_record(event, None) for event in entry.records())
            else:
                records.append(_log_record(*entry))
        return tuple(records)

    # -- DataFrames --------------------------------------------------------------------------------
    def requests(self) -> pd.DataFrame:
        """One row per route call (columns in the module docstring), oldest first."""
        import pandas as pd

        recs = self.request_records()
        cols = zip(*recs, strict=True) if recs else ((),) * len(REQUEST_COLUMNS)
        return pd.DataFrame(
            {
                k: _to_utc(v) if k == "timestamp" else pd.Series(v, dtype=_REQUEST_DTYPES[k])
                for k, v in zip(REQUEST_COLUMNS, cols, strict=True)
            }
        )

    def decisions(self) -> pd.DataFrame:
        """One row per decision (a candidate's, or a prompt's), request by request, in the router's order.

        Candidate rows leave the prompt columns NaN; prompt rows have no ``candidate_id`` and rank 0,
        ``use_lightweight`` is "the weak model serves" and ``confidence`` is the calibrated probability
        that the chosen model is the right call.

        Examples:
            >>> c = Collector()
            >>> c.record_decisions(DecisionBatch(0, 0.0, ("a", "b"), np.array([0.95, 0.4]),
            ...     np.array([0.1, 0.8]), np.array([True, False]), np.array([0, 1]), "fastgrnn"))
            >>> c.decisions()[["candidate_id", "decision"]].values.tolist()
            [['a', 'lightweight'], ['b', 'powerful']]
        """
        import pandas as pd

        batches = self.decision_batches()
        candidates = [b for b in batches if isinstance(b, DecisionBatch)]
        prompts = [b for b in batches if isinstance(b, PromptDecisionBatch)]
        frame = _candidate_frame(candidates)
        if not prompts:
            for column in PROMPT_DECISION_COLUMNS:
                frame[column] = pd.Series(np.full(len(frame), np.nan), dtype="float64" if column in _NUMERIC else _STR)
            return frame
        both = pd.concat([frame, _prompt_frame(prompts)], ignore_index=True) if candidates else _prompt_frame(prompts)
        if candidates:  # interleaved kinds (a reload switched them): back into request order
            both = both.sort_values("request_id", kind="stable", ignore_index=True)
        for column in ("decision", "model_type"):
            both[column] = both[column].astype("category")
        return both

    def logs(self, expand_fields: bool = False) -> pd.DataFrame:
        """One row per log event; ``expand_fields`` appends one column per ``fields`` key (sorted)."""
        import pandas as pd

        recs = self.log_records()
        cols = list(zip(*recs, strict=True)) if recs else [()] * len(LOG_COLUMNS)
        frame = pd.DataFrame(
            {
                "timestamp": _to_utc(cols[0]),
                **{k: pd.Series(v, dtype=_STR) for k, v in zip(LOG_COLUMNS[1:5], cols[1:5], strict=True)},
                "fields": pd.Series([dict(f) for f in cols[5]], dtype=object),
            }
        )
        return _expand(frame, "fields") if expand_fields else frame

    def spans(self, only_own_traces: bool = True) -> pd.DataFrame:
        """The recorded spans, then those of ``span_source``; by default only those of this collector's requests.

        A Router records the spans that end inside its ``route()`` calls (when sampled); they stay
        until :meth:`clear` or ``capacity_spans``, whatever happens to the tracing system meanwhile.
        ``only_own_traces`` keeps the spans whose trace id is that of a kept request record.

        Examples:
            >>> Collector().spans().columns.tolist()[:4]
            ['trace_id', 'span_id', 'parent_span_id', 'name']
        """
        import pandas as pd

        spans = list(self.finished_spans())
        if self.span_source is not None:  # a span both recorded and still in the source is listed once
            recorded = {_span_key(s) for s in spans}
            spans.extend(s for s in self.span_source() if _span_key(s) not in recorded)
        if only_own_traces:
            own = {r.trace_id for r in self.request_records() if r.trace_id is not None}
            spans = [s for s in spans if s.context is not None and f"{s.context.trace_id:032x}" in own]
        rows = [_span_row(s) for s in spans]
        cols = list(zip(*rows, strict=True)) if rows else [()] * (len(SPAN_COLUMNS) - 1)
        start, end = (np.array(c, dtype=np.int64) for c in cols[5:7])
        return pd.DataFrame(
            {
                **{k: pd.Series(v, dtype=_STR) for k, v in zip(SPAN_COLUMNS[:5], cols[:5], strict=True)},
                "start": pd.Series(start.astype("datetime64[ns]")).dt.tz_localize("UTC"),
                "end": pd.Series(end.astype("datetime64[ns]")).dt.tz_localize("UTC"),
                "duration_us": (end - start).astype(np.float64) / 1e3,
                "status": pd.Series(cols[7], dtype=_STR),
                "attributes": pd.Series(cols[8], dtype=object),
            }
        )

    def metrics(self, expand_labels: bool = False) -> pd.DataFrame:
        """Every sample of ``metric_source()`` (``*_created`` series included), one row each.

        Examples:
            >>> from prometheus_client import CollectorRegistry, Gauge
            >>> reg = CollectorRegistry()
            >>> Gauge("tiny_dancer_circuit_breaker_state", "state", registry=reg).set(2)
            >>> Collector(metric_source=lambda: reg).metrics()[["sample", "value"]].values.tolist()
            [['tiny_dancer_circuit_breaker_state', 2.0]]
        """
        import pandas as pd

        families = list(self.metric_source().collect()) if self.metric_source is not None else []
        rows = [(m.name, m.type, s.name, dict(s.labels), float(s.value)) for m in families for s in m.samples]
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(METRIC_COLUMNS)
        frame = pd.DataFrame(
            {
                **{k: pd.Series(v, dtype=_STR) for k, v in zip(METRIC_COLUMNS[:3], cols[:3], strict=True)},
                "labels": pd.Series(cols[3], dtype=object),
                "value": np.array(cols[4], dtype=np.float64),
            }
        )
        return _expand(frame, "labels") if expand_labels else frame


def _candidate_frame(batches: Sequence[DecisionBatch]) -> pd.DataFrame:
    """The candidate rows of :meth:`Collector.decisions`, one per candidate, in order."""
    import pandas as pd

    sizes = np.array([len(b.candidate_ids) for b in batches], dtype=np.int64)

    def cat(name: str, dtype: type) -> np.ndarray:
        parts: list[np.ndarray] = [np.asarray(getattr(b, name), dtype=dtype) for b in batches]
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    light = cat("use_lightweight", np.bool_)
    # Low-cardinality columns are categorical: building 1M Python strings would dominate the cost.
    models, codes = np.unique(np.array([b.model_type for b in batches], dtype=object), return_inverse=True)
    per_request = {f: np.array([getattr(b, f) for b in batches]) for f in ("request_id", "timestamp")}
    return pd.DataFrame(
        {
            "request_id": np.repeat(per_request["request_id"].astype(np.int64), sizes),
            "timestamp": _to_utc(np.repeat(per_request["timestamp"].astype(np.float64), sizes)),
            "candidate_id": pd.Series(
                list(itertools.chain.from_iterable(b.candidate_ids for b in batches)), dtype=_STR
            ),
            "rank": cat("rank", np.int64),
            "confidence": cat("confidence", np.float64),
            "uncertainty": cat("uncertainty", np.float64),
            "use_lightweight": light,
            "decision": pd.Categorical.from_codes(light.astype(np.int8), pd.Index(_DECISIONS)),
            "model_type": pd.Categorical.from_codes(np.repeat(codes, sizes), pd.Index(models.astype(str))),
        }
    )


_NUMERIC = ("p_strong", "threshold", "prompt_chars", "propensity")
_SET_NAMES = np.array(["", "strong", "weak", "weak,strong"], dtype=object)  # index: 2 * weak + strong


def _prompt_frame(batches: Sequence[PromptDecisionBatch]) -> pd.DataFrame:
    """The prompt rows of :meth:`Collector.decisions`, one per prompt, in order."""
    import pandas as pd

    sizes = np.array([len(b.prompt_hash) for b in batches], dtype=np.int64)

    def cat(name: str, dtype: type) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(b, name), dtype=dtype) for b in batches])

    def per_prompt(values: list[Any]) -> np.ndarray:
        return np.repeat(np.array(values, dtype=object), sizes)

    strong = cat("use_strong", np.bool_)
    sets = np.concatenate(
        [
            _SET_NAMES[2 * np.asarray(b.in_set_weak, np.intp) + np.asarray(b.in_set_strong, np.intp)]
            if b.in_set_weak is not None and b.in_set_strong is not None
            else np.full(len(b.prompt_hash), None, dtype=object)
            for b in batches
        ]
    )
    texts = [b.prompt_text if b.prompt_text is not None else (None,) * len(b.prompt_hash) for b in batches]
    ids = np.concatenate([np.arange(b.first_request_id, b.first_request_id + len(b.prompt_hash)) for b in batches])
    return pd.DataFrame(
        {
            "request_id": ids.astype(np.int64),
            "timestamp": _to_utc(np.repeat([b.timestamp for b in batches], sizes).astype(np.float64)),
            "candidate_id": pd.Series([None] * len(ids), dtype=_STR),
            "rank": np.zeros(len(ids), np.int64),
            "confidence": cat("confidence", np.float64),
            "uncertainty": cat("uncertainty", np.float64),
            "use_lightweight": ~strong,
            "decision": pd.Categorical.from_codes((~strong).astype(np.int8), pd.Index(_DECISIONS)),
            "model_type": pd.Categorical(per_prompt([b.model_type for b in batches])),
            "model": pd.Series(np.where(strong, per_prompt([b.strong_model for b in batches]),
                                        per_prompt([b.weak_model for b in batches])), dtype=_STR),
            "p_strong": cat("p_strong", np.float64),
            "prediction_set": pd.Series(sets, dtype=_STR),
            "operating_point": pd.Series(per_prompt([b.operating_point for b in batches]), dtype=_STR),
            "threshold": np.repeat([b.threshold for b in batches], sizes).astype(np.float64),
            "prompt_chars": cat("prompt_chars", np.float64),
            "prompt_hash": pd.Series(list(itertools.chain.from_iterable(b.prompt_hash for b in batches)), dtype=_STR),
            "prompt": pd.Series(list(itertools.chain.from_iterable(texts)), dtype=_STR),
            "propensity": np.concatenate(
                [np.ones(len(b.prompt_hash)) if b.propensity is None else np.asarray(b.propensity, np.float64)
                 for b in batches]
            ),
        }
    )  # fmt: skip


def _span_key(span: ReadableSpan) -> tuple[int, int] | int:
    """(trace id, span id) of a span; its object id when it has no context."""
    context = span.context
    return (context.trace_id, context.span_id) if context is not None else id(span)


def _to_utc(seconds: Sequence[float] | np.ndarray) -> pd.Series:
    """Unix seconds [N] -> datetime64[ns, UTC] (microsecond-rounded, below clock noise; NaN -> NaT)."""
    import pandas as pd

    secs = np.asarray(seconds, dtype=np.float64)
    stamps = np.rint(np.nan_to_num(secs) * 1e6).astype(np.int64).astype("datetime64[us]")
    stamps[np.isnan(secs)] = np.datetime64("NaT")
    return pd.Series(stamps.astype("datetime64[ns]")).dt.tz_localize("UTC")


def _expand(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Appends one column per key of the dicts in ``column``; a clash with a fixed name gets a prefix."""
    import pandas as pd

    keys = sorted({k for d in frame[column] for k in d})
    extra = {
        (f"{column}.{k}" if k in frame.columns else k): pd.Series([d.get(k) for d in frame[column]], dtype=object)
        for k in keys
    }
    return pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1) if extra else frame


def _log_record(event: dict[str, Any], stamped: float | None) -> LogRecord:
    """Splits one stored event dict into the LOG_COLUMNS; ``stamped``: clock time when it had none."""
    fields = {k: v for k, v in event.items() if k not in _LOG_KEYS}
    ts = _unix_seconds(event.get("timestamp")) if stamped is None else stamped
    if ts is None:  # unparseable: keep what was given in fields; the timestamp column shows NaT
        fields["timestamp"] = event["timestamp"]
        ts = float("nan")
    level, message = event.get("level", event.get("log_level")), event.get("event")
    return LogRecord(
        ts,
        None if level is None else str(level),
        None if message is None else str(message),
        _hex_id(event.get("trace_id"), 32),
        _hex_id(event.get("span_id"), 16),
        fields,
    )


def _unix_seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def _hex_id(value: Any, width: int) -> str | None:
    """OpenTelemetry ids arrive as ints from a SpanContext or as hex strings from a formatter."""
    if value is None or value == 0:
        return None
    return f"{value:0{width}x}" if isinstance(value, int) else str(value)


def _span_row(span: ReadableSpan) -> tuple[Any, ...]:
    """The SPAN_COLUMNS of one span except duration_us (computed column-wise); ns ints for times."""
    ctx, parent = span.context, span.parent
    start = span.start_time or 0
    end = span.end_time or start  # an unfinished span (not from an exporter) gets duration 0
    return (
        _hex_id(ctx.trace_id if ctx else None, 32),
        _hex_id(ctx.span_id if ctx else None, 16),
        _hex_id(parent.span_id if parent else None, 16),
        span.name,
        span.kind.name,
        start,
        end,
        span.status.status_code.name,
        dict(span.attributes or {}),
    )
