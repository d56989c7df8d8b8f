"""Probability calibration, calibration metrics, split-conformal sets and a guaranteed threshold.

Everything here is a pure numpy/scipy function of (scores, labels). Scores are the router's
P(route to strong) = P(weak model fails); labels ``y`` are 1 when the weak model fails: 0/1 only (score
outcomes are binarised first, :func:`~tinydancer.learning.labels.weak_failed`).

- Recalibration maps: temperature (one scalar on the logit), Platt (``a * z + b``), isotonic (PAV).
- Metrics: ECE (equal-width and equal-mass bins), MCE, Brier, NLL, AUROC, reliability bins.
- Split conformal (binary): ``s_i = 1 - p(y_i | x_i)``; ``q`` = the ``ceil((n + 1)(1 - alpha)) / n``
  empirical quantile; the set ``{y : 1 - p(y | x) <= q}`` covers with probability >= 1 - alpha.
- Learn-then-Test (Angelopoulos et al. 2021): the largest threshold (fewest strong calls) whose error
  rate among the queries kept on the weak model is <= alpha with probability >= 1 - delta, using exact
  Clopper-Pearson (binomial) p-values and fixed-sequence testing from the most conservative threshold.
  The threshold reads like every other of the learning wing: the strong model is called iff
  ``score >= threshold`` (:func:`~tinydancer.learning.thresholds.calls_strong`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import optimize, stats

from tinydancer.errors import DataError, InvalidInputError
from tinydancer.learning.thresholds import calls_strong
from tinydancer.model.calibration_map import CALIBRATORS as CALIBRATORS  # re-exported: fitting and serving share them
from tinydancer.model.calibration_map import LOGIT_EPS
from tinydancer.model.calibration_map import Calibrator as Calibrator

_EPS = LOGIT_EPS


def _check(p: np.ndarray, y: np.ndarray | None = None, name: str = "p") -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(p, np.float64).ravel()
    if arr.size == 0:
        raise InvalidInputError(f"{name}: expected at least one score, got none")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name}: expected finite values, got NaN or infinity")
    lab = np.zeros(0) if y is None else np.asarray(y, np.float64).ravel()
    if y is not None and lab.shape != arr.shape:
        raise InvalidInputError(f"y: expected shape {arr.shape}, got {lab.shape}")
    if y is not None and not np.all((lab == 0) | (lab == 1)):
        other = float(lab[(lab != 0) & (lab != 1)][0])
        raise InvalidInputError(
            f"y: expected 0/1 labels, got {other!r} (score outcomes: binarise them with "
            "tinydancer.learning.weak_failed)"
        )
    return arr, lab


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    out: np.ndarray = np.log(q) - np.log1p(-q)
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


def _pav(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Pool-adjacent-violators on points sorted by x (ties pooled first): non-decreasing fit.
    order = np.argsort(x, kind="stable")
    xs, inverse = np.unique(x[order], return_inverse=True)
    sums = np.bincount(inverse, y[order])
    counts = np.bincount(inverse).astype(np.float64)
    values, weights, sizes = [], [], []
    for s, c in zip(sums, counts, strict=True):
        values.append(s / c)
        weights.append(c)
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            w = weights[-2] + weights[-1]
            values[-2] = (values[-2] * weights[-2] + values[-1] * weights[-1]) / w
            weights[-2], sizes[-2] = w, sizes[-2] + sizes[-1]
            del values[-1], weights[-1], sizes[-1]
    return xs, np.repeat(values, sizes)


def fit_calibrator(kind: str, p: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit a recalibration map on a calibration split by maximum likelihood (isotonic: least squares).

    Args:
        kind: ``"none"``, ``"temperature"``, ``"platt"`` or ``"isotonic"``.
        p: [N] uncalibrated probabilities.
        y: [N] 0/1 labels.

    Returns:
        The fitted :class:`Calibrator`.

    Raises:
        InvalidInputError: Unknown kind, or malformed inputs.
        DataError: A single-class calibration split.

    Examples:
        >>> cal = fit_calibrator("temperature", np.array([0.9, 0.8, 0.2, 0.1, 0.7]), np.array([1, 0, 0, 0, 1]))
        >>> round(cal.a, 3)
        0.92
    """
    if kind not in CALIBRATORS:
        raise InvalidInputError(f"kind: expected one of {CALIBRATORS}, got {kind!r}")
    probs, lab = _check(p, y)
    if kind == "none":
        return Calibrator("none")
    if lab.min() == lab.max():
        raise DataError("calibration split: expected both labels, got a single class")
    z = _logit(probs)
    if kind == "isotonic":
        xs, ys = _pav(probs, lab)
        return Calibrator("isotonic", xs=tuple(map(float, xs)), ys=tuple(map(float, ys)))

    def nll(params: np.ndarray) -> float:
        a, b = (params[0], 0.0) if kind == "temperature" else (params[0], params[1])
        s = a * z + b
        return float(np.mean(np.logaddexp(0.0, s) - lab * s))

    start = np.array([1.0] if kind == "temperature" else [1.0, 0.0])
    fit = optimize.minimize(nll, start, method="L-BFGS-B")
    a = float(fit.x[0])
    return Calibrator(kind, a=a, b=0.0 if kind == "temperature" else float(fit.x[1]))


