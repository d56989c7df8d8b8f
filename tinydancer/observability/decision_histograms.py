"""The guide's routing series recorded with one lock per call: prometheus_client custom collectors.

Four of the guide's series move with every routed candidate: ``tiny_dancer_routing_decisions_total``,
``tiny_dancer_confidence_scores``, ``tiny_dancer_uncertainty_estimates`` and
``tiny_dancer_candidates_processed_total``. One ``Histogram.observe`` costs about 0.7 us, so observing
1000 candidates one by one would cost more than routing them. :class:`DecisionStats` keeps all four
under one lock and updates them once per batch: a bisect loop over plain lists for small batches,
``searchsorted`` + ``bincount`` for large ones. :class:`RequestStats` does the same for the four series
that move once per request (requests by status, total latency, feature-engineering and inference
durations), so a routed request updates them in one call instead of four child objects' locks. Both render
ordinary counter and histogram families (``_bucket{le=...}`` cumulative with ``+Inf``, ``_count``, ``_sum``),
the same text ``prometheus_client`` would give for the same observations (``tests/observability/test_metrics.py``),
without the ``*_created`` companions.

Examples:
    >>> import numpy as np
    >>> stats = DecisionStats()
    >>> stats.record(np.array([0.9, 0.3]), np.array([0.05, 0.4]), np.array([True, False]))
    2
    >>> [(s.labels, s.value) for s in next(iter(stats.collect())).samples]
    [({'model_type': 'lightweight'}, 1.0), ({'model_type': 'powerful'}, 1.0)]
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from tinydancer.errors import ConfigError, InvalidInputError

__all__ = [
    "BATCH_SIZE_RANGES",
    "CONFIDENCE_BUCKETS",
    "DECISION_TYPES",
    "FEATURE_BUCKETS",
    "LATENCY_BUCKETS",
    "UNCERTAINTY_BUCKETS",
    "DecisionStats",
    "RequestStats",
    "batch_size_range",
    "check_model_type",
]

#: Buckets of ``tiny_dancer_routing_latency_seconds`` (reference §4).
LATENCY_BUCKETS: tuple[float, ...] = (1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
#: Buckets of the feature-engineering and model-inference duration histograms (reference §4).
FEATURE_BUCKETS: tuple[float, ...] = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01)

#: Buckets of ``tiny_dancer_confidence_scores`` (reference §4).
CONFIDENCE_BUCKETS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
#: Buckets of ``tiny_dancer_uncertainty_estimates`` (reference §4).
UNCERTAINTY_BUCKETS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
#: The guide's batch-size label values, smallest first.
BATCH_SIZE_RANGES: tuple[str, ...] = ("1-10", "11-50", "51-100", "100+")
#: Decision label values: index 0 is the lightweight model, index 1 the powerful one.
DECISION_TYPES: tuple[str, ...] = ("lightweight", "powerful")
REQUEST_STATUSES: tuple[str, ...] = ("success", "failure")

_MODEL_TYPE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# prometheus_client.utils is untyped; this is the formatter its Histogram uses for "le".
_go_float: Callable[[float], str] = floatToGoString
_INF = math.inf
# Batches up to this size take the plain-Python path: below it, numpy's fixed cost per call is larger
# than a bisect loop (benchmarks/metrics_overhead.py --paths).
_SMALL_BATCH = 32
#: Queued routed requests (:meth:`DecisionStats.queue`, :meth:`RequestStats.queue_route`) beyond which the
#: queueing call applies them itself; a read (``collect``) applies them before it renders.
QUEUE_LIMIT = 256


def _batch_size_index(n: int) -> int:
    """Index of :func:`batch_size_range` ``(n)`` in :data:`BATCH_SIZE_RANGES`."""
    if n <= 10:
        if n < 1:
            raise InvalidInputError(f"batch size: expected at least 1 candidate, got {n}")
        return 0
    return 1 if n <= 50 else 2 if n <= 100 else 3


#: Upper bounds of the first three batch-size ranges (the fourth is open).
_RANGE_TOPS = np.array([10, 50, 100])


def _batch_size_indices(sizes: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """:func:`_batch_size_index` of every size (each >= 1, or 0 for a batch that is then empty), vectorised."""
    return np.searchsorted(_RANGE_TOPS, sizes, side="left")


def batch_size_range(n: int) -> str:
    """Map a candidate count to the guide's ``batch_size`` / ``batch_size_range`` label value.

    Ranges are ``1-10``, ``11-50``, ``51-100`` and ``100+`` (101 and more: 100 itself is in
    ``51-100``). No range holds 0, so an empty batch is an error here; the recorders record nothing
    for an empty batch instead of calling this.

    Args:
        n: Number of candidates, at least 1.

    Returns:
        One of :data:`BATCH_SIZE_RANGES`.

    Raises:
        InvalidInputError: If ``n < 1``.

    Examples:
        >>> [batch_size_range(n) for n in (1, 10, 11, 50, 51, 100, 101)]
        ['1-10', '1-10', '11-50', '11-50', '51-100', '51-100', '100+']
    """
    return BATCH_SIZE_RANGES[_batch_size_index(n)]


def check_model_type(model_type: object) -> None:
    """A ``model_type`` label value is a fixed name: 1-64 characters of ``[A-Za-z0-9_.-]``.

    Raises:
        ConfigError: If it is anything else (free text never becomes a label value).

    Examples:
        >>> check_model_type("fastgrnn")
        >>> check_model_type("candidate 7")
        Traceback (most recent call last):
        ...
        tinydancer.errors.ConfigError: model_type: expected 1-64 characters of [A-Za-z0-9_.-], got 'candidate 7'
    """
    if not isinstance(model_type, str) or not _MODEL_TYPE_RE.fullmatch(model_type):
        raise ConfigError(f"model_type: expected 1-64 characters of [A-Za-z0-9_.-], got {model_type!r}")


class _Buckets:
    """Non-cumulative counts per (label index, bucket) plus sums; the owner holds the lock.

    ``le`` semantics match ``prometheus_client.Histogram.observe``: a value equal to a bound falls in
    that bound's bucket, and the last bucket is ``+Inf``.
    """

    def __init__(self, bounds: Sequence[float], n_labels: int) -> None:
        self.bounds = [float(b) for b in bounds]
        self.np_bounds = np.asarray(self.bounds, dtype=np.float64)
        self.le = [_go_float(b) for b in self.bounds] + ["+Inf"]
        self.width = len(self.bounds) + 1
        self.n_labels = n_labels
        self.np_counts = np.zeros(n_labels * self.width, dtype=np.int64)
        self.np_sums = np.zeros(n_labels, dtype=np.float64)
        self.py_counts = [0] * (n_labels * self.width)
        self.py_sums = [0.0] * n_labels

    def add_label(self) -> int:
        """Room for one more label value (zero counts); returns its index (caller holds the lock)."""
        self.np_counts = np.concatenate([self.np_counts, np.zeros(self.width, dtype=np.int64)])
        self.np_sums = np.append(self.np_sums, 0.0)
        self.py_counts += [0] * self.width
        self.py_sums.append(0.0)
        self.n_labels += 1
        return self.n_labels - 1

    def observe(self, label: int, value: float) -> None:
        """One observation, bucketed as ``Histogram.observe`` does (a NaN only adds to the sum; caller locks)."""
        if value == value:
            self.py_counts[label * self.width + bisect.bisect_left(self.bounds, value)] += 1
        self.py_sums[label] += value

    def batch(
        self, label_idx: npt.NDArray[np.intp], values: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """Counts ``[n_labels * width]`` and sums ``[n_labels]`` of one batch (pure; no lock needed)."""
        flat = label_idx * self.width + np.searchsorted(self.np_bounds, values, side="left")
        counts = np.bincount(flat, minlength=self.n_labels * self.width)
        # bincount adds the weights in input order, so one batch sums exactly like repeated observe().
        sums = np.asarray(np.bincount(label_idx, weights=values, minlength=self.n_labels), dtype=np.float64)
        return counts, sums

    def family(self, name: str, doc: str, label_name: str, label_values: Sequence[str]) -> Metric:
        """The histogram family with cumulative buckets (caller holds the lock)."""
        counts = (self.np_counts + np.asarray(self.py_counts, dtype=np.int64)).tolist()
        sums = (self.np_sums + np.asarray(self.py_sums, dtype=np.float64)).tolist()
        family = HistogramMetricFamily(name, doc, labels=[label_name])
        w = self.width
        for i, label in enumerate(label_values):
            cumulative = np.cumsum(counts[i * w : (i + 1) * w]).tolist()
            family.add_metric([label], [(le, float(c)) for le, c in zip(self.le, cumulative, strict=True)], sums[i])
        return family


class _QueuedUpdates:
    """Updates queued without a lock (a deque's append is atomic) and applied under the owner's lock: at the next
    read (the owner's ``collect`` calls :meth:`_apply_queued` first) or by the call that finds
    :data:`QUEUE_LIMIT` waiting."""

    _lock: threading.Lock
    _queued: deque[Any]

    def _enqueue(self, update: Any) -> None:
        queued = self._queued
        queued.append(update)
        if len(queued) >= QUEUE_LIMIT:
            with self._lock:
                self._apply_queued()

    def _drain(self) -> list[Any]:
        """Every queued update, oldest first, taken off the queue (caller holds the lock)."""
        queued = self._queued
        return [queued.popleft() for _ in range(len(queued))]

    def _apply_queued(self) -> None:  # pragma: no cover - every owner defines it
        raise NotImplementedError


class DecisionStats(_QueuedUpdates):
    """Collector of the four per-candidate series; register it on a ``CollectorRegistry``.

    Examples:
        >>> from prometheus_client import CollectorRegistry, generate_latest
        >>> reg = CollectorRegistry()
        >>> stats = DecisionStats()
        >>> reg.register(stats)
        >>> stats.record([0.5], [0.2], [False])
        1
        >>> b'tiny_dancer_candidates_processed_total{batch_size_range="1-10"} 1.0' in generate_latest(reg)
        True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Batches queued by queue(), applied in one vectorised update under the lock (deque: appends need no lock).
        self._queued: deque[tuple[npt.NDArray[np.floating], npt.NDArray[np.floating], npt.NDArray[np.bool_]]]
        self._queued = deque()
        self._conf = _Buckets(CONFIDENCE_BUCKETS, len(DECISION_TYPES))
        self._unc = _Buckets(UNCERTAINTY_BUCKETS, len(DECISION_TYPES))
        self._decisions = [0, 0]
        self._candidates = dict.fromkeys(BATCH_SIZE_RANGES, 0)

    def record(self, confidence: npt.ArrayLike, uncertainty: npt.ArrayLike, use_lightweight: npt.ArrayLike) -> int:
        """Record one routed batch and return its size N; see
        :meth:`tinydancer.observability.metrics.RouterMetrics.record_decisions`.

        Raises:
            InvalidInputError: If the shapes differ or are not 1-D, or a value is NaN or infinite
                (nothing is recorded then).

        Examples:
            >>> DecisionStats().record([0.5, 0.7], [0.1, 0.1], [True, True])
            2
        """
        conf, unc, light = np.asarray(confidence), np.asarray(uncertainty), np.asarray(use_lightweight)
        if conf.ndim != 1 or conf.shape != unc.shape or conf.shape != light.shape:
            raise InvalidInputError(
                "record_decisions: expected confidence, uncertainty and use_lightweight of one shape [N], "
                f"got {conf.shape}, {unc.shape} and {light.shape}"
            )
        n: int = conf.shape[0]
        if n == 0:
            return 0
        if n <= _SMALL_BATCH:
            # tolist() yields Python floats equal to float(x), which is what Histogram.observe sees.
            self._record_small(conf.tolist(), unc.tolist(), light.tolist(), n)
        else:
            self._record_batch(
                conf.astype(np.float64, copy=False),
                unc.astype(np.float64, copy=False),
                light.astype(bool, copy=False),
                n,
            )
        return n

    def queue(
        self,
        confidence: npt.NDArray[np.floating],
        uncertainty: npt.NDArray[np.floating],
        use_lightweight: npt.NDArray[np.bool_],
    ) -> None:
        """Queue one routed batch whose arrays the caller has checked: [N] each, finite (N may be 0).

        Nothing is computed now: the next read (:meth:`collect`, so every scrape and export) applies every queued
        batch first, in one vectorised update, and so does the call that finds :data:`QUEUE_LIMIT` batches
        waiting. Counts are therefore exact at every read; a histogram's ``_sum`` adds a queue's values in one
        ``bincount`` (equal to one-by-one addition up to float rounding).

        Examples:
            >>> stats = DecisionStats()
            >>> stats.queue(np.array([0.9]), np.array([0.05]), np.array([True]))
            >>> [s.value for s in next(iter(stats.collect())).samples]
            [1.0, 0.0]
        """
        self._enqueue((confidence, uncertainty, use_lightweight))

    def _apply_queued(self) -> None:
        """Apply every queued batch (caller holds the lock)."""
        batches = self._drain()
        if not batches:
            return
        self._add_batches(
            np.concatenate([b[0] for b in batches]).astype(np.float64, copy=False),
            np.concatenate([b[1] for b in batches]).astype(np.float64, copy=False),
            np.concatenate([b[2] for b in batches]).astype(bool, copy=False),
            [len(b[0]) for b in batches],
        )

    def _add_batches(
        self,
        conf: npt.NDArray[np.float64],
        unc: npt.NDArray[np.float64],
        light: npt.NDArray[np.bool_],
        sizes: Sequence[int],
    ) -> None:
        """Add batches of ``sizes`` candidates, concatenated in ``conf``, ``unc``, ``light`` (caller holds the lock)."""
        idx = (~light).astype(np.intp)
        n_powerful = int(idx.sum())
        _add_batch(self._conf, idx, conf)
        _add_batch(self._unc, idx, unc)
        self._decisions[0] += len(conf) - n_powerful
        self._decisions[1] += n_powerful
        counts = np.asarray(sizes, dtype=np.int64)
        per_range = np.bincount(_batch_size_indices(counts), weights=counts, minlength=len(BATCH_SIZE_RANGES))
        for label, count in zip(BATCH_SIZE_RANGES, per_range.tolist(), strict=True):  # an empty batch adds 0
            self._candidates[label] += int(count)

    def _record_small(self, conf: list[float], unc: list[float], light: list[bool], n: int) -> None:
        if not math.isfinite(sum(conf) + sum(unc)):  # cheap pre-check; exact check only when it fails
            _check_finite(np.asarray(conf, dtype=np.float64), np.asarray(unc, dtype=np.float64))
        c, u, decisions = self._conf, self._unc, self._decisions
        cb, cw, cc, cs = c.bounds, c.width, c.py_counts, c.py_sums
        ub, uw, uc, us = u.bounds, u.width, u.py_counts, u.py_sums
        bin_range = batch_size_range(n)
        with self._lock:
            for cv, uv, is_light in zip(conf, unc, light, strict=True):
                li = 0 if is_light else 1
                cc[li * cw + bisect.bisect_left(cb, cv)] += 1
                cs[li] += cv
                uc[li * uw + bisect.bisect_left(ub, uv)] += 1
                us[li] += uv
                decisions[li] += 1
            self._candidates[bin_range] += n

    def _record_batch(
        self, conf: npt.NDArray[np.float64], unc: npt.NDArray[np.float64], light: npt.NDArray[np.bool_], n: int
    ) -> None:
        if not math.isfinite(float(conf.sum() + unc.sum())):
            _check_finite(conf, unc)
        with self._lock:
            self._add_batches(conf, unc, light, (n,))

    def collect(self) -> Iterator[Metric]:
        """Yield decisions, confidence, uncertainty and candidates families, in the guide's order."""
        with self._lock:
            self._apply_queued()
            decisions = _counter_family(
                "tiny_dancer_routing_decisions", "Routing decisions by target model type.", "model_type",
                DECISION_TYPES, self._decisions,
            )  # fmt: skip
            conf = self._conf.family(
                "tiny_dancer_confidence_scores", "Confidence scores by decision type.", "decision_type", DECISION_TYPES
            )
            unc = self._unc.family(
                "tiny_dancer_uncertainty_estimates",
                "Uncertainty estimates by decision type.",
                "decision_type",
                DECISION_TYPES,
            )
            candidates = _counter_family(
                "tiny_dancer_candidates_processed", "Candidates processed by batch size range.", "batch_size_range",
                list(self._candidates), list(self._candidates.values()),
            )  # fmt: skip
        yield from (decisions, conf, unc, candidates)


class RequestStats(_QueuedUpdates):
    """Collector of the four per-request series; register it on a ``CollectorRegistry``.

    ``tiny_dancer_routing_requests_total{status}``, ``tiny_dancer_routing_latency_seconds{operation="total"}``,
    ``tiny_dancer_feature_engineering_duration_seconds{batch_size}`` and
    ``tiny_dancer_model_inference_duration_seconds{model_type}``, every series present (at 0) from the start;
    a ``model_type`` first named by a record gets its series then.

    Args:
        model_type: the inference histogram's first label value (checked by :func:`check_model_type`).

    Examples:
        >>> from prometheus_client import CollectorRegistry, generate_latest
        >>> reg = CollectorRegistry()
        >>> stats = RequestStats("fastgrnn")
        >>> reg.register(stats)
        >>> stats.record_route(2e-4, 3, 4e-5, 6e-5, "fastgrnn")
        >>> b'tiny_dancer_routing_requests_total{status="success"} 1.0' in generate_latest(reg)
        True
    """

    def __init__(self, model_type: str) -> None:
        check_model_type(model_type)
        self._lock = threading.Lock()
        # (latency_s, batch_size, feature_s, inference_s, model_type) of queue_route(), applied under the lock.
        self._queued: deque[tuple[float, int, float, float, str]] = deque()
        self._requests = [0, 0]  # REQUEST_STATUSES order
        self._latency = _Buckets(LATENCY_BUCKETS, 1)
        self._features = _Buckets(FEATURE_BUCKETS, len(BATCH_SIZE_RANGES))
        self._inference = _Buckets(FEATURE_BUCKETS, 1)
        # model_type -> label index of the inference histogram; grows by one per model kind ever served.
        self._model_types: dict[str, int] = {model_type: 0}

    def check_label(self, model_type: str) -> None:
        """Raise ``ConfigError`` if ``model_type`` is new and not a fixed name (records nothing either way)."""
        if model_type not in self._model_types:
            check_model_type(model_type)

    def _model_index(self, model_type: str) -> int:
        """The label index of ``model_type``, made (after its check) on first use; caller holds the lock."""
        index = self._model_types.get(model_type)
        if index is None:
            check_model_type(model_type)
            index = self._model_types[model_type] = self._inference.add_label()
        return index

    def record_route(
        self, latency_s: float, batch_size: int, feature_s: float, inference_s: float, model_type: str
    ) -> None:
        """One successful request: its count, total latency, inference duration and (for a non-empty batch)
        feature-engineering duration.

        Raises:
            ConfigError: ``model_type`` is new and not a fixed name (nothing is recorded then).
            InvalidInputError: ``batch_size`` is negative (nothing is recorded then).
        """
        bin_index = _batch_size_index(batch_size) if batch_size else -1
        with self._lock:
            model = self._model_index(model_type)
            self._requests[0] += 1
            self._latency.observe(0, latency_s)
            self._inference.observe(model, inference_s)
            if bin_index >= 0:
                self._features.observe(bin_index, feature_s)

    def queue_route(
        self, latency_s: float, batch_size: int, feature_s: float, inference_s: float, model_type: str
    ) -> None:
        """:meth:`record_route` applied at the next read, like :meth:`DecisionStats.queue` (counts exact at every read).

        Raises:
            ConfigError: ``model_type`` is new and not a fixed name (nothing is queued then).
            InvalidInputError: ``batch_size`` is negative (nothing is queued then).
        """
        if model_type not in self._model_types:
            check_model_type(model_type)
        if batch_size < 0:
            _batch_size_index(batch_size)
        self._enqueue((latency_s, batch_size, feature_s, inference_s, model_type))

    def _apply_queued(self) -> None:
        """Apply every queued request (caller holds the lock)."""
        rows = self._drain()
        if not rows:
            return
        latency, sizes, feature, inference, models = zip(*rows, strict=True)
        self._requests[0] += len(rows)
        _add_batch(self._latency, np.zeros(len(rows), np.intp), latency)
        _add_batch(self._inference, np.array([self._model_index(m) for m in models], np.intp), inference)
        counts = np.asarray(sizes, dtype=np.int64)
        nonempty = counts > 0  # an empty batch has no feature-engineering range
        _add_batch(self._features, _batch_size_indices(counts[nonempty]), np.asarray(feature)[nonempty])

    def record_requests(self, success: bool, count: int, latency_s: float) -> None:
        """``count`` requests of one status, each observed at ``latency_s`` (0 or fewer records nothing)."""
        if count <= 0:
            return
        with self._lock:
            self._requests[0 if success else 1] += count
            for _ in range(count):
                self._latency.observe(0, latency_s)

    def record_features(self, batch_size: int, duration_s: float) -> None:
        """One feature-engineering duration under the batch's size range (an empty batch: nothing)."""
        if batch_size == 0:
            return
        bin_index = _batch_size_index(batch_size)
        with self._lock:
            self._features.observe(bin_index, duration_s)

    def record_inference(self, duration_s: float, model_type: str) -> None:
        """One model-inference duration under ``model_type``."""
        with self._lock:
            self._inference.observe(self._model_index(model_type), duration_s)

    def collect(self) -> Iterator[Metric]:
        """Yield requests, latency, feature-engineering and inference families, in the guide's order."""
        with self._lock:
            self._apply_queued()
            requests = _counter_family(
                "tiny_dancer_routing_requests", "Total routing requests by status.", "status", REQUEST_STATUSES,
                self._requests,
            )  # fmt: skip
            latency = self._latency.family(
                "tiny_dancer_routing_latency_seconds", "Routing operation latency in seconds.", "operation", ["total"]
            )
            features = self._features.family(
                "tiny_dancer_feature_engineering_duration_seconds",
                "Feature engineering duration in seconds by batch size.",
                "batch_size",
                BATCH_SIZE_RANGES,
            )
            inference = self._inference.family(
                "tiny_dancer_model_inference_duration_seconds",
                "Model inference duration in seconds.",
                "model_type",
                list(self._model_types),
            )
        yield from (requests, latency, features, inference)


def _add_batch(
    buckets: _Buckets, label_idx: npt.NDArray[np.intp], values: Sequence[float] | npt.NDArray[np.float64]
) -> None:
    """Add observations ``values`` under label indices ``label_idx`` to ``buckets`` (caller holds the lock)."""
    counts, sums = buckets.batch(label_idx, np.asarray(values, dtype=np.float64))
    buckets.np_counts += counts
    buckets.np_sums += sums


def _counter_family(
    name: str, doc: str, label_name: str, labels: Sequence[str], counts: Sequence[int]
) -> CounterMetricFamily:
    """A counter family with one sample per label value (caller holds the lock)."""
    family = CounterMetricFamily(name, doc, labels=[label_name])
    for label, count in zip(labels, counts, strict=True):
        family.add_metric([label], float(count))
    return family


def _check_finite(conf: npt.NDArray[np.float64], unc: npt.NDArray[np.float64]) -> None:
    bad = int((~np.isfinite(conf)).sum() + (~np.isfinite(unc)).sum())
    if bad:
        raise InvalidInputError(
            f"record_decisions: expected finite confidence and uncertainty, got {bad} NaN/inf value(s)"
        )
