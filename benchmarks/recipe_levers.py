"""The default recipe's levers, one at a time, on validation-only rows: how ``tinydancer.learning.recipe`` was chosen.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.recipe_levers [--seeds 3] [--cuts CUT ...] [--only LEVER ...] \
        [--out benchmarks/results/recipe_levers.json]

No test row of any evaluation is looked at: every run here lives inside the **training and validation rows of
the random split, seed 0** (``split_rows(frame, "random", 0)``: 5,614 and 1,404 prompts), cut four ways per seed:

- ``in-domain``: 3,400 train, 600 validation, 400 calibration, the other 1,214 scored;
- ``held-out subjects``: a third of the subjects scored, the rest train (validation 400, calibration 200);
- ``small``: inside one MMLU subject group, 480 train and 120 validation rows, 100 calibration, the rest of
  that group's pool rows scored (four groups per seed);
- ``in-domain, full size``: 4,614 of the training rows train, 600 validate, 400 calibrate, and the split's own
  1,404 validation rows are scored: close to the size evaluate_scorers trains at (5,614 + 1,404 refit), where
  the three cuts above, at 480-3,700 training rows, had ranked the recipe ahead of TF-IDF + LR while the test
  rows did not.

One more cut runs only when ``--cuts`` names it: ``in-domain, full size, 5 folds``, the training and validation
rows of the split (7,018) in five folds, each fold scored (1,403-1,404 rows) by a router trained on 4,614 of the
other rows (600 validate, 400 calibrate); ``--seeds`` does not apply (one permutation, seed 0). The full-size cut
above scores the same 1,404 rows for every seed, so its seeds share their noise; here every row is scored once.

``--only`` runs some levers (names as in the table), ``--cuts`` some cuts.

Each row changes one thing from the recipe (``recipe``) and is fitted with :func:`tinydancer.learning.fit_and_score`
on the recipe's target unless it says otherwise; ``tfidf_lr``, ``prompt_stats`` and ``knn_embed`` are the baselines
on the same target (``tfidf_lr`` the strongest on the mean of the cuts).
Figures are means over runs of APGR and of AUROC against "the strong model scores higher" (``auroc_gain``).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import time
import zlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Self

import jax
import numpy as np
import pandas as pd

from benchmarks.report import write_results
from benchmarks.training import SCRATCH_RESULTS
from tinydancer import configure_jax
from tinydancer.datasets import MMLU_GROUPS, load
from tinydancer.learning import (
    DEFAULT_FEATURIZER,
    FastGRNNScorer,
    KNNEmbeddingScorer,
    PromptStatsScorer,
    RoutingData,
    TfidfLogisticScorer,
    default_train_config,
    fit_and_score,
    prompt_statistics,
    scorer_metrics,
    split_rows,
    train_fastgrnn,
    train_fastgrnn_many,
)
from tinydancer.model import (
    PromptScorer,
    TextFeaturizer,
    apply_norm,
    fastgrnn_logits,
    fit_norm_stats,
    hashed_ngrams,
)


def train_and_held_rows(
    make_rows: Callable[..., tuple[RoutingData, Any]], prompts: Sequence[str], y: np.ndarray, val: Any
) -> tuple[RoutingData, RoutingData, Any]:
    """The training rows, the validation rows (``val``: prompts and targets) and the statistics ``make_rows``
    fitted on the training rows, which it applies to the validation rows."""
    assert val is not None
    train, stats = make_rows(list(prompts), np.asarray(y))
    held, _ = make_rows(list(val[0]), np.asarray(val[1]), stats)
    return train, held, stats


class DistilledScorer(FastGRNNScorer):
    """The recipe distilled from a teacher scorer, TF-IDF + LR unless ``teacher`` makes another (Kusupati et al.'s
    recipe; the teacher's probabilities on the training rows cross-fitted on two folds)."""

    def __init__(self, distill_weight: float, name: str, teacher: Callable[[], Any] = TfidfLogisticScorer) -> None:
        train = dataclasses.replace(default_train_config(progress=False), distill_weight=distill_weight)
        super().__init__(train=train, name=name)
        self.teacher = teacher

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        assert val is not None
        p, t = list(prompts), np.asarray(y, np.float64)
        teacher = np.zeros(len(p))
        folds = np.array_split(np.random.default_rng(0).permutation(len(p)), 2)
        for k in (0, 1):
            fitted = self.teacher().fit([p[i] for i in folds[1 - k]], t[folds[1 - k]])
            teacher[folds[k]] = fitted.score([p[i] for i in folds[k]])
        feat = self.featurizer_config
        featurizer = TextFeaturizer(feat)
        train_f, val_f = featurizer.featurize(p), featurizer.featurize(list(val[0]))
        stats = fit_norm_stats(train_f.x, train_f.mask)

        def data(f: Any, targets: np.ndarray, soft: np.ndarray | None) -> RoutingData:
            x = apply_norm(f.x, stats, f.mask)
            return RoutingData(x, f.mask, targets.astype(np.float32), soft, f.ngram_ids, f.ngram_weights)

        teacher_val = self.teacher().fit(p, t).score(list(val[0]))  # the refit trains on the val rows too

        def soft(probs: np.ndarray) -> np.ndarray:
            return np.clip(probs, 1e-4, 1 - 1e-4).astype(np.float32)

        result = train_fastgrnn(
            self.model_config, data(train_f, t, soft(teacher)), data(val_f, np.asarray(val[1]), soft(teacher_val)),
            self.train_config, ngram_buckets=feat.ngram_buckets,
        )  # fmt: skip
        self._scorer = self._serve(result, stats)
        return self


class ScoreMean:
    """The mean of its members' scores, each member fitted alone on the same rows (a late fusion; its bytes are
    the members' together)."""

    def __init__(self, name: str, members: Sequence[Any]) -> None:
        self.name = name
        self._members = list(members)

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        for member in self._members:
            member.fit(prompts, y, val=val)
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        return np.mean([member.score(prompts) for member in self._members], axis=0)


class SeedEnsembleScorer(ScoreMean):
    """The mean score of ``members`` recipe scorers trained with seeds 0, 1, ... (a deep ensemble, as
    ``train_router(ensemble=K)`` trains and serves one), each fitted alone."""

    def __init__(self, members: int, name: str) -> None:
        recipes = [
            FastGRNNScorer(train=default_train_config(seed=k, progress=False), name=f"{name}/{k}")
            for k in range(members)
        ]
        super().__init__(name, recipes)


class TwoHeadsScorer:
    """The gain target's estimate split in two: one recipe scorer trained for "the weak model fails" (``1 - w``),
    one for "the strong model fails" (``1 - s``), scored ``(1 + P(weak fails) - P(strong fails)) / 2``, the
    scale of the gain target ``(1 + E[s - w]) / 2``. Each part learns from a 0/1 target that tells "both right"
    from "both wrong", which the gain target scores alike (0.5). Twice the recipe's bytes.

    The scorer protocol hands ``fit`` the gain target only, so the two outcomes are read from ``frame`` by prompt
    text (the mean over a repeated prompt's rows)."""

    def __init__(self, frame: pd.DataFrame, name: str) -> None:
        self.name = name
        by_prompt = frame.groupby("prompt")[["weak_correct", "strong_correct"]].mean()
        self._weak, self._strong = by_prompt["weak_correct"].to_dict(), by_prompt["strong_correct"].to_dict()
        self._weak_fails = FastGRNNScorer(name=f"{name}/weak fails")
        self._strong_fails = FastGRNNScorer(name=f"{name}/strong fails")

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        assert val is not None
        p, held = list(prompts), list(val[0])
        for scorer, outcome in ((self._weak_fails, self._weak), (self._strong_fails, self._strong)):
            fails = [np.array([1.0 - outcome[q] for q in rows]) for rows in (p, held)]
            scorer.fit(p, fails[0], val=(held, fails[1]))
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        return (1.0 + self._weak_fails.score(prompts) - self._strong_fails.score(prompts)) / 2.0


def with_val_rows(
    prompts: Sequence[str], y: np.ndarray, val: tuple[Sequence[str], np.ndarray] | None
) -> tuple[list[str], np.ndarray]:
    """The training rows with the validation rows (if any) joined after them: prompts [N] and targets [N]."""
    p = list(prompts) + (list(val[0]) if val else [])
    return p, np.r_[np.asarray(y, np.float64), np.asarray(val[1] if val else [], np.float64)]


class SoftLogisticScorer:
    """Logistic regression (scikit-learn, ``C`` = 1) on the rows ``vectorizer()`` makes of the prompts, fitted as
    ``TfidfLogisticScorer`` fits its TF-IDF rows: soft targets as row weights (each prompt once as a failure with
    weight ``y``, once as a success with ``1 - y``), validation rows joined to the training rows."""

    def __init__(self, name: str, vectorizer: Callable[[], Any]) -> None:
        self.name, self.vectorizer = name, vectorizer
        self._model: Any = None

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        p, t = with_val_rows(prompts, y, val)
        pos, neg = t > 0, t < 1
        texts = [p[i] for i in np.flatnonzero(pos)] + [p[i] for i in np.flatnonzero(neg)]
        target = np.r_[np.ones(int(pos.sum())), np.zeros(int(neg.sum()))]
        self._model = make_pipeline(self.vectorizer(), LogisticRegression(max_iter=3000))
        self._model.fit(texts, target, logisticregression__sample_weight=np.r_[t[pos], 1 - t[neg]])
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        out: np.ndarray = self._model.predict_proba(list(prompts))[:, 1]
        return out


class SubjectMeanScorer:
    """Not a prompt router: the mean target of the prompt's MMLU subject over the rows it was fitted on (the mean
    of every row for a subject it has not seen), the subject read from ``frame`` by prompt text (a prompt listed
    under two subjects: the last), or, with ``infer=True``, the expected subject mean under a TF-IDF (1-2 grams)
    + logistic regression subject classifier of the prompt text. It measures how much of a cut's routing signal
    is which subject a prompt comes from."""

    def __init__(self, frame: pd.DataFrame, name: str, infer: bool = False) -> None:
        self.name, self.infer = name, infer
        self._subject = dict(zip(frame["prompt"], frame["subject"], strict=True))
        self._means: dict[str, float] = {}
        self._overall = 0.5
        self._classifier: Any = None

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        p, t = with_val_rows(prompts, y, val)
        subjects = [self._subject[q] for q in p]
        self._means, self._overall = pd.Series(t).groupby(subjects).mean().to_dict(), float(t.mean())
        if self.infer:
            vectorizer = tfidf_rows("word")()
            self._classifier = make_pipeline(vectorizer, LogisticRegression(max_iter=1000)).fit(p, subjects)
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        if self.infer:
            means = np.array([self._means[k] for k in self._classifier.classes_])
            out: np.ndarray = self._classifier.predict_proba(list(prompts)) @ means
            return out
        return np.array([self._means.get(self._subject[q], self._overall) for q in prompts])


def baselines_mean(*names: str) -> Callable[..., ScoreMean]:
    """A teacher factory (its one optional argument: the scorer's name): the mean score of these baselines
    (``tfidf_lr``, ``char_tfidf``, ``prompt_stats``, ``knn_embed``), each fitted alone on the same rows."""
    makers: dict[str, Callable[[], Any]] = {
        "tfidf_lr": TfidfLogisticScorer,
        "char_tfidf": lambda: SoftLogisticScorer("char_tfidf", tfidf_rows("char")),
        "prompt_stats": PromptStatsScorer,
        "knn_embed": KNNEmbeddingScorer,
    }
    joined = "+".join(names)
    return lambda name=joined: ScoreMean(name, [makers[member]() for member in names])


def hashed_bag_rows() -> Any:
    """A transformer of prompts into the recipe's hashed n-gram bag as sparse rows (4,096 buckets, the same ids and
    ``1/sqrt(n)`` weights): the hashed bag alone, without the FastGRNN and without early stopping."""
    from scipy import sparse
    from sklearn.preprocessing import FunctionTransformer

    featurizer = TextFeaturizer(DEFAULT_FEATURIZER)

    def rows(prompts: list[str]) -> Any:
        f = featurizer.featurize(list(prompts))
        ids, weights = np.asarray(f.ngram_ids), np.asarray(f.ngram_weights)
        row = np.repeat(np.arange(len(ids)), ids.shape[1])
        shape = (len(ids), DEFAULT_FEATURIZER.ngram_buckets)
        return sparse.csr_matrix((weights.ravel(), (row, ids.ravel())), shape=shape)  # repeats are summed

    return FunctionTransformer(rows)


def tfidf_rows(analyzer: str) -> Callable[[], Any]:
    """TF-IDF rows of words (``"word"``: 1-2 grams, as ``tfidf_lr``), of characters inside word boundaries
    (``"char"``: 2-5 grams, the 200,000 most frequent) or of both (``"word+char"``), each ``min_df=2`` with
    sublinear tf."""

    def make() -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_union

        word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=200_000
        )
        if analyzer == "word":
            return word
        return char if analyzer == "char" else make_union(word, char)

    return make


