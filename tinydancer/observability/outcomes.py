"""What happened after a prompt was routed: outcomes joined to their decisions, and live quality series.

A prompt router's decisions are remembered by request id (those of the most recent ``pending_capacity`` request
ids, in arrays indexed by the id modulo that capacity, so a batch is stored without a Python object per prompt);
an outcome (``weak_correct``, ``strong_correct``, ``quality``, ``cost``: any subset, arriving late, in
parts) is joined to its decision by that id. An outcome for an id that was never routed, or was routed
so long ago that it has been forgotten, is counted (``status="unknown_request"``) and kept nowhere else.
A ``weak_correct`` outcome gives the label "the weak model fails" (``weak_correct < pass_mark``) of its
request; the last ``window`` labelled requests give the live series (Prometheus gauges read at scrape
time, NaN until there is data):

==============================================  ==========================================================
``tiny_dancer_outcomes_total{status}``          outcomes received: ``joined`` or ``unknown_request``
``tiny_dancer_outcome_window_size``             labelled requests in the window
``tiny_dancer_weak_error_rate``                 the weak model's error rate among the window's requests
                                                routed to the weak model
``tiny_dancer_strong_share``                    share of the last ``window`` routed prompts sent to the
                                                strong model (needs no outcome)
``tiny_dancer_conformal_coverage``              share of the window's labels inside their conformal set
``tiny_dancer_conformal_coverage_target``       its nominal level, ``1 - alpha`` of the artifact
``tiny_dancer_calibration_error``               ECE (10 equal-width bins) of p_strong on the window
``tiny_dancer_operating_point_target{target}``  the operating point's tuned level (``strong_share``,
                                                ``quality_share`` or ``weak_error``)
==============================================  ==========================================================

The shipped alert rules (``quality_alerts.yml``) compare them: coverage below nominal by more than 0.05,
weak error above the operating point's ``weak_error`` target, strong share more than 0.1 off its
``strong_share`` target.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from tinydancer.errors import ConfigError, InvalidInputError

#: ``status`` label values of ``tiny_dancer_outcomes_total``.
OUTCOME_STATUSES: tuple[str, ...] = ("joined", "unknown_request")
#: ``target`` label values of ``tiny_dancer_operating_point_target``.
OPERATING_POINT_TARGETS: tuple[str, ...] = ("strong_share", "quality_share", "weak_error")
_ECE_BINS = 10


class Outcome(NamedTuple):
    """One outcome report (``None``: not reported in this call). ``timestamp`` is Unix seconds of arrival."""

    request_id: int
    timestamp: float
    weak_correct: float | None
    strong_correct: float | None
    quality: float | None
    cost: float | None
    joined: bool


def check_outcome(name: str, value: object, *, unit: bool) -> float | None:
    """None, or a finite number (in [0, 1] when ``unit``); else ``InvalidInputError`` naming the field.

    Examples:
        >>> check_outcome("weak_correct", True, unit=True), check_outcome("cost", None, unit=False)
        (1.0, None)
    """
    if value is None:
        return None
    if isinstance(value, str | bytes):  # float("0.5") would pass: a string is not a number
        raise InvalidInputError(f"{name}: expected a number or None, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name}: expected a number or None, got {value!r}") from None
    if not math.isfinite(number) or (unit and not 0.0 <= number <= 1.0) or (not unit and name == "cost" and number < 0):
        expected = "a number in [0, 1]" if unit else "a finite number" + (" >= 0" if name == "cost" else "")
        raise InvalidInputError(f"{name}: expected {expected}, got {value!r}")
    return number


class OutcomeMonitor:
    """Joins outcomes to routed prompts and exports the live quality series on a router's registry.

    Args:
        registry: The router's Prometheus registry.
        window: Labelled requests (and routed prompts, for the strong share) the live series cover.
        pending_capacity: Request ids whose routed prompts are remembered for a late outcome (the newest).
        pass_mark: Weak outcomes below it are failures.

    Raises:
        ConfigError: a size below 1 or a pass mark outside (0, 1].

    Examples:
        >>> m = OutcomeMonitor(CollectorRegistry(), window=4)
        >>> m.record_routes(0, np.array([False, True]), np.array([0.2, 0.7]), None, None)
        >>> m.join(0, 0.0), m.join(7, 1.0)
        (True, False)
        >>> m.weak_error_rate(), m.strong_share()
        (1.0, 0.5)
    """

    def __init__(
        self, registry: CollectorRegistry, window: int = 1000, pending_capacity: int = 100_000, pass_mark: float = 0.5
    ) -> None:
        if window < 1 or pending_capacity < 1:
            raise ConfigError(f"window, pending_capacity: expected >= 1, got {window}, {pending_capacity}")
        if not 0.0 < pass_mark <= 1.0:
            raise ConfigError(f"pass_mark: expected a value in (0, 1], got {pass_mark!r}")
        self.window = window
        self.pass_mark = pass_mark
        self._lock = threading.Lock()
        self._capacity = pending_capacity
        # The routed prompt of request id i sits at row i % pending_capacity while _ids holds i there (else -1).
        self._ids = np.full(pending_capacity, -1, np.int64)
        self._use_strong = np.zeros(pending_capacity, bool)
        self._p_strong = np.zeros(pending_capacity, np.float64)
        self._in_sets = np.zeros((pending_capacity, 2), np.int8)  # weak, strong: 1 in, 0 out, -1 no set
        self._labelled = np.zeros(pending_capacity, bool)  # a weak outcome has entered the window
        self._routed: deque[bool] = deque(maxlen=window)
        # (use_strong, p_strong, weak failed, covered or None): the labelled window
        self._window: deque[tuple[bool, float, bool, bool | None]] = deque(maxlen=window)
        self._coverage_target = math.nan
        self._targets = dict.fromkeys(OPERATING_POINT_TARGETS, math.nan)
        outcomes = Counter("tiny_dancer_outcomes_total", "Outcomes received, by join status.", ["status"],
                           registry=registry)  # fmt: skip
        self._counts = {s: outcomes.labels(s) for s in OUTCOME_STATUSES}
        gauges = {
            "tiny_dancer_outcome_window_size": ("Labelled requests in the outcome window.", self._window_size),
            "tiny_dancer_weak_error_rate": ("Weak model error rate among weak-routed requests (window).",
                                            self.weak_error_rate),
            "tiny_dancer_strong_share": ("Share of recent routed prompts sent to the strong model.", self.strong_share),
            "tiny_dancer_conformal_coverage": ("Share of labels inside their conformal set (window).", self.coverage),
            "tiny_dancer_conformal_coverage_target": ("Nominal conformal coverage 1 - alpha.",
                                                      lambda: self._coverage_target),
            "tiny_dancer_calibration_error": ("ECE of p_strong on the outcome window (10 bins).",
                                              self.calibration_error),
        }  # fmt: skip
        for name, (doc, read) in gauges.items():
            Gauge(name, doc, registry=registry).set_function(read)
        target = Gauge("tiny_dancer_operating_point_target", "Tuned level of the operating point in force.",
                       ["target"], registry=registry)  # fmt: skip
        for key in OPERATING_POINT_TARGETS:
            target.labels(key).set_function(lambda key=key: self._targets[key])  # type: ignore[misc]

    def set_targets(self, target: str | None, value: float | None, coverage_target: float | None) -> None:
        """The operating point's target kind and level, and the conformal nominal coverage (None: unknown)."""
        self._targets = {k: (value if k == target and value is not None else math.nan) for k in OPERATING_POINT_TARGETS}
        self._coverage_target = math.nan if coverage_target is None else coverage_target

    def record_routes(
        self,
        first_request_id: int,
        use_strong: np.ndarray,
        p_strong: np.ndarray,
        in_set_weak: np.ndarray | None,
        in_set_strong: np.ndarray | None,
    ) -> None:
        """Remember a batch of routed prompts (request ids ``first_request_id`` onwards; arrays [N])."""
        n = len(use_strong)
        kept = min(n, self._capacity)  # of a batch larger than the capacity, its newest rows
        ids = np.arange(first_request_id + n - kept, first_request_id + n)
        rows = ids % self._capacity
        sets = (
            np.stack([in_set_weak[n - kept :], in_set_strong[n - kept :]], axis=1)
            if in_set_weak is not None and in_set_strong is not None
            else -1
        )
        with self._lock:
            self._ids[rows] = ids
            self._use_strong[rows] = use_strong[n - kept :]
            self._p_strong[rows] = p_strong[n - kept :]
            self._in_sets[rows] = sets
            self._labelled[rows] = False
            self._routed.extend(use_strong[-self.window :].tolist())

    def join(self, request_id: int, weak_correct: float | None) -> bool:
        """Count one outcome; the first ``weak_correct`` of a request enters the labelled window (a repeated one is
        counted, not labelled twice). Returns whether it joined."""
        row = request_id % self._capacity
        with self._lock:
            known = request_id >= 0 and int(self._ids[row]) == request_id
            self._counts["joined" if known else "unknown_request"].inc()
            if not known:
                return False
            if weak_correct is not None and not self._labelled[row]:
                self._labelled[row] = True
                failed = weak_correct < self.pass_mark
                in_set = int(self._in_sets[row, 1 if failed else 0])
                covered = None if in_set < 0 else bool(in_set)
                self._window.append((bool(self._use_strong[row]), float(self._p_strong[row]), failed, covered))
            return True

    def _snapshot(self) -> list[tuple[bool, float, bool, bool | None]]:
        with self._lock:
            return list(self._window)

    def _window_size(self) -> float:
        return float(len(self._window))

    def weak_error_rate(self) -> float:
        """Weak error among the window's weak-routed labelled requests (NaN with none)."""
        kept = [failed for strong, _, failed, _ in self._snapshot() if not strong]
        return float(np.mean(kept)) if kept else math.nan

    def strong_share(self) -> float:
        """Share of the last ``window`` routed prompts sent to the strong model (NaN before any)."""
        with self._lock:
            routed = list(self._routed)
        return float(np.mean(routed)) if routed else math.nan

    def coverage(self) -> float:
        """Share of the window's labels inside their conformal set (NaN without sets or labels)."""
        covered = [c for *_, c in self._snapshot() if c is not None]
        return float(np.mean(covered)) if covered else math.nan

    def calibration_error(self) -> float:
        """ECE of p_strong against the labels of the window, 10 equal-width bins (NaN with no label)."""
        rows = self._snapshot()
        if not rows:
            return math.nan
        p = np.array([r[1] for r in rows])
        y = np.array([r[2] for r in rows], dtype=np.float64)
        bins = np.minimum((p * _ECE_BINS).astype(int), _ECE_BINS - 1)
        total = 0.0
        for b in np.unique(bins):
            inside = bins == b
            total += inside.sum() * abs(p[inside].mean() - y[inside].mean())
        return float(total / len(rows))