def apply_calibrator(cal: Calibrator, p: np.ndarray) -> np.ndarray:
    """Map probabilities through a fitted calibrator.

    Args:
        cal: From :func:`fit_calibrator`.
        p: [N] probabilities.

    Returns:
        [N] calibrated probabilities.

    Examples:
        >>> apply_calibrator(Calibrator("platt", a=1.0, b=0.0), np.array([0.25])).round(6).tolist()
        [0.25]
    """
    probs, _ = _check(p)
    if cal.kind == "none":
        return probs
    if cal.kind == "isotonic":
        out: np.ndarray = np.interp(probs, np.asarray(cal.xs), np.asarray(cal.ys))
        return out
    return _sigmoid(cal.a * _logit(probs) + cal.b)


class ReliabilityBin(NamedTuple):
    """One bin of a reliability diagram: its edges, count, mean score and observed frequency."""

    lower: float
    upper: float
    n: int
    mean_score: float
    frequency: float


def reliability_bins(p: np.ndarray, y: np.ndarray, n_bins: int = 15, strategy: str = "uniform") -> list[ReliabilityBin]:
    """Reliability-diagram bins (non-empty ones only).

    Args:
        p: [N] probabilities of label 1.
        y: [N] 0/1 labels.
        n_bins: Number of bins.
        strategy: ``"uniform"`` (equal width on [0, 1]) or ``"quantile"`` (equal mass).

    Returns:
        The non-empty bins in order.

    Examples:
        >>> [b.n for b in reliability_bins(np.array([0.1, 0.2, 0.9]), np.array([0, 0, 1]), n_bins=2)]
        [2, 1]
    """
    probs, lab = _check(p, y)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.quantile(probs, np.linspace(0.0, 1.0, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
    else:
        raise InvalidInputError(f"strategy: expected 'uniform' or 'quantile', got {strategy!r}")
    idx = np.clip(np.searchsorted(edges, probs, side="right") - 1, 0, n_bins - 1)
    bins = []
    for k in range(n_bins):
        sel = idx == k
        if sel.any():
            bins.append(
                ReliabilityBin(
                    float(edges[k]),
                    float(edges[k + 1]),
                    int(sel.sum()),
                    float(probs[sel].mean()),
                    float(lab[sel].mean()),
                )
            )
    return bins


def ece(p: np.ndarray, y: np.ndarray, n_bins: int = 15, strategy: str = "uniform") -> float:
    """Expected calibration error: count-weighted mean |frequency - mean score| over bins.

    Examples:
        >>> round(ece(np.array([0.1, 0.2, 0.9]), np.array([0, 0, 1]), n_bins=2), 4)
        0.1333
    """
    bins = reliability_bins(p, y, n_bins, strategy)
    total = sum(b.n for b in bins)
    return float(sum(b.n * abs(b.frequency - b.mean_score) for b in bins) / total)


def mce(p: np.ndarray, y: np.ndarray, n_bins: int = 15, strategy: str = "uniform") -> float:
    """Maximum calibration error over non-empty bins.

    Examples:
        >>> round(mce(np.array([0.1, 0.2, 0.9]), np.array([0, 0, 1]), n_bins=2), 4)
        0.15
    """
    return float(max(abs(b.frequency - b.mean_score) for b in reliability_bins(p, y, n_bins, strategy)))


def brier(p: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of the probabilities.

    Examples:
        >>> brier(np.array([1.0, 0.5]), np.array([1, 0]))
        0.125
    """
    probs, lab = _check(p, y)
    return float(np.mean((probs - lab) ** 2))


def nll(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood (probabilities clipped to [1e-7, 1 - 1e-7]).

    Examples:
        >>> round(nll(np.array([0.5, 0.5]), np.array([1, 0])), 4)
        0.6931
    """
    probs, lab = _check(p, y)
    q = np.clip(probs, _EPS, 1 - _EPS)
    return float(-np.mean(lab * np.log(q) + (1 - lab) * np.log1p(-q)))


def auroc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half).

    Raises:
        DataError: Only one class present.

    Examples:
        >>> auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    probs, lab = _check(p, y)
    pos = lab == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise DataError("auroc: expected both labels, got a single class")
    ranks = stats.rankdata(probs)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def conformal_quantile(p: np.ndarray, y: np.ndarray, alpha: float) -> float:
    """Split-conformal threshold ``q`` on nonconformity ``1 - p(y_i | x_i)``.

    Args:
        p: [n] calibration probabilities of label 1.
        y: [n] calibration labels.
        alpha: Miscoverage level in (0, 1).

    Returns:
        ``q``: the ``ceil((n + 1)(1 - alpha))``-th smallest score.

    Raises:
        DataError: ``n`` is too small for ``alpha`` (needs ``n >= 1/alpha - 1``).

    Examples:
        >>> conformal_quantile(np.array([0.9, 0.2, 0.6, 0.3]), np.array([1, 0, 1, 1]), alpha=0.2)
        0.7
    """
    probs, lab = _check(p, y)
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha: expected a level in (0, 1), got {alpha!r}")
    n = probs.size
    rank = math.ceil((n + 1) * (1 - alpha))
    if rank > n:
        raise DataError(
            f"calibration split too small for alpha={alpha}: need n >= {math.ceil(1 / alpha - 1)}, got n={n}"
        )
    scores = np.where(lab == 1, 1.0 - probs, probs)
    return float(np.sort(scores)[rank - 1])


def conformal_sets(p: np.ndarray, q: float) -> np.ndarray:
    """Prediction sets: column 0 holds "label 0 in the set", column 1 "label 1 in the set".

    Args:
        p: [N] probabilities of label 1.
        q: From :func:`conformal_quantile`.

    Returns:
        [N, 2] bool; a two-label row is "uncertain" (route strong / flag).

    Examples:
        >>> conformal_sets(np.array([0.95, 0.5]), 0.6).tolist()
        [[False, True], [True, True]]
    """
    probs, _ = _check(p)
    return np.stack([probs <= q, 1.0 - probs <= q], axis=1)


class GuaranteedThreshold(NamedTuple):
    """Learn-then-Test result: call the strong model iff ``score >= threshold`` (:func:`calls_strong`).

    Attributes:
        threshold: The largest certified threshold (``-inf``: nothing certified, everything strong).
        weak_share: Share of calibration queries kept on the weak model.
        empirical_risk: Weak-error rate among them on the calibration split.
        n_kept: Their number.
        p_value: The Clopper-Pearson p-value of the last certified threshold.
    """

    threshold: float
    weak_share: float
    empirical_risk: float
    n_kept: int
    p_value: float


def ltt_threshold(
    p: np.ndarray,
    weak_wrong: np.ndarray,
    alpha: float,
    delta: float,
    grid: int = 1000,
    min_kept: int | None = None,
) -> GuaranteedThreshold:
    """Largest threshold with P(weak-error rate among the queries kept on the weak model <= alpha) >= 1 - delta.

    Candidates are a data-independent grid ``j / grid`` (j = 1..grid) tested in increasing order
    (fixed-sequence testing: the first non-rejection stops). The sequence starts at the first grid
    point keeping at least ``min_kept`` queries: tiny kept sets have no power (below
    ``log(delta) / log(1 - alpha)`` they cannot be certified whatever the labels) and would end the
    sequence by chance; the start depends on the scores only, never on the labels. Each hypothesis
    H0 "error rate among kept > alpha" gets the exact binomial (Clopper-Pearson) p-value
    ``P(Binomial(n_kept, alpha) <= errors)``, valid conditionally on ``n_kept``.

    Args:
        p: [n] calibration scores in [0, 1] (P(weak model fails)); the strong model is called iff
            ``score >= threshold`` (:func:`calls_strong`), the rest are kept on the weak model.
        weak_wrong: [n] 1 where the weak model failed.
        alpha: Tolerated weak-error rate in (0, 1).
        delta: Allowed failure probability of the guarantee in (0, 1).
        grid: Number of candidate thresholds.
        min_kept: Start of the sequence (default ``max(needed, n // 10)``).

    Returns:
        A :class:`GuaranteedThreshold`.

    Raises:
        DataError: Even an error-free split of this size could not certify ``alpha`` at ``delta``
            (needs ``n >= log(delta) / log(1 - alpha)``).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> s = rng.random(2000); wrong = (rng.random(2000) < s).astype(float)
        >>> g = ltt_threshold(s, wrong, alpha=0.1, delta=0.1)
        >>> 0.1 < g.threshold < 0.25, g.empirical_risk <= 0.1
        (True, True)
    """
    probs, lab = _check(p, weak_wrong)
    for name, value in (("alpha", alpha), ("delta", delta)):
        if not 0.0 < value < 1.0:
            raise InvalidInputError(f"{name}: expected a level in (0, 1), got {value!r}")
    n = probs.size
    needed = math.ceil(math.log(delta) / math.log1p(-alpha))
    if n < needed:
        raise DataError(f"calibration split too small for alpha={alpha}, delta={delta}: need n >= {needed}, got n={n}")
    start = max(needed, n // 10) if min_kept is None else max(needed, min_kept)
    best = GuaranteedThreshold(-math.inf, 0.0, 0.0, 0, 1.0)
    for threshold in np.arange(1, grid + 1) / grid:
        weak = ~calls_strong(probs, threshold)
        kept = int(np.count_nonzero(weak))
        if kept < start:
            continue
        err = float(lab[weak].sum())
        p_value = float(stats.binom.cdf(err, kept, alpha))
        if p_value > delta:
            break
        best = GuaranteedThreshold(float(threshold), kept / n, err / kept, kept, p_value)
    return best