class ScreenScorer(FastGRNNScorer):
    """A recipe variant whose rows :meth:`_rows` builds differently, trained by ``train_fastgrnn`` and scored by the
    same FastGRNN and bag arithmetic outside the serving kernel (a screen, not servable)."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self._fitted: tuple[Any, np.ndarray | None, Any] | None = None
        self.bag_buckets = self.featurizer_config.ngram_buckets  # the ids :meth:`_rows` makes lie in [0, this)

    def _rows(self, prompts: list[str], y: np.ndarray, stats: Any = None) -> tuple[RoutingData, Any]:
        raise NotImplementedError

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        train, held, stats = train_and_held_rows(self._rows, prompts, y, val)
        result = train_fastgrnn(self.model_config, train, held, self.train_config, ngram_buckets=self.bag_buckets)
        self._fitted = (result.params, result.ngram_weights, stats)
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        assert self._fitted is not None
        params, bag, stats = self._fitted
        data, _ = self._rows(list(prompts), np.zeros(len(prompts)), stats)
        logits = np.asarray(fastgrnn_logits(params, self.model_config, data.x, data.mask), np.float64)
        if bag is not None:
            logits += np.sum(bag[data.ngram_ids] * data.ngram_weights, axis=1)
        return 1.0 / (1.0 + np.exp(-logits))

    def _text_featurizer(self) -> TextFeaturizer:
        if self._featurizer is None:
            self._featurizer = TextFeaturizer(self.featurizer_config)
        return self._featurizer

    def _features(self, prompts: list[str]) -> Any:
        return self._text_featurizer().featurize(prompts)


class ExtraInputScorer(ScreenScorer):
    """The recipe with prompt statistics appended to the FastGRNN's input: ``"length"``, log(1 + tokens read,
    at most 256) (what the serving kernel already knows), or ``"prompt_stats"``, the six numbers of
    :func:`~tinydancer.learning.prompt_statistics`. The recipe's inputs (a mean of token vectors and a bag
    weighted ``1/sqrt(n)``) carry no length by construction; the prompt-statistics baseline is mostly length."""

    def __init__(self, extra: str, name: str) -> None:
        super().__init__(name=name)
        self.extra = extra
        width = 1 if extra == "length" else 6
        self.model_config = dataclasses.replace(self.model_config, input_dim=self.model_config.input_dim + width)

    def _rows(self, prompts: list[str], y: np.ndarray, stats: Any = None) -> tuple[RoutingData, Any]:
        f = self._features(prompts)
        if self.extra == "length":
            _, mask = self._text_featurizer().token_ids(prompts)
            more = np.log1p(mask.sum(axis=1, keepdims=True)).astype(np.float32)
        else:
            more = prompt_statistics(prompts).astype(np.float32)
        x = np.concatenate([f.x, more[:, None, :]], axis=-1)
        stats = stats or fit_norm_stats(x, f.mask)
        rows = RoutingData(
            apply_norm(x, stats, f.mask), f.mask, y.astype(np.float32), None, f.ngram_ids, f.ngram_weights
        )
        return rows, stats


class RehashedBagScorer(ScreenScorer):
    """The recipe exactly, but with other n-grams sharing its bag's buckets: every token id ``t`` goes through
    MurmurHash3's 32-bit finaliser with ``salt`` mixed in (``fmix32(t xor (salt * 0x9E3779B9))``) before
    :func:`hashed_ngrams`, whose buckets (with a power-of-two count such as the recipe's 4,096) are the low bits of
    products and so depend on the low bits of the ids only: without the mix, ids equal modulo the bucket count
    always share a bucket. The bag reads the same
    n-grams; only the collisions change, so the spread over salts is the part of a lever's figure that is hash
    luck. With several ``salts`` (``None``: the recipe's own ids) every n-gram lands in one bucket per salt of
    the same bag, each weighted ``1/sqrt(len(salts))`` of its weight (feature hashing with several hashes, which
    averages collisions out)."""

    def __init__(self, name: str, salts: tuple[int | None, ...]) -> None:
        super().__init__(name=name)
        self.salts = salts

    def _rows(self, prompts: list[str], y: np.ndarray, stats: Any = None) -> tuple[RoutingData, Any]:
        f = self._features(prompts)
        ids, mask = self._text_featurizer().token_ids(prompts)
        parts = [hashed_ngrams(mixed_ids(ids, salt), mask.sum(axis=1), self.bag_buckets) for salt in self.salts]
        buckets = np.concatenate([np.asarray(b) for b, _ in parts], axis=1)
        weights = np.concatenate([np.asarray(w) for _, w in parts], axis=1) / np.sqrt(len(parts))
        stats = stats or fit_norm_stats(f.x, f.mask)
        rows = RoutingData(apply_norm(f.x, stats, f.mask), f.mask, y.astype(np.float32), None, buckets, weights)
        return rows, stats


def mixed_ids(ids: np.ndarray, salt: int | None) -> np.ndarray:
    """Token ids [N, T] through MurmurHash3's 32-bit finaliser with ``salt`` mixed in, as 31-bit ids
    (:class:`RehashedBagScorer`); ``salt`` None returns ``ids``."""
    if salt is None:
        return ids
    mixed = ids.astype(np.uint64) ^ np.uint64((salt * 0x9E3779B9) % 2**32)
    for shift, multiplier in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        mixed = ((mixed ^ (mixed >> np.uint64(shift))) * np.uint64(multiplier)) % np.uint64(2**32)
    return (mixed ^ (mixed >> np.uint64(16))) & np.uint64(0x7FFFFFFF)


class IdfBagScorer(ScreenScorer):
    """The recipe with a TF-IDF-like bag: each n-gram weighs its bucket's inverse document frequency on the
    training rows, ``log((1 + N) / (1 + df)) + 1`` (scikit-learn's smoothed idf), instead of 1, and each prompt's
    weights are L2-normalised (instead of ``1/sqrt(n)``): the weighting TF-IDF + LR reads its n-grams with."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self._idf: np.ndarray | None = None

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        self._idf = None  # learned from the training rows, the first rows built
        return super().fit(prompts, y, val=val)

    def _rows(self, prompts: list[str], y: np.ndarray, stats: Any = None) -> tuple[RoutingData, Any]:
        f = self._features(prompts)
        ids, real = np.asarray(f.ngram_ids), np.asarray(f.ngram_weights) > 0
        if self._idf is None:
            df = np.zeros(self.featurizer_config.ngram_buckets)
            for row_ids, row_real in zip(ids, real, strict=True):
                df[np.unique(row_ids[row_real])] += 1
            self._idf = (np.log((1 + len(ids)) / (1 + df)) + 1).astype(np.float32)
        weights = np.where(real, self._idf[ids], 0.0)
        weights /= np.maximum(np.sqrt((weights**2).sum(axis=1, keepdims=True)), 1e-12)
        stats = stats or fit_norm_stats(f.x, f.mask)
        rows = RoutingData(
            apply_norm(f.x, stats, f.mask), f.mask, y.astype(np.float32), None, f.ngram_ids, weights.astype(np.float32)
        )
        return rows, stats


class SequencePlusMeanScorer(ScreenScorer):
    """The FastGRNN over the first 256 token vectors and their mean as one more step (the issue's "token sequence
    plus pooled embedding"), with the recipe's bag: the mean before the first token, or with ``mean_last`` after
    the last (padding steps leave the state as it is, so the last step reads the mean with the tokens' state). The
    mean step and the token steps are standardised each with their own statistics of the training rows. The same
    bytes as the recipe."""

    def __init__(self, name: str, mean_last: bool) -> None:
        super().__init__(name=name)
        self.featurizer_config = dataclasses.replace(DEFAULT_FEATURIZER, kind="wordllama_tokens")
        self.mean_last = mean_last

    def _rows(self, prompts: list[str], y: np.ndarray, stats: Any = None) -> tuple[RoutingData, Any]:
        f = self._features(prompts)
        real = np.asarray(f.mask)[..., None]
        mean = (np.asarray(f.x) * real).sum(axis=1, keepdims=True) / np.maximum(real.sum(axis=1, keepdims=True), 1)
        first = np.ones((len(prompts), 1), bool)
        stats = stats or (fit_norm_stats(mean, first), fit_norm_stats(f.x, f.mask))
        mean_step, tokens = (apply_norm(mean, stats[0], first), first), (apply_norm(f.x, stats[1], f.mask), f.mask)
        order = [tokens, mean_step] if self.mean_last else [mean_step, tokens]
        x = np.concatenate([inputs for inputs, _ in order], axis=1)
        mask = np.concatenate([np.asarray(real) for _, real in order], axis=1)
        return RoutingData(x, mask, y.astype(np.float32), None, f.ngram_ids, f.ngram_weights), stats


class PooledTokensScorer(ScreenScorer):
    """The recipe with other poolings of the first 256 token vectors side by side as its one step (``"mean"``,
    ``"max"``, ``"min"``, each over the real tokens; 64 inputs each), the same bag."""

    def __init__(self, name: str, pools: Sequence[str]) -> None:
        super().__init__(name=name)
        self.featurizer_config = dataclasses.replace(DEFAULT_FEATURIZER, kind="wordllama_tokens")
        self.pools = list(pools)
        self.model_config = dataclasses.replace(self.model_config, input_dim=DEFAULT_FEATURIZER.dim * len(pools))

    def _rows(self, prompts: list[str], y: np.ndarray, stats: Any = None) -> tuple[RoutingData, Any]:
        f = self._features(prompts)
        x, real = np.asarray(f.x), np.asarray(f.mask)[..., None]
        count = real.sum(axis=1)
        pooled = {
            "mean": lambda: (x * real).sum(axis=1) / np.maximum(count, 1),
            "max": lambda: np.where(real, x, -np.inf).max(axis=1),
            "min": lambda: np.where(real, x, np.inf).min(axis=1),
        }
        z = np.concatenate([np.where(count > 0, pooled[p](), 0.0) for p in self.pools], axis=-1)
        z, one = z[:, None, :].astype(np.float32), np.ones((len(prompts), 1), bool)
        stats = stats or fit_norm_stats(z, one)
        return RoutingData(
            apply_norm(z, stats, one), one, y.astype(np.float32), None, f.ngram_ids, f.ngram_weights
        ), stats


def char_bag(prompts: list[str], buckets: int) -> Any:
    """Character 3-5 grams inside word boundaries of each prompt's first 1,200 characters (about its first 256
    tokens), hashed into ``buckets`` by scikit-learn's ``HashingVectorizer`` (MurmurHash3), L2-normalised per
    prompt: sparse rows [N, buckets]."""
    from sklearn.feature_extraction.text import HashingVectorizer

    hashing = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=buckets, alternate_sign=False)
    return hashing.transform([p[:1200] for p in prompts])


def word_bag(hashing: str, salt: int | None = None) -> Callable[[list[str], int], Any]:
    """The unigrams and bigrams of each prompt's lower-cased words (scikit-learn's default token pattern: two or
    more word characters), each present n-gram counted once, L2-normalised per prompt, hashed into ``buckets``
    by ``"murmur3"`` (scikit-learn's ``HashingVectorizer``; with ``salt``, of each n-gram prefixed ``"{salt}|"``)
    or by ``"crc32"``: each word's CRC-32, then the recipe's own n-gram hash (``hashed_ngrams``), as a serving
    kernel could compute it. They differ only in which n-grams share a bucket."""

    def rows(prompts: list[str], buckets: int) -> Any:
        from scipy import sparse
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.preprocessing import normalize

        if hashing == "murmur3":
            ngrams = HashingVectorizer(ngram_range=(1, 2)).build_analyzer()
            analyzer = ngrams if salt is None else lambda text: [f"{salt}|{g}" for g in ngrams(text)]
            vectorizer = HashingVectorizer(n_features=buckets, alternate_sign=False, binary=True, analyzer=analyzer)
            return vectorizer.transform(prompts)
        assert salt is None, "salt: only for murmur3"
        words = [[zlib.crc32(w.encode()) & 0x7FFFFFFF for w in re.findall(r"\w\w+", p.lower())] for p in prompts]
        ids = np.zeros((len(words), max(max(map(len, words)), 1)), np.int32)
        for i, prompt_words in enumerate(words):
            ids[i, : len(prompt_words)] = prompt_words
        bucket, weight = (np.asarray(a) for a in hashed_ngrams(ids, np.array([len(w) for w in words]), buckets))
        prompt = np.repeat(np.arange(len(ids)), bucket.shape[1])
        real = (weight > 0).ravel().astype(np.float32)
        present = sparse.csr_matrix((real, (prompt, bucket.ravel())), shape=(len(ids), buckets))
        present.data = np.minimum(present.data, 1.0)  # repeats were summed: count each n-gram once
        return normalize(present)

    return rows


class SecondBagScorer(ScreenScorer):
    """The recipe with a second bag beside its token bag: ``bag(prompts, buckets)`` (sparse rows [N, buckets],
    :func:`char_bag` or :func:`word_bag`) in ``buckets`` more buckets (``buckets`` * 4 more bytes)."""

    def __init__(self, name: str, buckets: int, bag: Callable[[list[str], int], Any]) -> None:
        super().__init__(name=name)
        self.buckets, self.bag = buckets, bag
        self.bag_buckets += buckets

    def _rows(self, prompts: list[str], y: np.ndarray, stats: Any = None) -> tuple[RoutingData, Any]:
        f = self._features(prompts)
        second = self.bag(prompts, self.buckets).tocsr()
        second.eliminate_zeros()
        width = max(int(np.diff(second.indptr).max()), 1)
        ids, weights = np.zeros((len(prompts), width), np.int32), np.zeros((len(prompts), width), np.float32)
        for i in range(len(prompts)):
            a, b = second.indptr[i], second.indptr[i + 1]
            ids[i, : b - a], weights[i, : b - a] = second.indices[a:b], second.data[a:b]
        token_buckets = self.featurizer_config.ngram_buckets
        ids = np.concatenate([np.asarray(f.ngram_ids), ids + token_buckets], axis=1)
        weights = np.concatenate([np.asarray(f.ngram_weights), weights], axis=1)
        stats = stats or fit_norm_stats(f.x, f.mask)
        return RoutingData(apply_norm(f.x, stats, f.mask), f.mask, y.astype(np.float32), None, ids, weights), stats


class SifMeanScorer(ScreenScorer):
    """The recipe with its mean of token vectors weighted as in SIF (Arora et al., 2017): token ``t`` weighs
    ``a / (a + p(t))``, so frequent tokens count less. ``p`` is each token's share of the training rows' tokens
    (``"train"``), or, needing no table in an artifact, a Zipf law over token ids (``"id rank"``: ``p`` proportional
    to ``1 / (id + 1)``, as a BPE vocabulary numbers its tokens roughly in order of frequency). The same bag."""

    def __init__(self, name: str, frequencies: str, a: float = 1e-3) -> None:
        super().__init__(name=name)
        assert frequencies in ("train", "id rank"), frequencies
        self.frequencies, self.a = frequencies, a

    def _rows(self, prompts: list[str], y: np.ndarray, stats: Any = None) -> tuple[RoutingData, Any]:
        featurizer = self._text_featurizer()
        table = featurizer.table
        ids, mask = featurizer.token_ids(prompts)
        if stats is None:
            if self.frequencies == "train":
                share = np.bincount(ids[mask], minlength=len(table)) / max(int(mask.sum()), 1)
            else:
                share = 1.0 / np.arange(1, len(table) + 1)
                share /= share.sum()
            token_weight = self.a / (self.a + share)
        else:
            token_weight = stats[0]
        weights = token_weight[ids] * mask
        mean = np.einsum("nt,ntd->nd", weights, table[ids]) / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        z, one = mean[:, None, :].astype(np.float32), np.ones((len(prompts), 1), bool)
        norm = fit_norm_stats(z, one) if stats is None else stats[1]
        buckets, bag_weights = hashed_ngrams(ids, mask.sum(axis=1), self.bag_buckets)
        data = RoutingData(
            apply_norm(z, norm, one), one, y.astype(np.float32), None, np.asarray(buckets), np.asarray(bag_weights)
        )
        return data, (token_weight, norm)


class AugmentedScorer(FastGRNNScorer):
    """The recipe trained on ``copies`` copies of each training row, every copy but the first perturbed: each n-gram
    dropped with probability ``drop`` (the rest scaled by ``1 / (1 - drop)``) and Gaussian noise of standard
    deviation ``noise`` added to the standardised input (regularisation by augmentation; the validation rows are
    not copied). An epoch is ``copies`` times the steps."""

    def __init__(self, name: str, copies: int, drop: float, noise: float) -> None:
        super().__init__(name=name)
        self.copies, self.drop, self.noise = copies, drop, noise

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        train, held, stats = train_and_held_rows(self._data, prompts, y, val)
        assert train.ngram_ids is not None
        rng = np.random.default_rng(0)
        x, weights = [np.asarray(train.x)], [np.asarray(train.ngram_weights)]
        for _ in range(self.copies - 1):
            x.append(x[0] + self.noise * rng.standard_normal(x[0].shape).astype(np.float32))
            weights.append(weights[0] * (rng.random(weights[0].shape) >= self.drop) / (1 - self.drop))
        n = self.copies
        rows = RoutingData(
            np.concatenate(x), np.tile(train.mask, (n, 1)), np.tile(train.y, n), None,
            np.tile(train.ngram_ids, (n, 1)), np.concatenate(weights).astype(np.float32),
        )  # fmt: skip
        buckets = self.featurizer_config.ngram_buckets
        result = train_fastgrnn(self.model_config, rows, held, self.train_config, ngram_buckets=buckets)
        self._scorer = self._serve(result, stats)
        return self


class SweepSelectScorer(FastGRNNScorer):
    """Settings chosen per dataset: nine recipe members (n-gram step x1 / x3 / x10 by n-gram L2 1e-5 / 1e-4 / 1e-3)
    trained as one vmapped sweep (:func:`~tinydancer.learning.train_fastgrnn_many`, refit included), ranked by
    their lowest validation loss before the refit; the ``keep`` best are kept and their scores averaged."""

    GRID = tuple((step, l2) for step in (1.0, 3.0, 10.0) for l2 in (1e-5, 1e-4, 1e-3))

    def __init__(self, name: str, keep: int) -> None:
        super().__init__(name=name)
        self.keep = keep
        self._members: list[PromptScorer] = []

    def fit(
        self, prompts: Sequence[str], y: np.ndarray, *, val: tuple[Sequence[str], np.ndarray] | None = None
    ) -> Self:
        train, held, stats = train_and_held_rows(self._data, prompts, y, val)
        configs = [dataclasses.replace(self.train_config, ngram_lr_scale=a, ngram_l2=b) for a, b in self.GRID]
        buckets = self.featurizer_config.ngram_buckets
        results = train_fastgrnn_many(self.model_config, train, held, configs, ngram_buckets=buckets)
        losses = [r.history.loc[r.history["phase"] == "select", "val_loss"].min() for r in results]
        self._members = [self._serve(results[i], stats) for i in np.argsort(losses)[: self.keep]]
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        return np.mean([m.score(list(prompts), threshold=np.inf).p_raw for m in self._members], axis=0)


def levers(frame: pd.DataFrame) -> list[tuple[str, Callable[[], Any], str]]:
    """(name, scorer factory, target): the recipe, one change per row, and the baselines (``frame``: the
    outcomes, for the scorers that read both models' outcomes)."""
    gain = "strong_gain"

    def featurizer(name: str, **changes: Any) -> tuple[str, Callable[[], Any], str]:
        return name, lambda: FastGRNNScorer(dataclasses.replace(DEFAULT_FEATURIZER, **changes), name=name), gain

    def model(name: str, **changes: Any) -> tuple[str, Callable[[], Any], str]:
        return name, lambda: FastGRNNScorer(model=dict(changes), name=name), gain

    def training(name: str, **changes: Any) -> tuple[str, Callable[[], Any], str]:
        config = dataclasses.replace(default_train_config(progress=False), **changes)
        return name, lambda: FastGRNNScorer(train=config, name=name), gain

    def other(name: str, make: Callable[[str], Any], target: str = gain) -> tuple[str, Callable[[], Any], str]:
        return name, lambda: make(name), target

    four_baselines = baselines_mean("tfidf_lr", "char_tfidf", "prompt_stats", "knn_embed")
    return [
        other("recipe", lambda name: FastGRNNScorer(name=name)),
        other("target weak_fails", lambda name: FastGRNNScorer(name=name), "weak_fails"),
        training("no refit on train + val", refit=False),
        featurizer("no n-gram bag", ngram_buckets=0),
        featurizer("first 64 tokens", max_tokens=64),
        featurizer("8,192 n-gram buckets", ngram_buckets=8192),
        featurizer("12,288 n-gram buckets", ngram_buckets=12288),
        training("40 epochs", epochs=40),
        training("80 epochs", epochs=80),
        training("200 epochs", epochs=200),
        model("hidden 32", hidden_dim=32),
        featurizer("dim 128", dim=128),
        featurizer("dim 256", dim=256),
        model("hidden 4", hidden_dim=4),
        model("hidden 8", hidden_dim=8),
        training("lr 3e-3", learning_rate=3e-3),
        training("lr 1e-2", learning_rate=1e-2),
        other("distilled from tfidf_lr, a=0.5", lambda name: DistilledScorer(0.5, name)),
        other("+ log token count as input", lambda name: ExtraInputScorer("length", name)),
        other("+ prompt statistics as input", lambda name: ExtraInputScorer("prompt_stats", name)),
        other("idf-weighted n-gram bag", IdfBagScorer),
        *(other(f"recipe, bag rehashed (salt {k})", partial(RehashedBagScorer, salts=(k,))) for k in (1, 2, 3)),
        other("each n-gram in 2 buckets (salt 1 too)", partial(RehashedBagScorer, salts=(None, 1))),
        other("each n-gram in 4 buckets (salts 1-3 too)", partial(RehashedBagScorer, salts=(None, 1, 2, 3))),
        other("ensemble of 3 seeds (mean score)", lambda name: SeedEnsembleScorer(3, name)),
        training("n-gram L2 1e-3", ngram_l2=1e-3),
        training("n-gram L2 1e-5", ngram_l2=1e-5),
        training("n-gram bag lr x1 (the recipe until 2026-12-01)", ngram_lr_scale=1.0),
        training("n-gram bag lr x2", ngram_lr_scale=2.0),
        training("n-gram bag lr x5", ngram_lr_scale=5.0),
        training("n-gram bag lr x10", ngram_lr_scale=10.0),
        training("batch 32", batch_size=32),
        training("batch 64", batch_size=64),
        training("batch 256", batch_size=256),
        training("weight decay 0.1 (AdamW)", weight_decay=0.1),
        training("weight decay 1.0 (AdamW)", weight_decay=1.0),
        training("patience 2", patience=2),
        training("patience 10", patience=10),
        featurizer("token sequence, 256 tokens (not their mean)", kind="wordllama_tokens"),
        featurizer("token sequence, first 64 tokens", kind="wordllama_tokens", max_tokens=64),
        other("token sequence after their mean (one more step)", lambda name: SequencePlusMeanScorer(name, False)),
        other("token sequence, then their mean (one more step)", lambda name: SequencePlusMeanScorer(name, True)),
        other("two heads: weak fails, strong fails (2 models)", lambda name: TwoHeadsScorer(frame, name)),
        other(
            "mean of the recipe and the two heads (3 models)",
            lambda name: ScoreMean(name, [FastGRNNScorer(name=f"{name}/gain"), TwoHeadsScorer(frame, f"{name}/heads")]),
        ),
        other(
            "mean of the recipe and tfidf_lr (not servable under 64 KB)",
            lambda name: ScoreMean(
                name, [FastGRNNScorer(name=f"{name}/recipe"), TfidfLogisticScorer(name=f"{name}/tfidf")]
            ),
        ),
        other("hashed n-gram bag alone, scikit-learn LR", lambda name: SoftLogisticScorer(name, hashed_bag_rows)),
        other("mean and max of the token vectors", lambda name: PooledTokensScorer(name, ["mean", "max"])),
        other("SIF-weighted mean (training-row frequencies)", lambda name: SifMeanScorer(name, "train")),
        other("SIF-weighted mean (token id as frequency rank)", lambda name: SifMeanScorer(name, "id rank")),
        other("char 3-5 gram bag (8,192) beside the token bag", lambda name: SecondBagScorer(name, 8192, char_bag)),
        other(
            "word bag (4,096, MurmurHash3) beside the token bag",
            lambda name: SecondBagScorer(name, 4096, word_bag("murmur3")),
        ),
        *(
            other(
                f"word bag (4,096, MurmurHash3, salt {k}) beside the token bag",
                partial(SecondBagScorer, buckets=4096, bag=word_bag("murmur3", salt=k)),
            )
            for k in (1, 2, 3)
        ),
        other(
            "word bag (4,096, CRC-32) beside the token bag",
            lambda name: SecondBagScorer(name, 4096, word_bag("crc32")),
        ),
        other(
            "chosen per dataset: the validation-best of 9 (bag step x1/x3/x10, bag L2 1e-5/1e-4/1e-3)",
            partial(SweepSelectScorer, keep=1),
        ),
        other("chosen per dataset: mean of the 3 validation-best of those 9", partial(SweepSelectScorer, keep=3)),
        other("3 copies of each training row", lambda name: AugmentedScorer(name, 3, 0.0, 0.0)),
        other(
            "3 copies, n-gram dropout 0.3, input noise 0.3",
            lambda name: AugmentedScorer(name, 3, 0.3, 0.3),
        ),
        other(
            "distilled from char tfidf, a=0.5",
            lambda name: DistilledScorer(0.5, name, lambda: SoftLogisticScorer("teacher", tfidf_rows("char"))),
        ),
        featurizer("first 128 tokens", max_tokens=128),
        featurizer("first 512 tokens", max_tokens=512),
        featurizer("first 1,280 tokens (every MMLU prompt whole)", max_tokens=1280),
        other("distilled from the mean of 4 baselines, a=0.5", lambda name: DistilledScorer(0.5, name, four_baselines)),
        other("distilled from the mean of 4 baselines, a=0.8", lambda name: DistilledScorer(0.8, name, four_baselines)),
        other(
            "distilled from the mean of tfidf_lr and prompt_stats, a=0.5",
            lambda name: DistilledScorer(0.5, name, baselines_mean("tfidf_lr", "prompt_stats")),
        ),
        other("mean of 4 baselines (the teacher above; not servable under 64 KB)", four_baselines),
        other(
            "distilled from subject means, a=0.3",
            lambda name: DistilledScorer(0.3, name, lambda: SubjectMeanScorer(frame, "teacher")),
        ),
        other(
            "distilled from subject means, a=0.5",
            lambda name: DistilledScorer(0.5, name, lambda: SubjectMeanScorer(frame, "teacher")),
        ),
        other("subject means (the subject is metadata, not a prompt router)", lambda n: SubjectMeanScorer(frame, n)),
        other(
            "subject inferred by tfidf + LR, then its mean",
            lambda name: SubjectMeanScorer(frame, name, infer=True),
        ),
        other("tfidf_lr (baseline)", lambda name: TfidfLogisticScorer(name=name)),
        other("prompt_stats (baseline)", lambda name: PromptStatsScorer(name=name)),
        other("knn_embed (baseline)", lambda name: KNNEmbeddingScorer(name=name)),
        other("tfidf_lr, C=0.3", lambda name: TfidfLogisticScorer(c=0.3, name=name)),
        other("tfidf of char 2-5 grams + LR", lambda name: SoftLogisticScorer(name, tfidf_rows("char"))),
        other("tfidf of words and char 2-5 grams + LR", lambda name: SoftLogisticScorer(name, tfidf_rows("word+char"))),
        other("tfidf_lr, target weak_fails", lambda name: TfidfLogisticScorer(name=name), "weak_fails"),
    ]


#: The cuts, in table order (module docstring).
CUTS = ("in-domain", "held-out subjects", "small", "in-domain, full size")
#: Cuts run only when ``--cuts`` names them (module docstring).
EXTRA_CUTS = ("in-domain, full size, 5 folds",)


def plans(frame: pd.DataFrame, seeds: list[int]) -> dict[str, list[dict[str, np.ndarray]]]:
    """The runs of each cut (module docstring), all inside the random split's training and validation rows (seed 0)."""
    split = split_rows(frame, "random", 0)
    pool = split["train"]
    subjects = frame["subject"].to_numpy()
    groups = frame["subject"].map(MMLU_GROUPS).to_numpy()
    out: dict[str, list[dict[str, np.ndarray]]] = {cut: [] for cut in CUTS + EXTRA_CUTS}
    for seed in seeds:
        ids = np.random.default_rng(seed).permutation(pool)
        out["in-domain, full size"].append(
            {"train": ids[1000:], "val": ids[:600], "cal": ids[600:1000], "test": split["val"]}
        )
        out["in-domain"].append({"train": ids[:3400], "val": ids[3400:4000], "cal": ids[4000:4400], "test": ids[4400:]})
        rng = np.random.default_rng(seed)
        names = rng.permutation(np.unique(subjects[pool]))
        held = np.isin(subjects[pool], names[: len(names) // 3])
        rest = rng.permutation(pool[~held])
        out["held-out subjects"].append(
            {"train": rest[600:], "val": rest[:400], "cal": rest[400:600], "test": pool[held]}
        )
        for group in sorted(set(MMLU_GROUPS.values())):
            g = np.random.default_rng(seed).permutation(pool[groups[pool] == group])
            out["small"].append({"train": g[:480], "val": g[480:600], "cal": g[600:700], "test": g[700:]})
    folds = np.array_split(np.random.default_rng(0).permutation(np.r_[pool, split["val"]]), 5)
    for k, scored in enumerate(folds):
        rest = np.concatenate(folds[:k] + folds[k + 1 :])
        out["in-domain, full size, 5 folds"].append(
            {"train": rest[1000:], "val": rest[:600], "cal": rest[600:1000], "test": scored}
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cut")
    parser.add_argument("--cuts", nargs="+", default=list(CUTS), choices=list(CUTS + EXTRA_CUTS), help="cuts to run")
    parser.add_argument("--only", nargs="+", default=None, help="run only these levers (names as in the table)")
    parser.add_argument("--out", default=str(SCRATCH_RESULTS / "recipe_levers.json"), help="JSON (markdown beside it)")
    args = parser.parse_args(argv)
    configure_jax()
    frame = load("routellm-mmlu")
    started = time.perf_counter()
    table: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for cut, runs in plans(frame, list(range(args.seeds))).items():
        if cut not in args.cuts:
            continue
        for rows in runs:
            for target in ("strong_gain", "weak_fails"):
                chosen = [
                    (name, make) for name, make, t in levers(frame) if t == target and name in (args.only or [name])
                ]
                if not chosen:
                    continue
                done = fit_and_score(frame, [make() for _, make in chosen], rows=rows, target=target)
                for run in done:
                    m = scorer_metrics(frame, run)
                    table.setdefault(run.name, {}).setdefault(cut, []).append((m["apgr"], m["auroc_gain"]))
            # Every run's row counts compile new training steps; a process that keeps them all runs out of
            # memory maps (vm.max_map_count) after a few hundred fits.
            jax.clear_caches()
            print(f"{cut}: run done at {time.perf_counter() - started:.0f} s", flush=True)
    cuts = [c for c in CUTS + EXTRA_CUTS if c in args.cuts]
    elapsed = time.perf_counter() - started
    options = "" if args.only is None else " --only " + " ".join(shlex.quote(name) for name in args.only)
    if cuts != list(CUTS):
        options = " --cuts " + " ".join(shlex.quote(cut) for cut in cuts) + options
    lines = [
        f"Command: `python -m benchmarks.recipe_levers --seeds {args.seeds}{options}` ({elapsed:.0f} s)",
        "",
        "| lever | " + " | ".join(f"{c}: APGR / AUROC (strong wins)" for c in cuts) + " |",
        "|---|" + "---|" * len(cuts),
    ]
    for name, per_cut in table.items():
        cells = [f"{np.mean([a for a, _ in per_cut[c]]):.3f} / {np.mean([g for _, g in per_cut[c]]):.3f}" for c in cuts]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    write_results(args.out, {"seeds": args.seeds, "table": table}, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
