"""Pluggable scorers: any model mapping prompts to P(weak model fails) runs through one evaluation harness.

A :class:`Scorer` has a ``name``, ``fit(prompts, y, *, val=None) -> self`` and ``score(prompts) -> [N]``
float64 in [0, 1]. The built-in default is :class:`FastGRNNScorer` (the CLI's ``train`` settings); the
baselines are first-class scorers of the same protocol: :class:`TfidfLogisticScorer`,
:class:`KNNEmbeddingScorer`, :class:`PromptStatsScorer`, :class:`RandomScorer` and :class:`OracleScorer`
(an upper bound that reads the true outcomes: evaluation only). :func:`evaluate_scorers` fits every scorer on
the train rows of one split (:func:`~tinydancer.learning.experiment.split_rows`; its validation rows for early
stopping), fits Platt scaling on the calibration rows and reports APGR, CPT(50%), CPT(80%), AUROC and ECE on
the test rows, with fit time and scoring throughput, one row per scorer. Scores follow the learning wing's one
convention: the strong model is called iff ``score >= threshold``
(:func:`~tinydancer.learning.thresholds.calls_strong`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from tinydancer.errors import ConfigError, DataError, InvalidInputError, TinyDancerError
from tinydancer.learning.calibration import apply_calibrator, auroc, ece, fit_calibrator
from tinydancer.learning.evaluation import apgr, cpt, routing_curve
from tinydancer.learning.experiment import failure_labels, labels, split_rows, strong_needed, trained_policy
from tinydancer.learning.recipe import DEFAULT_FEATURIZER, DEFAULT_MODEL, DEFAULT_TARGET, default_train_config
from tinydancer.learning.train import RoutingData, TrainConfig, TrainResult, train_fastgrnn
from tinydancer.model.fastgrnn import FastGRNNConfig
from tinydancer.model.prompt_artifact import PromptRouterArtifact
from tinydancer.model.prompt_scoring import PromptScorer
from tinydancer.model.scorer_router import (
    ScorerRouterArtifact,
    ScorerState,
    ServableScorer,
    check_raw_scores,
    save_scorer_router,
    tensor_to_texts,
    texts_to_tensor,
)
from tinydancer.model.text_features import (
    FeaturizerConfig,
    NormStats,
    TextFeatures,
    TextFeaturizer,
    apply_norm,
    fit_norm_stats,
)

#: Columns of :func:`evaluate_scorers`' table, in order.
SCORER_COLUMNS: tuple[str, ...] = (
    "scorer",
    "apgr",
    "cpt50",
    "cpt80",
    "auroc",
    "auroc_gain",
    "ece",
    "ece_raw",
    "fit_seconds",
    "prompts_per_s",
)
_SPLIT_SEED = 12345
_OPTION_LINE = re.compile(r"^\s*\(?[A-Ha-h][).:]\s", re.MULTILINE)


class ScorerNotFittedError(TinyDancerError, RuntimeError):
    """``score`` was called on a scorer that needs ``fit`` first."""

    error_type = "invalid_input"


@runtime_checkable
class Scorer(Protocol):
    """Anything that maps prompts to P(the weak model fails).

    Attributes:
        name: Short label (a row of :func:`evaluate_scorers`' table).

    Implement ``fit(prompts, y, *, val=None) -> self`` (``prompts``: N str; ``y``: [N] targets in [0, 1],
    1 where the weak model fails, soft on score outcomes; ``val``: optional ``(prompts, y)`` for early stopping,
    which a scorer without one may simply add to its training rows) and ``score(prompts) -> [N]`` float64 in
    [0, 1]. The strong model is called iff ``score >= threshold``.

    Examples:
        >>> class LongPromptsFail:
        ...     name = "long"
        ...     def fit(self, prompts, y, *, val=None):
        ...         return self
        ...     def score(self, prompts):
        ...         return np.array([min(len(p) / 100, 1.0) for p in prompts])
        >>> isinstance(LongPromptsFail(), Scorer), LongPromptsFail().fit(["a"], np.ones(1)).score(["a" * 50]).tolist()
        (True, [0.5])
    """

    name: str

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        """Learn from prompts and targets [N] in [0, 1]; returns the scorer itself."""
        ...

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """[N] float64 P(weak model fails) in [0, 1]."""
        ...


def check_prompts(prompts: object, name: str = "prompts") -> list[str]:
    """Validate a sequence of prompt strings.

    Args:
        prompts: Candidate prompts.
        name: Argument name for the message.

    Returns:
        The prompts as a list.

    Raises:
        InvalidInputError: Not a sequence (list, tuple, array, Series) of str, or a bare str.

    Examples:
        >>> check_prompts(("a", "b"))
        ['a', 'b']
    """
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, (Sequence, np.ndarray, pd.Series)):
        raise InvalidInputError(f"{name}: expected a sequence of str, got {type(prompts).__name__}")
    out = list(prompts)
    bad = [type(p).__name__ for p in out if not isinstance(p, str)]
    if bad:
        raise InvalidInputError(f"{name}: expected a sequence of str, got an element of type {bad[0]}")
    return out


def check_targets(y: object, n: int, name: str = "y") -> np.ndarray:
    """Validate targets: [n] finite values in [0, 1].

    Args:
        y: Candidate targets.
        n: Expected length (the number of prompts).
        name: Argument name for the message.

    Returns:
        [n] float64.

    Raises:
        InvalidInputError: Wrong shape, non-finite or outside [0, 1].

    Examples:
        >>> check_targets([0, 1, 0.5], 3).tolist()
        [0.0, 1.0, 0.5]
    """
    try:
        arr = np.asarray(y, np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name}: expected numbers in [0, 1], got {type(y).__name__}") from exc
    if arr.shape != (n,):
        raise InvalidInputError(f"{name}: expected shape ({n},) (one target per prompt), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any((arr < 0) | (arr > 1)):
        bad = arr[~(np.isfinite(arr) & (arr >= 0) & (arr <= 1))][0]
        raise InvalidInputError(f"{name}: expected values in [0, 1], got {float(bad)!r}")
    return arr


def _fit_inputs(
    prompts: object, y: object, val: object, *, merge: bool
) -> tuple[list[str], np.ndarray, tuple[list[str], np.ndarray] | None]:
    """Validated (prompts, y, val); with ``merge`` the validation rows join the training rows."""
    p = check_prompts(prompts)
    t = check_targets(y, len(p))
    if not p:
        raise DataError("prompts: expected at least one training prompt, got none")
    v: tuple[list[str], np.ndarray] | None = None
    if val is not None:
        if not isinstance(val, tuple) or len(val) != 2:
            raise InvalidInputError(f"val: expected a (prompts, y) tuple or None, got {type(val).__name__}")
        vp = check_prompts(val[0], "val prompts")
        v = (vp, check_targets(val[1], len(vp), "val y"))
    if merge and v is not None:
        return p + v[0], np.concatenate([t, v[1]]), None
    return p, t, v


def _need(fitted: object, scorer: object) -> None:
    if fitted is None:
        raise ScorerNotFittedError(f"{type(scorer).__name__}.score: expected a fitted scorer, got one before fit()")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


class TfidfLogisticScorer:
    """TF-IDF (word 1-2 grams, ``min_df=2``, sublinear tf) + logistic regression (scikit-learn, imported lazily).

    Soft targets ``y`` are fitted exactly: each prompt appears as a failure with weight ``y`` and as a success
    with weight ``1 - y``. Validation rows, when given, join the training rows.

    Args:
        c: Inverse L2 regularisation strength of the logistic regression.
        name: Table label.

    Examples:
        >>> texts = ["hard proof", "hard proof x", "easy sum", "easy sum y"]
        >>> s = TfidfLogisticScorer().fit(texts, np.array([1, 1, 0, 0]))
        >>> p = s.score(["hard proof", "easy sum"])
        >>> p.shape, bool(p[0] > p[1])
        ((2,), True)
    """

    def __init__(self, c: float = 1.0, name: str = "tfidf_lr") -> None:
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
            raise InvalidInputError(f"c: expected a number > 0, got {c!r}")
        self.name = name
        self.c = float(c)
        self._model: Any = None

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        """Fit the vectoriser and the regression on prompts [N] (plus ``val``) and targets [N] in [0, 1].

        Raises:
            InvalidInputError: Malformed prompts or targets.
            DataError: Targets of a single class, or no word in two prompts.

        Examples:
            >>> texts = ["hard proof", "hard proof", "easy sum", "easy sum"]
            >>> TfidfLogisticScorer().fit(texts, np.array([1, 1, 0, 0.5])).name
            'tfidf_lr'
        """
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        p, t, _ = _fit_inputs(prompts, y, val, merge=True)
        pos, neg = t > 0, t < 1
        if not pos.any() or not neg.any():
            raise DataError("y: expected both failures (> 0) and successes (< 1), got a single class")
        texts = [p[i] for i in np.flatnonzero(pos)] + [p[i] for i in np.flatnonzero(neg)]
        target = np.r_[np.ones(int(pos.sum())), np.zeros(int(neg.sum()))]
        weight = np.r_[t[pos], 1.0 - t[neg]]
        model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            LogisticRegression(C=self.c, max_iter=2000),
        )
        try:
            model.fit(texts, target, logisticregression__sample_weight=weight)
        except ValueError as exc:  # e.g. no word in at least two prompts
            raise DataError(f"prompts: expected words shared by at least two prompts, got none ({exc})") from exc
        self._model = model
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """[N] float64 P(weak fails).

        Raises:
            ScorerNotFittedError: Before :meth:`fit`.
            InvalidInputError: Prompts not a sequence of str.

        Examples:
            >>> texts = ["hard proof", "hard proof", "easy sum", "easy sum"]
            >>> s = TfidfLogisticScorer().fit(texts, np.array([1, 1, 0, 0]))
            >>> s.score(["hard sum"]).dtype.name
            'float64'
        """
        p = check_prompts(prompts)
        _need(self._model, self)
        if not p:
            return np.zeros(0)
        return np.asarray(self._model.predict_proba(p)[:, 1], np.float64)

    def state(self) -> ScorerState:
        """The vocabulary (terms in column order), idf [V], coefficients [V] and intercept [1] (a servable scorer).

        Raises:
            ScorerNotFittedError: Before :meth:`fit`.
        """
        _need(self._model, self)
        vectorizer, regression = self._model[0], self._model[-1]
        terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        tensors = {
            "vocabulary": texts_to_tensor(terms),
            "idf": np.asarray(vectorizer.idf_, np.float64),
            "coef": np.asarray(regression.coef_, np.float64).ravel(),
            "intercept": np.asarray(regression.intercept_, np.float64),
        }
        return ScorerState(tensors, {"c": self.c, "name": self.name})

    @classmethod
    def from_state(cls, state: ScorerState) -> TfidfLogisticScorer:
        """The fitted scorer of :meth:`state` (the same scores).

        Examples:
            >>> texts = ["hard proof", "hard proof x", "easy sum", "easy sum y"]
            >>> s = TfidfLogisticScorer().fit(texts, np.array([1, 1, 0, 0]))
            >>> bool(np.array_equal(TfidfLogisticScorer.from_state(s.state()).score(texts), s.score(texts)))
            True
        """
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        scorer = cls(c=state.config["c"], name=state.config["name"])
        terms = tensor_to_texts(state.tensors["vocabulary"])
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, vocabulary={t: i for i, t in enumerate(terms)}
        )
        vectorizer.idf_ = state.tensors["idf"]
        regression = LogisticRegression(C=scorer.c)
        regression.coef_ = np.asarray(state.tensors["coef"], np.float64)[None, :]
        regression.intercept_ = np.asarray(state.tensors["intercept"], np.float64)
        regression.classes_ = np.array([0.0, 1.0])
        scorer._model = make_pipeline(vectorizer, regression)
        return scorer


class KNNEmbeddingScorer:
    """Mean target of the ``k`` nearest training prompts by cosine similarity of WordLlama mean embeddings.

    Embeddings: :class:`~tinydancer.model.text_features.TextFeaturizer` with
    ``FeaturizerConfig(kind="wordllama_mean", dim=64)``, normalised to unit length; numpy only. Validation rows,
    when given, join the neighbours.

    Args:
        k: Neighbours averaged (capped at the number of training prompts).
        name: Table label.

    Examples:
        >>> s = KNNEmbeddingScorer(k=2).fit(["algebra proof", "prove lemma", "capital city", "what animal"],
        ...                                 np.array([1.0, 1.0, 0.0, 0.0]))
        >>> s.score(["prove the algebra lemma"]).shape
        (1,)
    """

    def __init__(self, k: int = 50, name: str = "knn_embed") -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k: expected an integer >= 1, got {k!r}")
        self.name = name
        self.k = k
        self._featurizer: TextFeaturizer | None = None
        self._bank: np.ndarray | None = None
        self._y = np.zeros(0)

    def _embed(self, prompts: list[str]) -> np.ndarray:
        if self._featurizer is None:
            self._featurizer = TextFeaturizer(FeaturizerConfig(kind="wordllama_mean", dim=64))
        x = self._featurizer(prompts)[0][:, 0, :].astype(np.float64)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        out: np.ndarray = x / np.maximum(norm, 1e-12)
        return out

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        """Store the unit embeddings [N, 64] of the prompts (plus ``val``) and their targets [N].

        Examples:
            >>> KNNEmbeddingScorer(k=1).fit(["a", "b"], np.array([0.0, 1.0])).k
            1
        """
        p, t, _ = _fit_inputs(prompts, y, val, merge=True)
        self._bank, self._y = self._embed(p), t
        return self

    def score(self, prompts: Sequence[str], batch_size: int = 1024) -> np.ndarray:
        """[N] float64 mean target of each prompt's ``k`` nearest training prompts.

        Raises:
            ScorerNotFittedError: Before :meth:`fit`.

        Examples:
            >>> s = KNNEmbeddingScorer(k=1).fit(["algebra proof", "capital city"], np.array([1.0, 0.0]))
            >>> s.score(["algebra proof"]).tolist()
            [1.0]
        """
        p = check_prompts(prompts)
        _need(self._bank, self)
        assert self._bank is not None
        if not p:
            return np.zeros(0)
        k = min(self.k, len(self._y))
        q = self._embed(p)
        out = np.empty(len(p))
        for i in range(0, len(p), batch_size):
            sim = q[i : i + batch_size] @ self._bank.T
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            out[i : i + batch_size] = self._y[top].mean(axis=1)
        return out

    def state(self) -> ScorerState:
        """The unit embeddings [N, 64] and targets [N] of the neighbours (a servable scorer).

        Raises:
            ScorerNotFittedError: Before :meth:`fit`.
        """
        _need(self._bank, self)
        return ScorerState({"bank": np.asarray(self._bank), "y": self._y}, {"k": self.k, "name": self.name})

    @classmethod
    def from_state(cls, state: ScorerState) -> KNNEmbeddingScorer:
        """The fitted scorer of :meth:`state`."""
        scorer = cls(k=state.config["k"], name=state.config["name"])
        scorer._bank, scorer._y = np.asarray(state.tensors["bank"]), np.asarray(state.tensors["y"])
        return scorer


def prompt_statistics(prompts: Sequence[str]) -> np.ndarray:
    """Six statistics per prompt: log characters, log words, digit share, '?' count, newlines, option lines.

    Option lines look like ``A) ...``, ``(b) ...``, ``C. ...`` or ``D: ...`` at a line start.

    Args:
        prompts: N prompts.

    Returns:
        [N, 6] float64.

    Examples:
        >>> prompt_statistics(["What is 2+2?\\nA) 3\\nB) 4"]).round(2).tolist()
        [[3.14, 2.08, 0.18, 1.0, 2.0, 2.0]]
    """
    p = check_prompts(prompts)
    rows = [
        (
            np.log1p(len(s)),
            np.log1p(len(s.split())),
            sum(ch.isdigit() for ch in s) / max(len(s), 1),
            s.count("?"),
            s.count("\n"),
            len(_OPTION_LINE.findall(s)),
        )
        for s in p
    ]
    return np.asarray(rows, np.float64).reshape(len(p), 6)


class PromptStatsScorer:
    """Logistic regression on :func:`prompt_statistics`, standardised, fitted by full-batch gradient descent.

    Validation rows, when given, join the training rows. The loss is binary cross-entropy on the (soft) targets
    plus ``l2`` times the squared weights.

    Args:
        steps: Gradient-descent steps.
        learning_rate: Step size.
        l2: L2 penalty on the weights (not the bias).
        name: Table label.

    Examples:
        >>> s = PromptStatsScorer().fit(["short?", "a much longer prompt with many words " * 3], np.array([0.0, 1.0]))
        >>> bool(s.score(["a much longer prompt with many words " * 3])[0] > 0.5)
        True
    """

    def __init__(
        self, steps: int = 500, learning_rate: float = 0.5, l2: float = 1e-3, name: str = "prompt_stats"
    ) -> None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise InvalidInputError(f"steps: expected an integer >= 1, got {steps!r}")
        for field, value in (("learning_rate", learning_rate), ("l2", l2)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not np.isfinite(value):
                raise InvalidInputError(f"{field}: expected a finite number >= 0, got {value!r}")
        self.name = name
        self.steps, self.learning_rate, self.l2 = steps, float(learning_rate), float(l2)
        self._stats: NormStats | None = None
        self._w = np.zeros(6)
        self._b = 0.0

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        """Fit the weights [6] and bias on prompts [N] (plus ``val``) and targets [N] in [0, 1].

        Examples:
            >>> PromptStatsScorer(steps=10).fit(["a", "b c"], np.array([0.0, 1.0])).steps
            10
        """
        p, t, _ = _fit_inputs(prompts, y, val, merge=True)
        feats = prompt_statistics(p)
        stats = fit_norm_stats(feats)
        x = (feats - stats.mean) / stats.std
        w, b = np.zeros(x.shape[1]), 0.0
        for _ in range(self.steps):
            err = _sigmoid(x @ w + b) - t
            w -= self.learning_rate * (x.T @ err / len(t) + 2 * self.l2 * w)
            b -= self.learning_rate * float(err.mean())
        self._stats, self._w, self._b = stats, w, b
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """[N] float64 P(weak fails).

        Raises:
            ScorerNotFittedError: Before :meth:`fit`.

        Examples:
            >>> PromptStatsScorer(steps=5).fit(["a", "b c"], np.array([0.0, 1.0])).score(["a"]).shape
            (1,)
        """
        p = check_prompts(prompts)
        _need(self._stats, self)
        assert self._stats is not None
        x = (prompt_statistics(p) - self._stats.mean) / self._stats.std
        return _sigmoid(x @ self._w + self._b).astype(np.float64)

    def state(self) -> ScorerState:
        """The standardisation ``mean``/``std`` [6], weights [6] and bias [1] (a servable scorer).

        Raises:
            ScorerNotFittedError: Before :meth:`fit`.
        """
        _need(self._stats, self)
        assert self._stats is not None
        tensors = {
            "mean": np.asarray(self._stats.mean, np.float64),
            "std": np.asarray(self._stats.std, np.float64),
            "w": self._w,
            "b": np.array([self._b]),
        }
        config = {"steps": self.steps, "learning_rate": self.learning_rate, "l2": self.l2, "name": self.name}
        return ScorerState(tensors, config)

    @classmethod
    def from_state(cls, state: ScorerState) -> PromptStatsScorer:
        """The fitted scorer of :meth:`state`."""
        c, t = state.config, state.tensors
        scorer = cls(steps=c["steps"], learning_rate=c["learning_rate"], l2=c["l2"], name=c["name"])
        scorer._stats = NormStats(np.asarray(t["mean"]), np.asarray(t["std"]))
        scorer._w, scorer._b = np.asarray(t["w"]), float(t["b"][0])
        return scorer


class RandomScorer:
    """Uniform random scores that ignore the prompts (the no-skill baseline; APGR about 0.5).

    ``score`` needs no ``fit``; each call draws from the same seeded stream, so a fresh scorer with the same
    seed repeats its scores.

    Args:
        seed: Seed of the stream.
        name: Table label.

    Examples:
        >>> RandomScorer(0).score(["a", "b"]).tolist() == RandomScorer(0).score(["x", "y"]).tolist()
        True
    """

    def __init__(self, seed: int = 0, name: str = "random") -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidInputError(f"seed: expected an integer >= 0, got {seed!r}")
        self.name = name
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        """Validate the inputs and restart the stream (nothing is learned).

        Examples:
            >>> RandomScorer(1).fit(["a"], np.array([1.0])).seed
            1
        """
        _fit_inputs(prompts, y, val, merge=True)
        self._rng = np.random.default_rng(self.seed)
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """[N] float64 uniform in [0, 1).

        Examples:
            >>> RandomScorer(0).score(["a", "b", "c"]).shape
            (3,)
        """
        return self._rng.random(len(check_prompts(prompts)))

    def state(self) -> ScorerState:
        """The seed (a servable scorer; a loaded one restarts the stream)."""
        return ScorerState({}, {"seed": self.seed, "name": self.name})

    @classmethod
    def from_state(cls, state: ScorerState) -> RandomScorer:
        """A scorer with the stored seed, its stream at the start."""
        return cls(seed=state.config["seed"], name=state.config["name"])


class OracleScorer:
    """The true outcome of each prompt: an upper bound for evaluation only, never a deployable router.

    Built from an outcome frame (``prompt``, ``weak_correct``, ``strong_correct``); ``score`` looks each prompt
    up: ``(1 - weak) * (1 + strong) / 2``, so on 0/1 outcomes 1 where only the strong model is right, 0.5 where
    both fail, 0 where the weak model is right (routing by it is the oracle order of
    :func:`~tinydancer.learning.oracle_curve`). A prompt that occurs several times gets its mean. ``fit``
    learns nothing.

    Args:
        frame: Outcomes of every prompt that will be scored.
        name: Table label.

    Raises:
        DataError: ``frame`` lacks a column.

    Examples:
        >>> f = pd.DataFrame({"prompt": ["a", "b", "c"], "weak_correct": [1.0, 0.0, 0.0],
        ...                   "strong_correct": [1.0, 1.0, 0.0]})
        >>> OracleScorer(f).score(["b", "a", "c"]).tolist()
        [1.0, 0.0, 0.5]
    """

    def __init__(self, frame: pd.DataFrame, name: str = "oracle") -> None:
        missing = {"prompt", "weak_correct", "strong_correct"} - set(getattr(frame, "columns", ()))
        if not isinstance(frame, pd.DataFrame) or missing:
            raise DataError(f"frame: expected a DataFrame with prompt, weak_correct, strong_correct; missing {missing}")
        self.name = name
        weak = labels(frame).astype(np.float64)
        strong = check_targets(frame["strong_correct"].to_numpy(np.float64), len(frame), "strong_correct")
        value = weak * (1.0 + strong) / 2.0
        table = pd.Series(value, index=check_prompts(frame["prompt"].tolist(), "frame prompts"))
        self._lookup: dict[str, float] = {str(k): float(v) for k, v in table.groupby(level=0).mean().items()}

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        """Validate the inputs (the outcomes came with the frame).

        Examples:
            >>> f = pd.DataFrame({"prompt": ["a"], "weak_correct": [0.0], "strong_correct": [1.0]})
            >>> OracleScorer(f).fit(["a"], np.array([1.0])).name
            'oracle'
        """
        _fit_inputs(prompts, y, val, merge=True)
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """[N] float64 true outcome of each prompt.

        Raises:
            InvalidInputError: A prompt is not in the frame.

        Examples:
            >>> f = pd.DataFrame({"prompt": ["a"], "weak_correct": [0.0], "strong_correct": [0.0]})
            >>> OracleScorer(f).score(["a"]).tolist()
            [0.5]
        """
        p = check_prompts(prompts)
        unknown = [s for s in p if s not in self._lookup]
        if unknown:
            raise InvalidInputError(f"prompts: expected prompts of the oracle's frame, got unknown {unknown[0][:60]!r}")
        return np.asarray([self._lookup[s] for s in p], np.float64)


class FastGRNNScorer:
    """The built-in FastGRNN router behind the scorer protocol, with ``python -m tinydancer train``'s defaults.

    Featurises with :class:`~tinydancer.model.text_features.TextFeaturizer`, standardises with statistics of
    the training prompts and trains with :func:`~tinydancer.learning.train_fastgrnn` (early stopping on ``val``;
    without ``val`` a seeded 10% of the training prompts is held out for it). It scores through the serving
    path (:class:`~tinydancer.model.prompt_scoring.PromptScorer`), as a Router would.

    Args:
        featurizer: Default: the recipe's (:mod:`tinydancer.learning.recipe`: mean of the first 256 token
            vectors, 64-d, and 4,096 hashed n-gram buckets).
        model: Keyword arguments of :class:`~tinydancer.model.FastGRNNConfig` besides ``input_dim``
            (default: the recipe's, ``{"hidden_dim": 16}``).
        train: Default: the recipe's (``default_train_config(progress=False)``).
        name: Table label.

    Examples:
        >>> s = FastGRNNScorer()
        >>> s.name, s.model_config.hidden_dim, s.featurizer_config.kind, s.train_config.epochs
        ('fastgrnn', 16, 'wordllama_prefix_mean', 20)
    """

    def __init__(
        self,
        featurizer: FeaturizerConfig | None = None,
        model: dict[str, Any] | None = None,
        train: TrainConfig | None = None,
        name: str = "fastgrnn",
    ) -> None:
        self.name = name
        self.featurizer_config = featurizer or DEFAULT_FEATURIZER
        self.model_config = FastGRNNConfig(
            input_dim=self.featurizer_config.dim, **(DEFAULT_MODEL if model is None else model)
        )
        self.train_config = train or default_train_config(progress=False)
        self._featurizer: TextFeaturizer | None = None
        self._scorer: PromptScorer | None = None

    def _data(self, prompts: list[str], y: np.ndarray, stats: NormStats | None = None) -> tuple[RoutingData, NormStats]:
        if self._featurizer is None:
            self._featurizer = TextFeaturizer(self.featurizer_config)
        f: TextFeatures = self._featurizer.featurize(prompts)
        stats = stats or fit_norm_stats(f.x, f.mask)
        data = RoutingData(
            apply_norm(f.x, stats, f.mask), f.mask, y.astype(np.float32), None, f.ngram_ids, f.ngram_weights
        )
        return data, stats

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        """Train on prompts [N] and targets [N] in [0, 1], early-stopping on ``val``.

        Raises:
            InvalidInputError: Malformed prompts or targets.
            DataError: Too few prompts to hold out validation rows, or a single-class training set.

        Examples:
            >>> s = FastGRNNScorer(FeaturizerConfig(kind="wordllama_mean"), train=TrainConfig(epochs=1, progress=False))
            >>> s.fit(["a b", "c d"] * 5, np.array([0.0, 1.0] * 5), val=(["a b", "c d"], np.array([0.0, 1.0]))).name
            'fastgrnn'
        """
        p, t, v = _fit_inputs(prompts, y, val, merge=False)
        if v is None:
            if len(p) < 2:
                raise DataError(f"prompts: expected >= 2 prompts to hold out validation rows, got {len(p)}")
            order = np.random.default_rng(_SPLIT_SEED).permutation(len(p))
            n_val = max(1, len(p) // 10)
            v = ([p[i] for i in order[:n_val]], t[order[:n_val]])
            p, t = [p[i] for i in order[n_val:]], t[order[n_val:]]
        train_rows, stats = self._data(p, t)
        val_rows, _ = self._data(v[0], v[1], stats)
        feat = self.featurizer_config
        result = train_fastgrnn(
            self.model_config, train_rows, val_rows, self.train_config, ngram_buckets=feat.ngram_buckets
        )
        self._scorer = self._serve(result, stats)
        return self

    def _serve(self, result: TrainResult, stats: NormStats) -> PromptScorer:
        """The serving scorer of ``result`` (weights trained on rows standardised by ``stats``), as :meth:`fit`
        keeps it."""
        artifact = PromptRouterArtifact(
            result.params, self.model_config, self.featurizer_config, stats, ngram_weights=result.ngram_weights
        )
        return PromptScorer(artifact, uncertainty="original")

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """[N] float64 scores (the serving path's uncalibrated ``p_raw``).

        Raises:
            ScorerNotFittedError: Before :meth:`fit`.

        Examples:
            >>> try:
            ...     FastGRNNScorer().score(["a"])
            ... except ScorerNotFittedError as exc:
            ...     print(exc)
            FastGRNNScorer.score: expected a fitted scorer, got one before fit()
        """
        p = check_prompts(prompts)
        _need(self._scorer, self)
        assert self._scorer is not None
        return self._scorer.score(p, threshold=math.inf).p_raw.astype(np.float64)


def evaluate_scorers(
    frame: pd.DataFrame,
    scorers: Sequence[Scorer],
    split: str = "random",
    seed: int = 0,
    *,
    target: str = DEFAULT_TARGET,
    rows: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Fit, calibrate and evaluate every scorer on one split of ``frame``; one row per scorer.

    Each scorer fits on the ``train`` rows with ``val=`` the validation rows (targets
    :func:`~tinydancer.learning.labels` named ``target``: by default the recipe's ``"strong_gain"``,
    ``(1 + strong - weak) / 2``; ``"weak_fails"``, ``1 - weak``), then scores the calibration and test rows in one
    call. On the test rows: ``apgr``, ``cpt50``, ``cpt80`` (RouteLLM's 10-quantile curve,
    :func:`~tinydancer.learning.routing_curve`; strong iff ``score >= threshold``), ``auroc`` of the raw scores
    against "the weak model fails" and ``auroc_gain`` against "the strong model scores higher than the weak";
    ``ece`` after Platt scaling fitted on the calibration rows, ``ece_raw`` before it (on the target's
    binary label, :func:`~tinydancer.learning.strong_needed`). ``fit_seconds`` times ``fit``; ``prompts_per_s`` is the
    throughput of that ``score`` call.

    Args:
        frame: Outcomes (``prompt``, ``weak_correct``, ``strong_correct``; ``subject`` for that split).
        scorers: Objects satisfying :class:`Scorer`, with distinct names.
        split: ``"random"`` or ``"subject"`` (:func:`~tinydancer.learning.split_rows`).
        seed: Seed of the split.
        target: The training target (:data:`~tinydancer.learning.labels.TRAINING_TARGETS`).
        rows: ``{"train", "val", "cal", "test"}`` -> row indices, instead of :func:`split_rows`' (e.g. a
            small-data split inside one subject group).

    Returns:
        A DataFrame with columns :data:`SCORER_COLUMNS`, in the order of ``scorers``.

    Raises:
        InvalidInputError: An object is not a scorer, names repeat, or a scorer returns malformed scores.
        DataError: ``frame`` lacks a column, or a split is too small (single-class labels).

    Examples:
        >>> from tinydancer.datasets import load
        >>> f = load("synthetic").iloc[:400]
        >>> table = evaluate_scorers(f, [RandomScorer(0), OracleScorer(f)])
        >>> table["scorer"].tolist(), bool(table["apgr"].iloc[1] > table["apgr"].iloc[0])
        (['random', 'oracle'], True)
    """
    runs = fit_and_score(frame, scorers, split, seed, target=target, rows=rows)
    return pd.DataFrame.from_records([scorer_metrics(frame, run) for run in runs], columns=list(SCORER_COLUMNS))


class ScorerRun(NamedTuple):
    """One scorer fitted on a split's training rows and its scores of the calibration and test rows.

    Attributes:
        name: The scorer's name.
        target: The training target it was fitted on.
        rows: ``{"train", "val", "cal", "test"}`` -> row indices of the frame.
        cal_scores: [len(rows["cal"])] float64 scores.
        test_scores: [len(rows["test"])] float64 scores.
        fit_seconds: Wall time of ``fit``.
        prompts_per_s: Throughput of the one ``score`` call (calibration and test rows).
    """

    name: str
    target: str
    rows: Mapping[str, np.ndarray]
    cal_scores: np.ndarray
    test_scores: np.ndarray
    fit_seconds: float
    prompts_per_s: float


def fit_and_score(
    frame: pd.DataFrame,
    scorers: Sequence[Scorer],
    split: str = "random",
    seed: int = 0,
    *,
    target: str = DEFAULT_TARGET,
    rows: Mapping[str, np.ndarray] | None = None,
) -> list[ScorerRun]:
    """Fit every scorer on the train rows (``val=`` the validation rows) and score the calibration and test rows.

    The first half of :func:`evaluate_scorers` (same arguments and errors); :func:`scorer_metrics` is the second.
    Keeping the scores lets a caller bootstrap over test rows or pool seeds.

    Examples:
        >>> from tinydancer.datasets import load
        >>> f = load("synthetic").iloc[:400]
        >>> run = fit_and_score(f, [RandomScorer(0)])[0]
        >>> run.name, run.test_scores.shape
        ('random', (160,))
    """
    _checked_frame(frame)
    if isinstance(scorers, (str, bytes)) or not isinstance(scorers, Sequence) or not scorers:
        raise InvalidInputError(f"scorers: expected a non-empty sequence of Scorer, got {scorers!r}")
    for s in scorers:
        if not isinstance(s, Scorer) or not isinstance(getattr(s, "name", None), str):
            raise InvalidInputError(f"scorers: expected objects with name, fit and score, got {type(s).__name__}")
    names = [s.name for s in scorers]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"scorers: expected distinct names, got {names}")
    if rows is None:
        rows = split_rows(frame, split, seed)
    elif not isinstance(rows, Mapping) or set(rows) != {"train", "val", "cal", "test"}:
        raise InvalidInputError(f"rows: expected a mapping with keys train, val, cal, test, got {rows!r:.100}")
    rows = {k: np.asarray(rows[k], np.int64) for k in ("train", "val", "cal", "test")}
    prompts = check_prompts(frame["prompt"].astype(str).tolist(), "frame prompts")
    y_target = labels(frame, target).astype(np.float64)
    train, val = rows["train"], rows["val"]
    scored = np.concatenate([rows["cal"], rows["test"]])
    runs = []
    for s in scorers:
        started = time.perf_counter()
        s.fit([prompts[i] for i in train], y_target[train], val=([prompts[i] for i in val], y_target[val]))
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        raw = s.score([prompts[i] for i in scored])
        score_seconds = time.perf_counter() - started
        out = check_raw_scores(s.name, raw, scored.size)
        n_cal = rows["cal"].size
        runs.append(
            ScorerRun(
                s.name, target, rows, out[:n_cal], out[n_cal:], fit_seconds, scored.size / max(score_seconds, 1e-9)
            )
        )
    return runs


class TrainedScorerRouter(NamedTuple):
    """What :func:`train_scorer_router` fitted and wrote.

    Attributes:
        path: The scorer-router artifact written (:mod:`tinydancer.model.scorer_router`).
        scorer: The fitted scorer.
        split: The split kind; seed: its seed.
        seed: see ``split``.
        rows: ``{"train", "val", "cal", "test"}`` -> row indices of the frame.
        fit_seconds: Wall time of ``fit``.
        size_bytes: Size of the file written.
    """

    path: Path
    scorer: ServableScorer
    split: str
    seed: int
    rows: dict[str, np.ndarray]
    fit_seconds: float
    size_bytes: int

    @property
    def row_counts(self) -> dict[str, int]:
        """Rows per split, e.g. ``{"train": 800, "val": 200, "cal": 200, "test": 800}``."""
        return {k: len(v) for k, v in self.rows.items()}


def train_scorer_router(
    frame: pd.DataFrame,
    out: str | Path,
    scorer: ServableScorer,
    *,
    split: str = "random",
    seed: int = 0,
    target: str = DEFAULT_TARGET,
    data_tag: str = "",
    weak_model: str | None = None,
    strong_model: str | None = None,
    prices: tuple[float, float] | None = None,
) -> TrainedScorerRouter:
    """Fit any servable scorer on a split's training rows and save it as a router a ``Router`` serves.

    The counterpart of :func:`~tinydancer.learning.train_router` for a scorer other than the built-in FastGRNN:
    the same split (stored, so :func:`~tinydancer.learning.calibrate_router`, :func:`~tinydancer.learning.tune_router`
    and :func:`~tinydancer.learning.evaluate_router` use its calibration and test rows), the same targets
    (``val=`` the validation rows, as in :func:`fit_and_score`), the same model names, prices and provenance.
    The artifact has no calibrator and no operating point yet.

    Args:
        frame: Outcomes (``prompt``, ``weak_correct``, ``strong_correct``; ``subject`` for that split).
        out: Artifact path (``.safetensors``).
        scorer: A :class:`~tinydancer.model.scorer_router.ServableScorer` that also fits (:class:`Scorer`): the
            built-in :class:`TfidfLogisticScorer`, :class:`KNNEmbeddingScorer`, :class:`PromptStatsScorer` and
            :class:`RandomScorer`, or your own.
        split: ``"random"`` or ``"subject"``.
        seed: Seed of the split.
        target: The training target (:data:`~tinydancer.learning.labels.TRAINING_TARGETS`).
        data_tag: Where the data came from, stored with the split.
        weak_model: The cheap model's name (default: ``frame.attrs["weak_model"]``, else ``"weak"``).
        strong_model: The expensive model's name, likewise.
        prices: ``(weak, strong)`` dollars per million tokens, or None.

    Returns:
        A :class:`TrainedScorerRouter`.

    Raises:
        InvalidInputError: ``scorer`` cannot fit or cannot be saved (no ``state``/``from_state``: FastGRNN routers
            are trained with ``train_router``).
        DataError: ``frame`` lacks a column, or the split is too small.

    Examples:
        >>> import tempfile
        >>> from tinydancer.datasets import load
        >>> f = load("synthetic").iloc[:400]
        >>> trained = train_scorer_router(f, Path(tempfile.mkdtemp()) / "s.safetensors", PromptStatsScorer())
        >>> trained.row_counts["train"], trained.path.suffix
        (160, '.safetensors')
    """
    if not isinstance(scorer, Scorer) or not isinstance(scorer, ServableScorer):
        raise InvalidInputError(
            f"scorer: expected a Scorer with state() and from_state() (ServableScorer), got {type(scorer).__name__}"
            "; FastGRNN routers are trained with train_router"
        )
    run_rows = split_rows(_checked_frame(frame), split, seed)
    prompts = check_prompts(frame["prompt"].astype(str).tolist(), "frame prompts")
    y = labels(frame, target).astype(np.float64)
    train, val = run_rows["train"], run_rows["val"]
    started = time.perf_counter()
    scorer.fit([prompts[i] for i in train], y[train], val=([prompts[i] for i in val], y[val]))
    fit_seconds = time.perf_counter() - started
    policy = trained_policy(frame, split, seed, data_tag, weak_model, strong_model, prices, target)
    artifact = ScorerRouterArtifact(scorer, **policy)
    try:
        path = save_scorer_router(out, artifact)
    except ConfigError as exc:
        raise InvalidInputError(str(exc)) from exc
    return TrainedScorerRouter(path, scorer, split, seed, run_rows, fit_seconds, path.stat().st_size)


def _checked_frame(frame: object) -> pd.DataFrame:
    missing = {"prompt", "weak_correct", "strong_correct"} - set(getattr(frame, "columns", ()))
    if not isinstance(frame, pd.DataFrame) or missing:
        raise DataError(f"frame: expected a DataFrame with prompt, weak_correct, strong_correct; missing {missing}")
    return frame


def scorer_metrics(frame: pd.DataFrame, run: ScorerRun) -> dict[str, Any]:
    """One row of :func:`evaluate_scorers`' table (:data:`SCORER_COLUMNS`) from a :class:`ScorerRun` on ``frame``.

    Examples:
        >>> from tinydancer.datasets import load
        >>> f = load("synthetic").iloc[:400]
        >>> sorted(scorer_metrics(f, fit_and_score(f, [RandomScorer(0)])[0])) == sorted(SCORER_COLUMNS)
        True
    """
    cal, test = run.rows["cal"], run.rows["test"]
    y_fail = failure_labels(frame)
    y_needed = strong_needed(frame, run.target)
    weak = frame["weak_correct"].to_numpy(np.float64)
    strong = frame["strong_correct"].to_numpy(np.float64)
    p_test = run.test_scores
    curve = routing_curve(p_test, weak[test], strong[test])
    calibrator = fit_calibrator("platt", run.cal_scores, y_needed[cal])
    return {
        "scorer": run.name,
        "apgr": apgr(curve),
        "cpt50": cpt(curve, 0.5),
        "cpt80": cpt(curve, 0.8),
        "auroc": auroc(p_test, y_fail[test]),
        "auroc_gain": auroc(p_test, (strong[test] > weak[test]).astype(np.float64)),
        "ece": ece(apply_calibrator(calibrator, p_test), y_needed[test]),
        "ece_raw": ece(p_test, y_needed[test]),
        "fit_seconds": run.fit_seconds,
        "prompts_per_s": run.prompts_per_s,
    }