def outcome_rows(
    request_ids: Iterable[object],
    columns: dict[str, Iterable[object]],
) -> list[tuple[int, dict[str, float | None]]]:
    """Checked ``(request_id, fields)`` pairs of a bulk report (``columns``: any of the four fields).

    Raises:
        InvalidInputError: a request id that is not an integer, or a field value out of range (the row is named).

    Examples:
        >>> outcome_rows([3], {"weak_correct": [1]})
        [(3, {'weak_correct': 1.0})]
    """
    unit = {"weak_correct": True, "strong_correct": True, "quality": False, "cost": False}
    unknown = sorted(set(columns) - set(unit))
    if unknown:
        raise InvalidInputError(f"outcomes: expected columns among {sorted(unit)} besides request_id, got {unknown}")
    ids = list(request_ids)
    values = {k: list(v) for k, v in columns.items()}
    lengths = {k: len(v) for k, v in values.items() if len(v) != len(ids)}
    if lengths:
        raise InvalidInputError(f"outcomes: expected {len(ids)} values per column (as request_id), got {lengths}")
    rows = []
    for i, rid in enumerate(ids):
        if isinstance(rid, bool) or not isinstance(rid, int | np.integer):
            raise InvalidInputError(f"outcomes row {i}: request_id: expected an integer, got {rid!r}")
        fields = {}
        for name, column in values.items():
            value = column[i]
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            try:
                fields[name] = None if missing else check_outcome(name, value, unit=unit[name])
            except InvalidInputError as exc:
                raise InvalidInputError(f"outcomes row {i}: {exc}") from None
        rows.append((int(rid), fields))
    return rows
