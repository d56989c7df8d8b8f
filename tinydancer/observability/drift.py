"""Drift of live traffic away from the calibration rows: PSI and a KS statistic over a sliding window.

A prompt-router artifact calibrated by this version stores, per feature, equally spaced quantiles (101:
0 %, 1 %, ..., 100 %) of its calibration rows: ``p_strong`` (the calibrated score) and ``prompt_chars`` (the prompt's
length). The router keeps the last ``window`` routed values of each and exports, read at scrape time
(NaN until the window holds ``min_count`` values):

=====================================  ==================================================================
``tiny_dancer_drift_psi{feature}``     population stability index over the reference's ten decile bins,
                                       ``sum((a - e) * ln(a / e))`` with shares floored at 1e-4
``tiny_dancer_drift_ks{feature}``      Kolmogorov-Smirnov statistic ``max |F_window - F_reference|``, the
                                       reference CDF interpolated between its quantiles
``tiny_dancer_drift_window_size``      values in the window
=====================================  ==================================================================

Rules of thumb (the shipped ``DriftDetected`` alert uses the first): PSI above 0.2 is a large shift,
0.1-0.2 moderate.

Examples:
    >>> from prometheus_client import CollectorRegistry
    >>> ref = {"p_strong": tuple(np.linspace(0.0, 1.0, 101))}
    >>> m = DriftMonitor(CollectorRegistry(), window=500, min_count=10)
    >>> m.set_reference(ref)
    >>> m.record({"p_strong": np.random.default_rng(0).uniform(0, 1, 500)})
    >>> round(m.psi("p_strong"), 3) < 0.05, round(m.ks("p_strong"), 2) < 0.1
    (True, True)
    >>> m.record({"p_strong": np.full(500, 0.95)})
    >>> m.psi("p_strong") > 1, m.ks("p_strong") > 0.9
    (True, True)
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping

import numpy as np
from prometheus_client import CollectorRegistry, Gauge

from tinydancer.errors import ConfigError

#: Features a reference may describe.
DRIFT_FEATURES: tuple[str, ...] = ("p_strong", "prompt_chars")
#: Fewest quantiles a reference may hold (it must bound ten bins).
MIN_QUANTILES = 11
_FLOOR = 1e-4


class DriftMonitor:
    """Sliding windows of live feature values compared with a stored reference.

    Args:
        registry: The router's Prometheus registry.
        window: Values kept per feature.
        min_count: Values needed before the statistics are reported (NaN before).

    Raises:
        ConfigError: sizes below 1.
    """

    def __init__(self, registry: CollectorRegistry, window: int = 1000, min_count: int = 100) -> None:
        if window < 1 or min_count < 1:
            raise ConfigError(f"window, min_count: expected >= 1, got {window}, {min_count}")
        self.window, self.min_count = window, min_count
        self._lock = threading.Lock()
        self.reference: dict[str, np.ndarray] = {}
        self._windows: dict[str, deque[float]] = {}
        psi = Gauge("tiny_dancer_drift_psi", "Population stability index of a feature (window vs reference).",
                    ["feature"], registry=registry)  # fmt: skip
        ks = Gauge("tiny_dancer_drift_ks", "Kolmogorov-Smirnov statistic of a feature (window vs reference).",
                   ["feature"], registry=registry)  # fmt: skip
        for feature in DRIFT_FEATURES:
            psi.labels(feature).set_function(lambda f=feature: self.psi(f))  # type: ignore[misc]
            ks.labels(feature).set_function(lambda f=feature: self.ks(f))  # type: ignore[misc]
        Gauge("tiny_dancer_drift_window_size", "Values in the drift window.", registry=registry).set_function(
            lambda: float(min((len(w) for w in self._windows.values()), default=0))
        )

    def set_reference(self, reference: Mapping[str, tuple[float, ...]]) -> None:
        """Compare with a new reference (feature -> quantiles); the windows start empty.

        Raises:
            ConfigError: an unknown feature or malformed quantiles (the old reference stays).
        """
        for feature, quantiles in reference.items():
            q = np.asarray(quantiles, np.float64)
            if feature not in DRIFT_FEATURES or q.ndim != 1 or q.size < MIN_QUANTILES or np.any(np.diff(q) < 0):
                raise ConfigError(
                    f"drift reference {feature!r}: expected one of {DRIFT_FEATURES} with at least {MIN_QUANTILES} "
                    "non-decreasing, equally spaced quantiles (0 % to 100 %)"
                )
        with self._lock:
            self.reference = {k: np.asarray(v, np.float64) for k, v in reference.items()}
            self._windows = {k: deque(maxlen=self.window) for k in self.reference}

    def record(self, values: Mapping[str, np.ndarray]) -> None:
        """Append live values of the features the reference describes (others are ignored)."""
        with self._lock:
            for feature, window in self._windows.items():
                if feature in values:
                    window.extend(np.asarray(values[feature], np.float64).tolist())

    def _window(self, feature: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(window values, reference quantiles) read together, or None before ``min_count`` values."""
        with self._lock:
            window, reference = self._windows.get(feature), self.reference.get(feature)
            live = np.array(window, np.float64) if window is not None else None
        if live is None or reference is None or live.size < self.min_count:
            return None
        return live, reference

    def psi(self, feature: str) -> float:
        """PSI of the window against the reference's decile bins (NaN before ``min_count`` values)."""
        found = self._window(feature)
        if found is None:
            return math.nan
        live, q = found
        edges = np.interp(np.linspace(0.1, 0.9, 9), np.linspace(0.0, 1.0, q.size), q)  # the nine inner deciles
        expected = np.full(10, 0.1)
        actual = np.bincount(np.searchsorted(edges, live, side="right"), minlength=10) / live.size
        a, e = np.maximum(actual, _FLOOR), np.maximum(expected, _FLOOR)
        return float(np.sum((a - e) * np.log(a / e)))

    def ks(self, feature: str) -> float:
        """KS statistic of the window against the interpolated reference CDF (NaN before ``min_count`` values)."""
        found = self._window(feature)
        if found is None:
            return math.nan
        live, q = found
        x = np.sort(live)
        levels = np.linspace(0.0, 1.0, q.size)
        reference_cdf = np.interp(x, q, levels, left=0.0, right=1.0)
        n = x.size
        above = np.arange(1, n + 1) / n - reference_cdf
        below = reference_cdf - np.arange(0, n) / n
        return float(max(above.max(), below.max(), 0.0))
