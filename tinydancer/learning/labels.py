"""The learning wing's one definition of the routing label, for 0/1 and score-valued outcomes.

Outcomes are per-query numbers in [0, 1]: 0/1 for right/wrong benchmarks (MMLU), or a judge's score scaled to
[0, 1] (e.g. an LLM judge's 1-10 rating as ``(rating - 1) / 9``). Two labels are derived from the weak
model's outcome ``w``, and both are exactly today's ``1 - weak_correct`` on 0/1 outcomes:

- **Training target** (soft), one of :data:`TRAINING_TARGETS`:

  - ``"weak_fails"``: :func:`soft_target` ``= 1 - w``, the weak model's shortfall. Binary cross-entropy with
    this soft target is minimised by ``E[1 - w | query]``, so the router's score is the expected shortfall of
    the weak answer (on 0/1 outcomes: P(weak model fails)).
  - ``"strong_gain"``: :func:`gain_target` ``= (1 + s - w) / 2`` with the strong model's outcome ``s``: the
    score is ``(1 + E[s - w | query]) / 2``, the expected gain of calling the strong model mapped to [0, 1]
    (0.5: no gain expected; on 0/1 outcomes ``(1 + P(strong wins) - P(weak wins)) / 2``). Routing by it
    sends the strong model the queries where it pays, not merely the hard ones that both models miss;
    it is the default recipe's target (EVALUATION.md measures both).
- **Binary label** "the weak model fails" (for calibration, ECE, AUROC, conformal sets and Learn-then-Test):
  :func:`weak_failed` ``= 1 if w < pass_mark else 0``, with ``pass_mark`` in (0, 1] (default
  :data:`PASS_MARK` = 0.5: a 1-10 judge rating of 6 or more passes). On 0/1 outcomes every pass mark gives
  ``1 - w``. Calibrators fitted on it turn the score into P(weak score < pass mark).

- **Binary label of the target** ("the strong model is needed"), what calibration, ECE, AUROC and conformal
  sets read (:func:`needs_strong`): "the weak model fails" for ``"weak_fails"``; "the strong model scores
  higher than the weak" (``s > w``) for ``"strong_gain"``. A calibrated score is then P(the strong model is
  needed) on either target. The guaranteed weak-error threshold always reads "the weak model fails".

The quality figures (routing curves, APGR, CPT, ``quality_share`` thresholds) never binarise: quality is the
mean outcome (score) of the model each query was sent to.

Examples:
    >>> w = np.array([1.0, 0.0, 0.7, 0.3])
    >>> soft_target(w).round(2).tolist(), weak_failed(w).tolist()
    ([0.0, 1.0, 0.3, 0.7], [0.0, 1.0, 0.0, 1.0])
    >>> weak_failed(w, pass_mark=0.8).tolist()
    [0.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tinydancer.errors import InvalidInputError
from tinydancer.model.prompt_artifact import TRAINING_TARGETS

__all__ = [
    "PASS_MARK",
    "TRAINING_TARGETS",
    "check_pass_mark",
    "gain_target",
    "needs_strong",
    "soft_target",
    "training_target",
    "weak_failed",
]

#: Default pass mark: a weak outcome (score) below it counts as "the weak model fails".
PASS_MARK = 0.5


def check_pass_mark(pass_mark: float) -> float:
    """Validate a pass mark: a real number in (0, 1].

    Args:
        pass_mark: The candidate.

    Returns:
        It, as a float.

    Raises:
        InvalidInputError: It is not a number in (0, 1].

    Examples:
        >>> check_pass_mark(0.5)
        0.5
        >>> check_pass_mark(0.0)
        Traceback (most recent call last):
        ...
        tinydancer.errors.InvalidInputError: pass_mark: expected a number in (0, 1], got 0.0
    """
    if isinstance(pass_mark, bool) or not isinstance(pass_mark, (int, float)) or not 0.0 < pass_mark <= 1.0:
        raise InvalidInputError(f"pass_mark: expected a number in (0, 1], got {pass_mark!r}")
    return float(pass_mark)


def _outcomes(weak: ArrayLike) -> NDArray[np.float64]:
    w = np.asarray(weak, np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0.0) or np.any(w > 1.0):
        bad = w[~(np.isfinite(w) & (w >= 0.0) & (w <= 1.0))]
        raise InvalidInputError(f"weak: expected outcomes in [0, 1], got e.g. {float(bad.ravel()[0])!r}")
    return w


def soft_target(weak: ArrayLike) -> NDArray[np.float64]:
    """Soft training target ``1 - weak``: the weak model's shortfall (P(weak fails) on 0/1 outcomes).

    Args:
        weak: Weak model's outcomes (0/1 or scores) in [0, 1], any shape.

    Returns:
        float64 array of the same shape, in [0, 1].

    Raises:
        InvalidInputError: An outcome is outside [0, 1] or not finite.

    Examples:
        >>> soft_target([1.0, 0.25]).tolist()
        [0.0, 0.75]
    """
    out: NDArray[np.float64] = 1.0 - _outcomes(weak)
    return out


def gain_target(weak: ArrayLike, strong: ArrayLike) -> NDArray[np.float64]:
    """Soft training target ``(1 + strong - weak) / 2``: the gain of calling the strong model, in [0, 1].

    Args:
        weak: Weak model's outcomes in [0, 1].
        strong: Strong model's outcomes in [0, 1], same shape.

    Returns:
        float64 array of that shape, in [0, 1] (0.5 where both models score the same).

    Raises:
        InvalidInputError: An outcome is outside [0, 1] or not finite, or the shapes differ.

    Examples:
        >>> gain_target([1.0, 0.0, 1.0, 0.2], [1.0, 1.0, 0.0, 0.6]).round(3).tolist()
        [0.5, 1.0, 0.0, 0.7]
    """
    w, s = _outcomes(weak), _outcomes(strong)
    if w.shape != s.shape:
        raise InvalidInputError(f"strong: expected the weak outcomes' shape {w.shape}, got {s.shape}")
    out: NDArray[np.float64] = (1.0 + s - w) / 2.0
    return out


def training_target(weak: ArrayLike, strong: ArrayLike, target: str) -> NDArray[np.float64]:
    """The soft training target named ``target`` (one of :data:`TRAINING_TARGETS`).

    Raises:
        InvalidInputError: Unknown target, or outcomes outside [0, 1].

    Examples:
        >>> training_target([0.0], [1.0], "weak_fails").tolist(), training_target([0.0], [1.0], "strong_gain").tolist()
        ([1.0], [1.0])
    """
    if target == "weak_fails":
        return soft_target(weak)
    if target == "strong_gain":
        return gain_target(weak, strong)
    raise InvalidInputError(f"target: expected one of {TRAINING_TARGETS}, got {target!r}")


def needs_strong(weak: ArrayLike, strong: ArrayLike, target: str, pass_mark: float = PASS_MARK) -> NDArray[np.float64]:
    """The binary label of a training target: 1.0 where the strong model is needed (module docstring).

    Args:
        weak: Weak model's outcomes in [0, 1].
        strong: Strong model's outcomes in [0, 1], same shape.
        target: One of :data:`TRAINING_TARGETS`.
        pass_mark: For ``"weak_fails"``: weak outcomes below it are failures.

    Raises:
        InvalidInputError: Unknown target, outcomes outside [0, 1], or a pass mark outside (0, 1].

    Examples:
        >>> w, s = [1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]
        >>> needs_strong(w, s, "weak_fails").tolist(), needs_strong(w, s, "strong_gain").tolist()
        ([0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0])
    """
    if target == "weak_fails":
        return weak_failed(weak, pass_mark)
    return (training_target(weak, strong, target) > 0.5).astype(np.float64)  # strong > weak; unknown targets raise


def weak_failed(weak: ArrayLike, pass_mark: float = PASS_MARK) -> NDArray[np.float64]:
    """Binary label "the weak model fails": 1.0 where ``weak < pass_mark``, else 0.0.

    Args:
        weak: Weak model's outcomes (0/1 or scores) in [0, 1], any shape.
        pass_mark: In (0, 1]; on 0/1 outcomes every pass mark gives ``1 - weak``.

    Returns:
        float64 0/1 array of the same shape.

    Raises:
        InvalidInputError: An outcome is outside [0, 1], or the pass mark outside (0, 1].

    Examples:
        >>> weak_failed([0.0, 1.0, 0.4, 0.5]).tolist()
        [1.0, 0.0, 1.0, 0.0]
    """
    mark = check_pass_mark(pass_mark)
    return (_outcomes(weak) < mark).astype(np.float64)
