"""Routing evaluation (RouteLLM protocol, Ong et al. 2024) and threshold tuning.

A router scores each query with P(weak model fails); it calls the strong model when ``score >= threshold``
(:func:`~tinydancer.learning.thresholds.calls_strong`, the learning wing's one convention). For each
threshold: strong-call share (cost proxy) and quality (mean correctness of the model each query was
sent to; on score outcomes the mean score). PGR = (q - q_weak) / (q_strong - q_weak); APGR = trapezoid
area under PGR over the strong-call share on [0, 1]; CPT(x) = the least strong-call share reaching PGR >= x (linear
interpolation between curve points). RouteLLM sweeps the 11 edges of a 10-quantile cut of the
scores; :func:`dense_thresholds` sweeps every distinct score.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from tinydancer.errors import DataError, InvalidInputError
from tinydancer.learning.calibration import ltt_threshold
from tinydancer.learning.labels import PASS_MARK, check_pass_mark, weak_failed
from tinydancer.learning.thresholds import calls_strong

TARGETS: tuple[str, ...] = ("strong_share", "quality_share", "weak_error")


class RoutingCurve(NamedTuple):
    """Strong-call share and quality per threshold, sorted by share, endpoints (0 and 1) included.

    Attributes:
        thresholds: [K] thresholds (``inf``: nothing strong).
        strong_share: [K] share of queries sent to the strong model.
        quality: [K] mean correctness.
        q_weak: Quality of all-weak routing.
        q_strong: Quality of all-strong routing.
    """

    thresholds: np.ndarray
    strong_share: np.ndarray
    quality: np.ndarray
    q_weak: float
    q_strong: float


def _outcomes(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> tuple[np.ndarray, ...]:
    s, w, g = (np.asarray(a, np.float64).ravel() for a in (scores, weak, strong))
    if not (s.shape == w.shape == g.shape) or s.size == 0:
        raise InvalidInputError(f"expected equal non-empty [N] arrays, got {s.shape}, {w.shape}, {g.shape}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(w)) and np.all(np.isfinite(g))):
        raise InvalidInputError("scores/outcomes: expected finite values, got NaN or infinity")
    return s, w, g


def quantile_thresholds(scores: np.ndarray, n_quantiles: int = 10) -> np.ndarray:
    """RouteLLM's thresholds: the ``n_quantiles + 1`` edges of a quantile cut of the scores.

    Examples:
        >>> quantile_thresholds(np.arange(11.0), 2).tolist()
        [0.0, 5.0, 10.0]
    """
    return np.quantile(np.asarray(scores, np.float64), np.linspace(0.0, 1.0, n_quantiles + 1))


def dense_thresholds(scores: np.ndarray) -> np.ndarray:
    """Every distinct score (a threshold per achievable split).

    Examples:
        >>> dense_thresholds(np.array([0.3, 0.1, 0.3])).tolist()
        [0.1, 0.3]
    """
    return np.unique(np.asarray(scores, np.float64))


def routing_curve(
    scores: np.ndarray, weak: np.ndarray, strong: np.ndarray, thresholds: np.ndarray | None = None
) -> RoutingCurve:
    """Quality versus strong-call share over thresholds (strong when ``score >= threshold``).

    Args:
        scores: [N] router scores (higher: more in need of the strong model).
        weak: [N] weak model's correctness (0/1 or scores).
        strong: [N] strong model's correctness.
        thresholds: Default: RouteLLM's 10-quantile edges.

    Returns:
        A :class:`RoutingCurve` (all-weak and all-strong endpoints added).

    Examples:
        >>> c = routing_curve(np.array([0.9, 0.1]), np.array([0, 1]), np.array([1, 1]), np.array([0.5]))
        >>> c.strong_share.tolist(), c.quality.tolist()
        ([0.0, 0.5, 1.0], [0.5, 1.0, 1.0])
    """
    s, w, g = _outcomes(scores, weak, strong)
    ts = quantile_thresholds(s) if thresholds is None else np.asarray(thresholds, np.float64)
    ts = np.r_[math.inf, ts, -math.inf]
    use_strong = calls_strong(s[None, :], ts[:, None])
    share = use_strong.mean(axis=1)
    quality = np.where(use_strong, g[None, :], w[None, :]).mean(axis=1)
    order = np.lexsort((quality, share))
    return RoutingCurve(ts[order], share[order], quality[order], float(w.mean()), float(g.mean()))


def pgr(quality: float | np.ndarray, q_weak: float, q_strong: float) -> np.ndarray:
    """Performance gap recovered.

    Raises:
        DataError: The strong model is not better than the weak one (no gap to recover).

    Examples:
        >>> float(pgr(0.75, 0.5, 1.0))
        0.5
    """
    if not q_strong > q_weak:
        raise DataError(f"PGR needs q_strong > q_weak, got q_strong={q_strong:.4f}, q_weak={q_weak:.4f}")
    return (np.asarray(quality, np.float64) - q_weak) / (q_strong - q_weak)


def apgr(curve: RoutingCurve) -> float:
    """Average PGR: trapezoid area under PGR over the strong-call share.

    Examples:
        >>> round(apgr(routing_curve(np.array([0.9, 0.1]), np.array([0, 1]), np.array([1, 1]), np.array([0.5]))), 3)
        0.75
    """
    return float(np.trapezoid(pgr(curve.quality, curve.q_weak, curve.q_strong), curve.strong_share))


def cpt(curve: RoutingCurve, x: float) -> float:
    """Call-performance threshold: least strong-call share with PGR >= ``x`` (interpolated).

    Args:
        curve: A routing curve.
        x: Target PGR in [0, 1] (e.g. 0.5 for CPT(50%)).

    Returns:
        The share (1.0 when only all-strong routing reaches ``x``).

    Examples:
        >>> cpt(routing_curve(np.array([0.9, 0.1]), np.array([0, 1]), np.array([1, 1]), np.array([0.5])), 0.5)
        0.25
    """
    gaps = pgr(curve.quality, curve.q_weak, curve.q_strong)
    share = curve.strong_share
    for k in range(len(gaps)):
        if gaps[k] >= x - 1e-12:
            if k == 0 or gaps[k] == gaps[k - 1]:
                return float(share[k])
            frac = (x - gaps[k - 1]) / (gaps[k] - gaps[k - 1])
            return float(share[k - 1] + frac * (share[k] - share[k - 1]))
    return 1.0


def random_curve(weak: np.ndarray, strong: np.ndarray, shares: np.ndarray | None = None) -> RoutingCurve:
    """Expected curve of random routing: quality = q_weak + share * (q_strong - q_weak) (APGR 0.5).

    Examples:
        >>> round(apgr(random_curve(np.array([0.0, 1.0]), np.array([1.0, 1.0]))), 6)
        0.5
    """
    w, g = np.asarray(weak, np.float64), np.asarray(strong, np.float64)
    sh = np.linspace(0.0, 1.0, 101) if shares is None else np.asarray(shares, np.float64)
    q = w.mean() + sh * (g.mean() - w.mean())
    return RoutingCurve(np.full(sh.shape, np.nan), sh, q, float(w.mean()), float(g.mean()))


def oracle_curve(weak: np.ndarray, strong: np.ndarray) -> RoutingCurve:
    """Oracle routing: strong calls go first to queries only the strong model gets right.

    Examples:
        >>> round(apgr(oracle_curve(np.array([0.0, 1.0]), np.array([1.0, 1.0]))), 3)
        0.75
    """
    w, g = np.asarray(weak, np.float64), np.asarray(strong, np.float64)
    gain = g - w
    return routing_curve(gain, w, g, dense_thresholds(gain))


def bootstrap_ci(
    statistic: Callable[..., float],
    arrays: tuple[np.ndarray, ...],
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*resampled_arrays)`` over rows.

    Examples:
        >>> lo, hi = bootstrap_ci(lambda a: float(a.mean()), (np.arange(100.0),), n_boot=100)
        >>> lo < 49.5 < hi
        True
    """
    rng = np.random.default_rng(seed)
    n = len(arrays[0])
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        try:
            values.append(statistic(*(np.asarray(a)[idx] for a in arrays)))
        except DataError:  # a degenerate resample (e.g. no gap): skip it
            continue
    tail = (1.0 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


class TunedThreshold(NamedTuple):
    """A threshold (strong iff ``score >= threshold``, :func:`calls_strong`) and what it gives on the tuning data.

    Attributes:
        threshold: The threshold (``inf``: nothing strong; ``-inf``: everything strong).
        strong_share: Share of the tuning queries sent to the strong model.
        quality: Their mean correctness under this routing.
        target: The target it was tuned for.
    """

    threshold: float
    strong_share: float
    quality: float
    target: str


def tune_threshold(
    scores: np.ndarray,
    weak: np.ndarray,
    strong: np.ndarray,
    target: str,
    value: float,
    delta: float = 0.1,
    *,
    pass_mark: float = PASS_MARK,
) -> TunedThreshold:
    """Pick a threshold for one of three targets on a tuning split.

    Args:
        scores: [N] router scores in [0, 1] for ``weak_error`` (any reals otherwise).
        weak: [N] weak outcomes: 0/1 or scores in [0, 1] (quality is their mean).
        strong: [N] strong outcomes, likewise.
        target: ``"strong_share"`` (at most ``value`` of calls strong: RouteLLM's calibration),
            ``"quality_share"`` (least strong share whose quality >= ``value`` * q_strong),
            ``"weak_error"`` (Learn-then-Test: weak error rate among weak-routed <= ``value`` with
            probability >= 1 - ``delta``; an error is ``weak < pass_mark``,
            :func:`~tinydancer.learning.labels.weak_failed`).
        value: The target's level.
        delta: Failure probability for ``weak_error``.
        pass_mark: Weak outcomes below it are errors for ``weak_error`` (any value in (0, 1] on 0/1 outcomes).

    Returns:
        A :class:`TunedThreshold`.

    Raises:
        InvalidInputError: Unknown target, value or pass mark out of range, or outcomes outside [0, 1]
            for ``weak_error``.

    Examples:
        >>> s = np.linspace(0, 1, 101); w = (s < 0.5).astype(float); g = np.ones(101)
        >>> tune_threshold(s, w, g, "quality_share", 1.0).threshold
        0.5
        >>> judge = 1 - s  # score outcomes: the weak model's judge score falls as the router's score rises
        >>> [tune_threshold(s, judge, g, "weak_error", 0.1, pass_mark=m).threshold for m in (0.5, 0.6)]
        [0.53, 0.42]
    """
    s, w, g = _outcomes(scores, weak, strong)
    mark = check_pass_mark(pass_mark)
    if target not in TARGETS:
        raise InvalidInputError(f"target: expected one of {TARGETS}, got {target!r}")
    if not 0.0 <= value <= (1.0 if target != "quality_share" else math.inf):
        raise InvalidInputError(f"value: expected a level in [0, 1], got {value!r}")
    if target == "strong_share":
        ordered = np.sort(s)[::-1]
        k = math.floor(value * s.size + 1e-9)
        # Strong iff score > the (k+1)-th largest: at most k = floor(value * N) strong calls (ties: fewer).
        t = math.inf if k == 0 else float(np.nextafter(ordered[k], math.inf)) if k < s.size else -math.inf
    elif target == "quality_share":
        curve = routing_curve(s, w, g, dense_thresholds(s))
        ok = np.flatnonzero(curve.quality >= value * curve.q_strong - 1e-12)
        t = float(curve.thresholds[ok[0]]) if ok.size else -math.inf
    else:
        t = ltt_threshold(s, weak_failed(w, mark), value, delta).threshold  # the same convention
    use = calls_strong(s, t)
    return TunedThreshold(t, float(use.mean()), float(np.where(use, g, w).mean()), target)


def cost_curve(
    scores: np.ndarray,
    weak: np.ndarray,
    strong: np.ndarray,
    weak_cost: np.ndarray | float,
    strong_cost: np.ndarray | float,
    thresholds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean dollar cost and quality per threshold (strong when ``score >= threshold``).

    Args:
        scores: [N] router scores.
        weak: [N] weak correctness.
        strong: [N] strong correctness.
        weak_cost: Dollars per query of the weak model ([N] or a scalar).
        strong_cost: Dollars per query of the strong model ([N] or a scalar).
        thresholds: Default: every distinct score.

    Returns:
        ``(cost [K], quality [K])``, all-weak and all-strong included.

    Examples:
        >>> c, q = cost_curve(np.array([0.9, 0.1]), np.array([0, 1]), np.array([1, 1]), 1.0, 10.0)
        >>> c.tolist(), q.tolist()
        ([1.0, 5.5, 10.0], [0.5, 1.0, 1.0])
    """
    s, w, g = _outcomes(scores, weak, strong)
    cw = np.broadcast_to(np.asarray(weak_cost, np.float64), s.shape)
    cs = np.broadcast_to(np.asarray(strong_cost, np.float64), s.shape)
    ts = np.r_[math.inf, dense_thresholds(s) if thresholds is None else np.asarray(thresholds, np.float64)]
    use = calls_strong(s[None, :], np.r_[ts, -math.inf][:, None])
    cost = np.where(use, cs[None, :], cw[None, :]).mean(axis=1)
    quality = np.where(use, g[None, :], w[None, :]).mean(axis=1)
    points = np.unique(np.stack([cost, quality], axis=1), axis=0)  # sorted by cost, duplicates dropped
    return points[:, 0], points[:, 1]


def aiq(cost: np.ndarray, quality: np.ndarray) -> float:
    """RouterBench's AIQ: mean height of the non-decreasing upper convex hull of (cost, quality) points.

    The hull is extended flat from its best point to the largest cost; the area is divided by the
    cost range (max - min), so AIQ is a quality in [0, 1] for 0/1 outcomes.

    Args:
        cost: [K] dollar costs (at least two distinct values).
        quality: [K] qualities.

    Returns:
        The AIQ.

    Raises:
        InvalidInputError: Fewer than two distinct costs or non-finite values.

    Examples:
        >>> aiq(np.array([1.0, 2.0, 3.0, 1.5]), np.array([0.5, 0.9, 0.8, 0.6]))
        0.8
    """
    c, q = np.asarray(cost, np.float64), np.asarray(quality, np.float64)
    if c.shape != q.shape or not (np.all(np.isfinite(c)) and np.all(np.isfinite(q))) or np.ptp(c) <= 0:
        raise InvalidInputError("aiq: expected finite [K] costs and qualities with at least two distinct costs")
    order = np.lexsort((-q, c))
    hull: list[tuple[float, float]] = []
    for x, y in zip(c[order], q[order], strict=True):
        if hull and x == hull[-1][0]:
            continue  # same cost: the best quality came first
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1) >= 0:  # middle point on or below the chord
                hull.pop()
            else:
                break
        hull.append((float(x), float(y)))
    best = int(np.argmax([y for _, y in hull]))
    xs = np.array([x for x, _ in hull[: best + 1]] + [float(c.max())])
    ys = np.array([y for _, y in hull[: best + 1]] + [hull[best][1]])
    return float(np.trapezoid(ys, xs) / (c.max() - c.min()))
