"""The learning wing's one threshold convention: call the strong model iff ``score >= threshold``.

A learned router's score is ``p_strong`` = P(the weak model fails on this query), the label
``1 - weak_correct`` that :mod:`tinydancer.learning.train` fits. Every threshold of the learning wing reads
it the same way, through :func:`calls_strong`: the routing curves, APGR and CPT of
:mod:`tinydancer.learning.evaluation`, :func:`~tinydancer.learning.evaluation.tune_threshold`'s three
targets, the Learn-then-Test threshold of :func:`~tinydancer.learning.calibration.ltt_threshold`, the
report of :mod:`tinydancer.learning.experiment` and ``python -m tinydancer evaluate``. A higher threshold
means fewer strong calls; ``inf`` sends nothing to the strong model and ``-inf`` everything (the
Learn-then-Test answer when nothing can be certified).

The serving Router (:class:`tinydancer.RouterConfig`, the original's convention) reads the other side:
its model gives ``confidence`` = P(the lightweight model suffices), and a candidate goes to the
lightweight model iff ``confidence >= confidence_threshold`` (and ``uncertainty <= max_uncertainty``).
With ``confidence = 1 - p_strong`` and ``confidence_threshold = 1 - threshold`` the two agree except on a
tie: the Router keeps ``p_strong == threshold`` on the lightweight model, :func:`calls_strong` sends it to
the strong one (and ``1 - p`` rounds in floating point). Metrics recorded from learned scores take
``use_lightweight = ~calls_strong(scores, threshold)``, never a hand-written comparison.

Examples:
    >>> calls_strong(np.array([0.2, 0.5, 0.9]), 0.5).tolist()
    [False, True, True]
    >>> calls_strong(np.array([0.2, 0.9]), np.array([[np.inf], [-np.inf]])).tolist()
    [[False, False], [True, True]]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["calls_strong"]


def calls_strong(scores: ArrayLike, threshold: ArrayLike) -> NDArray[np.bool_]:
    """Where the strong model is called: ``scores >= threshold`` (numpy broadcasting).

    Args:
        scores: Router scores ``p_strong`` = P(weak model fails), any shape.
        threshold: One threshold, or an array that broadcasts against ``scores`` (e.g. ``[K, 1]``
            thresholds against ``[N]`` scores gives ``[K, N]``). ``inf``: never strong; ``-inf``: always.

    Returns:
        Bool array of the broadcast shape: True where the strong model is called; its negation is
        where the query stays on the weak model (the Router's ``use_lightweight``).

    Examples:
        >>> calls_strong([0.1, 0.3], np.inf).tolist(), calls_strong([0.1, 0.3], -np.inf).tolist()
        ([False, False], [True, True])
    """
    return np.greater_equal(np.asarray(scores, np.float64), np.asarray(threshold, np.float64))
