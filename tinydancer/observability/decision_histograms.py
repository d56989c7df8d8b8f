"""Per-candidate routing statistics recorded one batch at a time: a prometheus_client custom collector.

Four of the guide's series move with every routed candidate: ``tiny_dancer_routing_decisions_total``,
``tiny_dancer_confidence_scores``, ``tiny_dancer_uncertainty_estimates`` and
``tiny_dancer_candidates_processed_total``. One ``Histogram.observe`` costs about 0.7 us, so observing
1000 candidates one by one would cost more than routing them. :class:`DecisionStats` keeps all four
under one lock and updates them once per batch: a bisect loop over plain lists for small batches,
``searchsorted`` + ``bincount`` for large ones. It renders ordinary counter and histogram families
(``_bucket{le=...}`` cumulative with ``+Inf``, ``_count``, ``_sum``), the same text
``prometheus_client.Histogram`` would give for the same observations (``tests/test_metrics.py``).

Examples:
    >>> import numpy as np
    >>> stats = DecisionStats()
    >>> stats.record(np.array([0.9, 0.3]), np.array([0.05, 0.4]), np.array([True, False]))
    >>> [(s.labels, s.value) for s in next(iter(stats.collect())).samples]
    [({'model_type': 'lightweight'}, 1.0), ({'model_type': 'powerful'}, 1.0)]
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from tinydancer.errors import InvalidInputError

__all__ = [
    "BATCH_SIZE_RANGES",
    "CONFIDENCE_BUCKETS",
    "DECISION_TYPES",
    "UNCERTAINTY_BUCKETS",
    "DecisionStats",
    "batch_size_range",
]

#: Buckets of ``tiny_dancer_confidence_scores`` (reference §4).
CONFIDENCE_BUCKETS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
#: Buckets of ``tiny_dancer_uncertainty_estimates`` (reference §4).
UNCERTAINTY_BUCKETS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
#: The guide's batch-size label values, smallest first.
BATCH_SIZE_RANGES: tuple[str, ...] = ("1-10", "11-50", "51-100", "100+")
#: Decision label values: index 0 is the lightweight model, index 1 the powerful one.
DECISION_TYPES: tuple[str, ...] = ("lightweight", "powerful")

# prometheus_client.utils is untyped; this is the formatter its Histogram uses for "le".
_go_float: Callable[[float], str] = floatToGoString
_INF = math.inf
# Batches up to this size take the plain-Python path: below it, numpy's fixed cost per call is larger
# than a bisect loop (benchmarks/metrics_overhead.py --paths).
_SMALL_BATCH = 32


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
    if n <= 10:
        if n < 1:
            raise InvalidInputError(f"batch size: expected at least 1 candidate, got {n}")
        return "1-10"
    if n <= 50:
        return "11-50"
    if n <= 100:
        return "51-100"
    return "100+"


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


class DecisionStats:
    """Collector of the four per-candidate series; register it on a ``CollectorRegistry``.

    Examples:
        >>> from prometheus_client import CollectorRegistry, generate_latest
        >>> reg = CollectorRegistry()
        >>> stats = DecisionStats()
        >>> reg.register(stats)
        >>> stats.record([0.5], [0.2], [False])
        >>> b'tiny_dancer_candidates_processed_total{batch_size_range="1-10"} 1.0' in generate_latest(reg)
        True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conf = _Buckets(CONFIDENCE_BUCKETS, len(DECISION_TYPES))
        self._unc = _Buckets(UNCERTAINTY_BUCKETS, len(DECISION_TYPES))
        self._decisions = [0, 0]
        self._candidates = dict.fromkeys(BATCH_SIZE_RANGES, 0)

    def record(self, confidence: npt.ArrayLike, uncertainty: npt.ArrayLike, use_lightweight: npt.ArrayLike) -> None:
        """Record one routed batch; see :meth:`tinydancer.observability.metrics.RouterMetrics.record_decisions`.

        Raises:
            InvalidInputError: If the shapes differ or are not 1-D, or a value is NaN or infinite
                (nothing is recorded then).

        Examples:
            >>> DecisionStats().record([0.5, 0.7], [0.1, 0.1], [True, True])
        """
        conf, unc, light = np.asarray(confidence), np.asarray(uncertainty), np.asarray(use_lightweight)
        if conf.ndim != 1 or conf.shape != unc.shape or conf.shape != light.shape:
            raise InvalidInputError(
                "record_decisions: expected confidence, uncertainty and use_lightweight of one shape [N], "
                f"got {conf.shape}, {unc.shape} and {light.shape}"
            )
        n = conf.shape[0]
        if n == 0:
            return
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
        idx = (~light).astype(np.intp)
        n_powerful = int(idx.sum())
        c_counts, c_sums = self._conf.batch(idx, conf)
        u_counts, u_sums = self._unc.batch(idx, unc)
        bin_range = batch_size_range(n)
        with self._lock:
            self._conf.np_counts += c_counts
            self._conf.np_sums += c_sums
            self._unc.np_counts += u_counts
            self._unc.np_sums += u_sums
            self._decisions[0] += n - n_powerful
            self._decisions[1] += n_powerful
            self._candidates[bin_range] += n

    def collect(self) -> Iterator[Metric]:
        """Yield decisions, confidence, uncertainty and candidates families, in the guide's order."""
        with self._lock:
            decisions = CounterMetricFamily(
                "tiny_dancer_routing_decisions", "Routing decisions by target model type.", labels=["model_type"]
            )
            for label, count in zip(DECISION_TYPES, self._decisions, strict=True):
                decisions.add_metric([label], float(count))
            conf = self._conf.family(
                "tiny_dancer_confidence_scores", "Confidence scores by decision type.", "decision_type", DECISION_TYPES
            )
            unc = self._unc.family(
                "tiny_dancer_uncertainty_estimates",
                "Uncertainty estimates by decision type.",
                "decision_type",
                DECISION_TYPES,
            )
            candidates = CounterMetricFamily(
                "tiny_dancer_candidates_processed",
                "Candidates processed by batch size range.",
                labels=["batch_size_range"],
            )
            for label, count in self._candidates.items():
                candidates.add_metric([label], float(count))
        yield from (decisions, conf, unc, candidates)


def _check_finite(conf: npt.NDArray[np.float64], unc: npt.NDArray[np.float64]) -> None:
    bad = int((~np.isfinite(conf)).sum() + (~np.isfinite(unc)).sum())
    if bad:
        raise InvalidInputError(
            f"record_decisions: expected finite confidence and uncertainty, got {bad} NaN/inf value(s)"
        )
