"""End-to-end router experiments on outcome frames, one call per step, each returning a typed result.

The steps behind ``python -m tinydancer train|calibrate|evaluate`` and ``benchmarks/evaluate_mmlu.py``:

- :func:`split_rows`: seeded train/val/cal/test rows (pure);
- :func:`prepare_split`: featurise and normalise with statistics of the training rows -> :class:`PreparedSplit`;
- :func:`train_router`: split, prepare, train, save a checkpoint -> :class:`TrainedRouter` (``train``);
- :func:`calibrate_router`: fit a calibrator on the stored split's calibration rows and store it ->
  :class:`CalibratedRouter` (``calibrate``);
- :func:`score_frame` / :func:`predict_scores`: router scores in batches of ``batch_size`` -> :class:`ScoredFrame`;
- :func:`report`: every routing, calibration and uncertainty figure of any scores (pure) ->
  :class:`EvaluationReport`; :func:`evaluate_router` scores a checkpoint and reports it (``evaluate``).

It wires :mod:`tinydancer.datasets.outcomes`, :mod:`tinydancer.model.text_features`,
:mod:`tinydancer.learning.train`, :mod:`tinydancer.learning.calibration` and :mod:`tinydancer.learning.evaluation`
together. Scores are P(weak model fails) and every threshold reads ``strong iff score >= threshold``
(:func:`~tinydancer.learning.thresholds.calls_strong`). Outcomes may be 0/1 or scores in [0, 1]: training fits the
soft target :func:`labels`, the classification figures use the binary :func:`failure_labels` (``weak < pass_mark``),
the quality figures the outcomes themselves (:mod:`tinydancer.learning.labels`). The split is a pure function of
(frame, kind, seed) and is stored in the model's metadata, so ``evaluate`` scores exactly the rows ``train`` never
saw.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from tinydancer.errors import ConfigError, DataError, InvalidInputError
from tinydancer.learning.calibration import (
    Calibrator,
    apply_calibrator,
    auroc,
    conformal_quantile,
    conformal_sets,
    ece,
    fit_calibrator,
)
from tinydancer.learning.ensemble import stack_params
from tinydancer.learning.evaluation import apgr, cpt, dense_thresholds, routing_curve, tune_threshold
from tinydancer.learning.labels import (
    PASS_MARK,
    check_pass_mark,
    needs_strong,
    soft_target,
    training_target,
    weak_failed,
)
from tinydancer.learning.recipe import DEFAULT_FEATURIZER, DEFAULT_MODEL, DEFAULT_TARGET, default_train_config
from tinydancer.learning.sweep import train_members
from tinydancer.learning.thresholds import calls_strong
from tinydancer.learning.train import RoutingData, TrainConfig, TrainResult
from tinydancer.model.compression import model_size_bytes, quantize_params
from tinydancer.model.fastgrnn import FastGRNNConfig, fastgrnn_predict
from tinydancer.model.prompt_artifact import (
    ConformalSpec,
    OperatingPoint,
    PromptRouterArtifact,
    reference_quantiles,
    save_prompt_router,
)
from tinydancer.model.safetensors_file import read_safetensors
from tinydancer.model.scorer_router import RouterArtifact, router_from_file, save_router, serving_scorer
from tinydancer.model.text_features import (
    FeaturizerConfig,
    NormStats,
    TextFeaturizer,
    apply_norm,
    fit_norm_stats,
)

SPLITS: tuple[str, ...] = ("random", "subject")
#: Shares of rows: test, calibration, validation (the rest trains).
FRACTIONS = (0.4, 0.1, 0.1)


def split_rows(frame: pd.DataFrame, kind: str, seed: int) -> dict[str, np.ndarray]:
    """Seeded train/val/cal/test row indices; ``subject`` puts whole subjects in the test split.

    Args:
        frame: Outcomes (needs ``subject`` for ``kind="subject"``).
        kind: ``"random"`` or ``"subject"``.
        seed: Seed.

    Returns:
        ``{"train", "val", "cal", "test"}`` -> sorted int arrays, disjoint, covering every row.

    Raises:
        DataError: An unknown ``kind``; a ``subject`` split of fewer than two subjects; no training rows left.

    Examples:
        >>> f = pd.DataFrame({"subject": list("aabbccddee") * 10})
        >>> {k: len(v) for k, v in split_rows(f, "random", 0).items()}
        {'train': 40, 'val': 10, 'cal': 10, 'test': 40}
        >>> sorted(set(f["subject"][split_rows(f, "subject", 0)["test"]]))  # whole subjects
        ['c', 'e']
    """
    if kind not in SPLITS:
        raise DataError(f"split: expected one of {SPLITS}, got {kind!r}")
    n = len(frame)
    rng = np.random.default_rng(seed)
    n_test, n_cal, n_val = (round(f * n) for f in FRACTIONS)
    if kind == "random":
        order = rng.permutation(n)
        test, rest = order[:n_test], order[n_test:]
    else:
        subjects = frame["subject"].to_numpy()
        names = rng.permutation(np.unique(subjects))
        if len(names) < 2:
            raise DataError(
                f"split 'subject': expected at least 2 subjects (whole subjects are held out for test), got "
                f"{len(names)}{f' ({str(names[0])!r})' if len(names) else ''}; use the random split"
            )
        chosen: list[str] = []
        for name in names:
            if np.isin(subjects, chosen).sum() >= n_test:
                break
            chosen.append(str(name))
        in_test = np.isin(subjects, chosen)
        test, rest = np.flatnonzero(in_test), rng.permutation(np.flatnonzero(~in_test))
    cal, val, train = rest[:n_cal], rest[n_cal : n_cal + n_val], rest[n_cal + n_val :]
    if len(train) == 0:
        raise DataError(
            f"split {kind!r}: expected rows left for training, got none ({n} rows: {len(test)} test, {len(cal)} "
            f"calibration, {len(val)} validation)"
        )
    return {k: np.sort(v) for k, v in (("train", train), ("val", val), ("cal", cal), ("test", test))}


#: Rows scored per jitted call by default (:func:`predict_scores`, :func:`score_frame`).
SCORE_BATCH = 2048


def featurize_frame(
    frame: pd.DataFrame, config: FeaturizerConfig, stats: NormStats | None, cache_dir: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Raw features of the prompts (normalised when ``stats`` is given).

    Examples:
        >>> x, m = featurize_frame(pd.DataFrame({"prompt": ["hi there"]}), FeaturizerConfig(max_tokens=4), None)
        >>> x.shape
        (1, 4, 64)
    """
    x, mask = TextFeaturizer(config, cache_dir)(frame["prompt"].astype(str).tolist())
    return (x, mask) if stats is None else (apply_norm(x, stats, mask), mask)


def labels(frame: pd.DataFrame, target: str = "weak_fails") -> np.ndarray:
    """Training target (:func:`~tinydancer.learning.labels.training_target`) of every row, float32.

    ``"weak_fails"``: ``1 - weak_correct`` (1 when the weak model fails; on scores in [0, 1] the weak answer's
    shortfall). ``"strong_gain"``: ``(1 + strong_correct - weak_correct) / 2``.

    Raises:
        InvalidInputError: An outcome is outside [0, 1], or an unknown target.
        DataError: ``"strong_gain"`` without a ``strong_correct`` column.

    Examples:
        >>> labels(pd.DataFrame({"weak_correct": [1.0, 0.0, 0.75]})).tolist()
        [0.0, 1.0, 0.25]
        >>> labels(pd.DataFrame({"weak_correct": [1.0, 0.0], "strong_correct": [1.0, 1.0]}), "strong_gain").tolist()
        [0.5, 1.0]
    """
    weak = frame["weak_correct"].to_numpy(np.float64)
    if target == "weak_fails":
        return soft_target(weak).astype(np.float32)
    if "strong_correct" not in frame.columns:
        raise DataError(f"target {target!r}: expected a strong_correct column, got columns {list(frame.columns)}")
    return training_target(weak, frame["strong_correct"].to_numpy(np.float64), target).astype(np.float32)


def failure_labels(frame: pd.DataFrame, pass_mark: float = PASS_MARK) -> np.ndarray:
    """Binary label "the weak model fails": 1.0 where ``weak_correct < pass_mark`` (:func:`weak_failed`).

    Calibration, ECE, AUROC, conformal sets and the weak-error threshold use it; on 0/1 outcomes it equals
    :func:`labels` for every pass mark.

    Args:
        frame: Outcomes (``weak_correct``).
        pass_mark: In (0, 1].

    Returns:
        [N] float64 0/1 labels.

    Examples:
        >>> failure_labels(pd.DataFrame({"weak_correct": [1.0, 0.0, 0.75, 0.25]})).tolist()
        [0.0, 1.0, 0.0, 1.0]
    """
    return weak_failed(frame["weak_correct"].to_numpy(np.float64), pass_mark)


def strong_needed(frame: pd.DataFrame, target: str = "weak_fails", pass_mark: float = PASS_MARK) -> np.ndarray:
    """The binary label a router trained for ``target`` is calibrated on (:func:`~tinydancer.learning.needs_strong`).

    ``"weak_fails"``: :func:`failure_labels`; ``"strong_gain"``: 1.0 where ``strong_correct > weak_correct``.

    Examples:
        >>> f = pd.DataFrame({"weak_correct": [1.0, 0.0, 0.0], "strong_correct": [1.0, 1.0, 0.0]})
        >>> strong_needed(f).tolist(), strong_needed(f, "strong_gain").tolist()
        ([0.0, 1.0, 1.0], [0.0, 1.0, 0.0])
    """
    if target == "weak_fails":
        return failure_labels(frame, pass_mark)
    weak = frame["weak_correct"].to_numpy(np.float64)
    if "strong_correct" not in frame.columns:
        raise DataError(f"target {target!r}: expected a strong_correct column, got columns {list(frame.columns)}")
    return needs_strong(weak, frame["strong_correct"].to_numpy(np.float64), target, pass_mark)


class PreparedSplit(NamedTuple):
    """Featurised outcomes with their split, normalised with statistics of the training rows only.

    Attributes:
        x: [N, T, D] normalised features of every row.
        mask: [N, T] valid steps.
        y: [N] float32 training targets ``1 - weak_correct``, soft on score outcomes (:func:`labels`).
        rows: ``{"train", "val", "cal", "test"}`` -> row indices (:func:`split_rows`).
        stats: The normalisation statistics (fitted on ``rows["train"]``; stored in checkpoints).
        ngram_ids: [N, G] hashed n-gram buckets, or None when the featuriser hashes none.
        ngram_weights: [N, G] their weights, or None.
    """

    x: np.ndarray
    mask: np.ndarray
    y: np.ndarray
    rows: dict[str, np.ndarray]
    stats: NormStats
    ngram_ids: np.ndarray | None = None
    ngram_weights: np.ndarray | None = None

    def data(self, name: str) -> RoutingData:
        """The rows of one split as training data.

        Raises:
            InvalidInputError: ``name`` is not a split.

        Examples:
            >>> from tinydancer.datasets.outcomes import make_synthetic_outcomes
            >>> f = make_synthetic_outcomes(100, 0).rename(columns={"weak": "weak_correct"})
            >>> prepared = prepare_split(f, FeaturizerConfig(kind="wordllama_mean"), "random", 0)
            >>> prepared.data("val").x.shape
            (10, 1, 64)
        """
        if name not in self.rows:
            raise InvalidInputError(f"name: expected one of {tuple(self.rows)}, got {name!r}")
        idx = self.rows[name]
        if self.ngram_ids is None or self.ngram_weights is None:
            return RoutingData(self.x[idx], self.mask[idx], self.y[idx])
        return RoutingData(
            self.x[idx],
            self.mask[idx],
            self.y[idx],
            ngram_ids=self.ngram_ids[idx],
            ngram_weights=self.ngram_weights[idx],
        )


def prepare_split(
    frame: pd.DataFrame,
    featurizer: FeaturizerConfig,
    split: str = "random",
    seed: int = 0,
    cache_dir: str | None = None,
    target: str = "weak_fails",
) -> PreparedSplit:
    """Split the rows, featurise every prompt and normalise with statistics of the training rows.

    Args:
        frame: Outcomes (``prompt``, ``weak_correct``; ``subject`` for ``split="subject"``).
        featurizer: How prompts become features.
        split: ``"random"`` or ``"subject"`` (:func:`split_rows`).
        seed: Seed of the split.
        cache_dir: Where the WordLlama weights are cached (default: the featuriser's).
        target: The training target of ``y`` (:func:`labels`).

    Returns:
        A :class:`PreparedSplit`.

    Examples:
        >>> from tinydancer.datasets.outcomes import make_synthetic_outcomes
        >>> f = make_synthetic_outcomes(100, 0).rename(columns={"weak": "weak_correct"})
        >>> p = prepare_split(f, FeaturizerConfig(kind="wordllama_mean"), "random", 0)
        >>> p.x.shape, {k: len(v) for k, v in p.rows.items()}
        ((100, 1, 64), {'train': 40, 'val': 10, 'cal': 10, 'test': 40})
    """
    rows = split_rows(frame, split, seed)
    features = TextFeaturizer(featurizer, cache_dir).featurize(frame["prompt"].astype(str).tolist())
    x_raw, mask = features.x, features.mask
    stats = fit_norm_stats(x_raw[rows["train"]], mask[rows["train"]])
    return PreparedSplit(
        apply_norm(x_raw, stats, mask),
        mask,
        labels(frame, target),
        rows,
        stats,
        features.ngram_ids,
        features.ngram_weights,
    )


class TrainedRouter(NamedTuple):
    """What :func:`train_router` wrote and learned.

    Attributes:
        path: The prompt-router artifact written (:mod:`tinydancer.model.prompt_artifact`).
        result: The training result (float32 parameters, history, best epoch; the first member's for an
            ensemble).
        split: The split kind (``"random"`` or ``"subject"``).
        seed: The split's seed.
        rows: ``{"train", "val", "cal", "test"}`` -> row indices of the frame it was trained on.
        size_bytes_float32: Size of the float32 parameters (of one member).
        size_bytes_int8: Size of their int8 quantisation.
        quantized: Whether the artifact holds the int8 parameters.
        members: Ensemble members in the artifact (1: a single model).
    """

    path: Path
    result: TrainResult
    split: str
    seed: int
    rows: dict[str, np.ndarray]
    size_bytes_float32: int
    size_bytes_int8: int
    quantized: bool
    members: int = 1

    @property
    def row_counts(self) -> dict[str, int]:
        """Rows per split, e.g. ``{"train": 800, "val": 200, "cal": 200, "test": 800}``."""
        return {k: len(v) for k, v in self.rows.items()}


def frame_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of the prompts and outcomes of a frame (stored as where a router's data came from).

    Examples:
        >>> f = pd.DataFrame({"prompt": ["a"], "weak_correct": [1.0], "strong_correct": [0.0]})
        >>> len(frame_sha256(f)), frame_sha256(f) == frame_sha256(f.copy())
        (64, True)
    """
    columns = [c for c in ("prompt", "weak_correct", "strong_correct") if c in frame.columns]
    hashed = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def trained_policy(
    frame: pd.DataFrame,
    split: str,
    seed: int,
    data_tag: str,
    weak_model: str | None,
    strong_model: str | None,
    prices: tuple[float, float] | None,
    target: str,
) -> dict[str, Any]:
    """The serving-policy fields a freshly trained artifact starts with (keyword arguments; no calibrator yet).

    Model names default to ``frame.attrs`` (else ``"weak"`` / ``"strong"``); ``split`` is ``{"kind", "seed",
    "data"}``; ``provenance`` is ``{"data_sha256", "rows", "created"}`` of ``frame``.
    """
    return {
        "weak_model": weak_model or frame.attrs.get("weak_model", "weak"),
        "strong_model": strong_model or frame.attrs.get("strong_model", "strong"),
        "weak_price": None if prices is None else prices[0],
        "strong_price": None if prices is None else prices[1],
        "split": {"kind": split, "seed": seed, "data": data_tag},
        "provenance": {"data_sha256": frame_sha256(frame), "rows": len(frame), "created": _now_iso()},
        "target": target,
    }


def train_router(
    frame: pd.DataFrame,
    out: str | Path,
    *,
    split: str = "random",
    seed: int = 0,
    featurizer: FeaturizerConfig | None = None,
    model: dict[str, Any] | None = None,
    train: TrainConfig | None = None,
    quantize: bool = False,
    data_tag: str = "",
    ensemble: int = 1,
    weak_model: str | None = None,
    strong_model: str | None = None,
    prices: tuple[float, float] | None = None,
    target: str = DEFAULT_TARGET,
) -> TrainedRouter:
    """Split, featurise, fit normalisation on the training rows, train, and save a prompt-router artifact.

    Unless told otherwise it trains the default recipe (:mod:`tinydancer.learning.recipe`).

    The parameters are quantised once: the int8 copy gives ``size_bytes_int8`` and, with ``quantize``,
    is what the artifact stores. The artifact has no calibrator and no operating point yet
    (:func:`calibrate_router`, :func:`tune_router`); a Router serving it uses the implicit ``p0.5``.

    Args:
        frame: Outcomes (``prompt``, ``weak_correct``, ``strong_correct``; ``subject`` for that split).
        out: Artifact path (``.safetensors``).
        split: ``"random"`` or ``"subject"``.
        seed: Seed of the split (and of training when ``train`` is None).
        featurizer: Default: the recipe's (``DEFAULT_FEATURIZER``).
        model: Keyword arguments of :class:`FastGRNNConfig` besides ``input_dim`` (the featuriser's dim);
            default: the recipe's (hidden 16).
        train: Default: the recipe's (``default_train_config(seed)``).
        quantize: Store int8 parameters (single models only).
        data_tag: Where the data came from, stored with the split.
        ensemble: Members to train (seeds ``train.seed`` onwards) and store stacked; 1 for one model.
        weak_model: The cheap model's name (default: ``frame.attrs["weak_model"]``, else ``"weak"``).
        strong_model: The expensive model's name (default: ``frame.attrs["strong_model"]``, else ``"strong"``).
        prices: ``(weak, strong)`` dollars per million tokens, or None.
        target: What the score estimates (:data:`~tinydancer.learning.labels.TRAINING_TARGETS`; default the
            recipe's ``"strong_gain"``).

    Returns:
        A :class:`TrainedRouter`.

    Raises:
        ConfigError: ``quantize`` with ``ensemble > 1``, or ``ensemble < 1``.

    Examples:
        >>> import tempfile
        >>> from tinydancer.datasets.outcomes import make_synthetic_outcomes
        >>> f = make_synthetic_outcomes(400, 0).rename(columns={"weak": "weak_correct", "strong": "strong_correct"})
        >>> trained = train_router(f, Path(tempfile.mkdtemp()) / "m.safetensors",
        ...     featurizer=FeaturizerConfig(kind="wordllama_mean"), train=TrainConfig(epochs=2, progress=False))
        >>> trained.row_counts["train"], trained.size_bytes_int8 < trained.size_bytes_float32
        (160, True)
    """
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 1:
        raise ConfigError(f"ensemble: expected an integer >= 1, got {ensemble!r}")
    if quantize and ensemble > 1:
        raise ConfigError("quantize: int8 storage is for single models; train the ensemble without --quantize")
    feat = featurizer or DEFAULT_FEATURIZER
    prepared = prepare_split(frame, feat, split, seed, target=target)
    mcfg = FastGRNNConfig(input_dim=feat.dim, **(DEFAULT_MODEL if model is None else model))
    tcfg = train or default_train_config(seed)
    train_rows, val_rows = prepared.data("train"), prepared.data("val")
    configs = [dataclasses.replace(tcfg, seed=tcfg.seed + k) for k in range(ensemble)]
    results = train_members(mcfg, train_rows, val_rows, configs, ngram_buckets=feat.ngram_buckets)
    result = results[0]
    int8 = quantize_params(result.params)
    params: Any = int8 if quantize else result.params
    bag = result.ngram_weights
    if ensemble > 1:
        params = stack_params([r.params for r in results])
        bag = None if bag is None else np.stack([r.ngram_weights for r in results if r.ngram_weights is not None])
    bag_bytes = 0 if result.ngram_weights is None else result.ngram_weights.nbytes
    artifact = PromptRouterArtifact(
        params=params,
        model_config=mcfg,
        featurizer=feat,
        norm=prepared.stats,
        ngram_weights=bag,
        **trained_policy(frame, split, seed, data_tag, weak_model, strong_model, prices, target),
    )
    return TrainedRouter(
        path=save_prompt_router(out, artifact),
        result=result,
        split=split,
        seed=seed,
        rows=prepared.rows,
        size_bytes_float32=model_size_bytes(result.params) + bag_bytes,
        size_bytes_int8=model_size_bytes(int8) + bag_bytes,
        quantized=quantize,
        members=ensemble,
    )


def predict_scores(
    params: object, config: FastGRNNConfig, x: np.ndarray, mask: np.ndarray, batch_size: int = SCORE_BATCH
) -> np.ndarray:
    """Raw router scores of every row, ``batch_size`` rows per jitted call, as float64.

    Args:
        params: FastGRNN parameters (float32 or int8).
        config: Their architecture.
        x: [N, T, D] normalised features.
        mask: [N, T] valid steps.
        batch_size: Rows per call (bounds the memory of one call; the last batch may be smaller).

    Returns:
        [N] float64 scores.

    Raises:
        InvalidInputError: ``batch_size`` is not a positive integer.

    Examples:
        >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
        >>> cfg = FastGRNNConfig(input_dim=3, hidden_dim=4)
        >>> x, m = np.ones((5, 2, 3), np.float32), np.ones((5, 2), bool)
        >>> p = init_fastgrnn_params(cfg, 0)
        >>> np.allclose(predict_scores(p, cfg, x, m, batch_size=2), predict_scores(p, cfg, x, m))
        True
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    chunks = [
        np.asarray(fastgrnn_predict(params, config, x[i : i + batch_size], mask[i : i + batch_size]))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)


class ScoredFrame(NamedTuple):
    """Raw router scores of a frame and the checkpoint's metadata (unpacks as ``scores, metadata``)."""

    scores: np.ndarray
    metadata: dict[str, str]


def score_frame(path: str | Path, frame: pd.DataFrame, *, batch_size: int = SCORE_BATCH) -> ScoredFrame:
    """Raw router scores for every row, and the artifact's metadata.

    The scores are the serving path's (:func:`~tinydancer.model.scorer_router.serving_scorer`, what a Router
    runs), uncalibrated, as float64.

    Args:
        path: An artifact written by :func:`train_router` or :func:`~tinydancer.learning.train_scorer_router`
            (or a FastGRNN checkpoint trained on prompts).
        frame: Outcomes with a ``prompt`` column.
        batch_size: Rows per scoring call.

    Returns:
        A :class:`ScoredFrame`: [N] float64 scores and the metadata.

    Raises:
        ModelLoadError: The file is not a prompt router (a part is missing or inconsistent).
        InvalidInputError: ``batch_size`` is not a positive integer.
    """
    artifact, metadata = _read_router(path)
    return ScoredFrame(_raw_scores(artifact, frame, batch_size), metadata)


def _read_router(path: str | Path) -> tuple[RouterArtifact, dict[str, str]]:
    """The artifact (a FastGRNN prompt router or a scorer router) and its metadata strings, from one read."""
    file = read_safetensors(path, "prompt router")
    return router_from_file(file), dict(file.metadata or {})


def _raw_scores(artifact: RouterArtifact, frame: pd.DataFrame, batch_size: int) -> np.ndarray:
    """[N] float64 uncalibrated scores of the frame's prompts, ``batch_size`` prompts per scoring call."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    scorer = serving_scorer(artifact, uncertainty="original")
    prompts = frame["prompt"].astype(str).tolist()
    chunks = [
        scorer.score(prompts[i : i + batch_size], threshold=math.inf).p_raw for i in range(0, len(prompts), batch_size)
    ]
    return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)


#: Checkpoint metadata key of the pass mark the calibrator was fitted with (:func:`calibrate_router`).
PASS_MARK_KEY = "pass_mark"


def stored_pass_mark(meta: dict[str, str]) -> float:
    """The pass mark stored by :func:`calibrate_router` (:data:`~tinydancer.learning.labels.PASS_MARK` when none).

    Examples:
        >>> stored_pass_mark({}), stored_pass_mark({"pass_mark": "0.7"})
        (0.5, 0.7)
    """
    return check_pass_mark(json.loads(meta[PASS_MARK_KEY])) if PASS_MARK_KEY in meta else PASS_MARK


def stored_calibrator(meta: dict[str, str]) -> Calibrator:
    """The calibrator saved by :func:`calibrate_router` (identity when none)."""
    if "calibrator" not in meta:
        return Calibrator("none")
    raw = json.loads(meta["calibrator"])
    return Calibrator(raw["kind"], raw["a"], raw["b"], tuple(raw["xs"]), tuple(raw["ys"]))


def evaluation_rows(frame: pd.DataFrame, meta: dict[str, str], which: str) -> dict[str, np.ndarray]:
    """Rows to use: the stored split when evaluating on the training data, else everything as test.

    Args:
        frame: The outcomes being evaluated.
        meta: The checkpoint's metadata (its ``split``).
        which: ``"test"`` (the stored split's rows; every row when none is stored) or ``"all"``
            (every row is both calibration and test row: another dataset than the training one).

    Raises:
        InvalidInputError: ``which`` is neither.
    """
    if which not in ("test", "all"):
        raise InvalidInputError(f"which: expected 'test' or 'all', got {which!r}")
    split = json.loads(meta.get("split", "{}"))
    if which == "all" or not split:
        every = np.arange(len(frame))
        return {"cal": every, "test": every}
    return split_rows(frame, split["kind"], int(split["seed"]))


class CalibratedRouter(NamedTuple):
    """What :func:`calibrate_router` fitted and wrote.

    Attributes:
        path: The checkpoint written (with the calibrator in its metadata).
        calibrator: The fitted calibrator.
        ece_cal_before: ECE of the raw scores on the calibration rows.
        ece_cal_after: ECE of the calibrated scores on the same rows (in-sample).
    """

    path: Path
    calibrator: Calibrator
    ece_cal_before: float
    ece_cal_after: float


def calibrate_router(
    model: str | Path,
    frame: pd.DataFrame,
    method: str = "platt",
    *,
    out: str | Path | None = None,
    batch_size: int = SCORE_BATCH,
    pass_mark: float = PASS_MARK,
    alpha: float = 0.1,
) -> CalibratedRouter:
    """Fit a calibrator and a conformal quantile on the stored split's calibration rows; store both.

    The calibrator maps scores to P(the strong model is needed) on the binary label of the artifact's training
    target (:func:`strong_needed`): P(the weak model fails) for ``"weak_fails"``, P(the strong model scores
    higher) for ``"strong_gain"``; ``pass_mark`` is stored with it (``evaluate`` uses it unless told otherwise).
    The split-conformal quantile at ``alpha`` is fitted on the calibrated scores of the same rows and gives a Router its
    prediction sets. Operating points already in the artifact are dropped: their thresholds were tuned
    on the old calibration (tune again).

    Args:
        model: An artifact written by :func:`train_router` or :func:`~tinydancer.learning.train_scorer_router`.
        frame: The outcomes it was trained on (their stored split gives the calibration rows).
        method: One of :data:`~tinydancer.learning.calibration.CALIBRATORS`.
        out: Artifact to write (default: overwrite ``model``).
        batch_size: Rows per scoring call.
        pass_mark: Weak outcomes below it are failures (any value in (0, 1] on 0/1 outcomes).
        alpha: Conformal miscoverage level in (0, 1).

    Returns:
        A :class:`CalibratedRouter`.

    Raises:
        InvalidInputError: ``pass_mark`` is not in (0, 1].
        DataError: too few calibration rows for ``alpha``, or a single class among them.
    """
    mark = check_pass_mark(pass_mark)
    artifact, meta = _read_router(model)
    scores = _raw_scores(artifact, frame, batch_size)
    cal_rows = evaluation_rows(frame, meta, "test")["cal"]
    y = strong_needed(frame, artifact.target, mark)[cal_rows]
    calibrator = fit_calibrator(method, scores[cal_rows], y)
    calibrated = apply_calibrator(calibrator, scores[cal_rows])
    conformal = ConformalSpec(conformal_quantile(calibrated, y, alpha), alpha)
    artifact = dataclasses.replace(
        artifact,
        calibrator=calibrator,
        pass_mark=mark,
        conformal=conformal,
        operating_points={},
        default_operating_point=None,
        reference={
            "p_strong": reference_quantiles(calibrated),
            "prompt_chars": reference_quantiles(frame["prompt"].astype(str).str.len().to_numpy()[cal_rows]),
        },
    )
    path = save_router(out or model, artifact)
    return CalibratedRouter(path, calibrator, ece(scores[cal_rows], y), ece(calibrated, y))


#: ``tune --target`` names -> :func:`~tinydancer.learning.evaluation.tune_threshold` targets.
TARGET_NAMES = {"strong-share": "strong_share", "quality": "quality_share", "weak-error": "weak_error"}


class TuningTarget(NamedTuple):
    """What to tune an operating point for: ``target`` (a tune_threshold target), ``value`` and ``delta``."""

    target: str
    value: float
    delta: float | None = None


def parse_target(text: str) -> TuningTarget:
    """``strong-share=0.5``, ``quality=0.95`` or ``weak-error=0.2@0.1`` (alpha at delta) -> :class:`TuningTarget`.

    Raises:
        InvalidInputError: anything else, or a level outside its range.

    Examples:
        >>> parse_target("weak-error=0.2@0.1")
        TuningTarget(target='weak_error', value=0.2, delta=0.1)
        >>> parse_target("quality=0.95").target
        'quality_share'
    """
    expected = "strong-share=S, quality=Q or weak-error=ALPHA@DELTA (e.g. strong-share=0.5)"
    name, _, level = str(text).partition("=")
    if name not in TARGET_NAMES or not level:
        raise InvalidInputError(f"target: expected {expected}, got {text!r}")
    value_text, at, delta_text = level.partition("@")
    try:
        value = float(value_text)
        delta = float(delta_text) if at else (0.1 if name == "weak-error" else None)
    except ValueError:
        raise InvalidInputError(f"target: expected {expected}, got {text!r}") from None
    if at and name != "weak-error":
        raise InvalidInputError(f"target: only weak-error takes @DELTA, got {text!r}")
    high = math.inf if name == "quality" else 1.0
    if not (0.0 <= value <= high) or (delta is not None and not 0.0 < delta < 1.0):
        raise InvalidInputError(f"target: expected levels in [0, 1] (delta in (0, 1)), got {text!r}")
    return TuningTarget(TARGET_NAMES[name], value, delta)


def _float32_ceiling(threshold: float) -> float:
    """The least float32 >= ``threshold``: ``p >= t`` then reads the same on float32 and float64 scores."""
    if not math.isfinite(threshold):
        return threshold
    t32 = np.float32(threshold)
    if float(t32) < threshold:
        t32 = np.nextafter(t32, np.float32(np.inf))
    return float(t32)


class TunedOperatingPoint(NamedTuple):
    """What :func:`tune_router` added: the point's ``name``, the ``point`` and the artifact ``path`` written."""

    name: str
    point: OperatingPoint
    path: Path


def tune_router(
    model: str | Path,
    frame: pd.DataFrame,
    target: str | TuningTarget,
    name: str,
    *,
    default: bool = False,
    rows: str = "cal",
    out: str | Path | None = None,
    data_tag: str = "",
) -> TunedOperatingPoint:
    """Tune a threshold for a target and store it in the artifact as a named operating point.

    The threshold is tuned on the calibrated scores of the serving path (float32, exactly what a Router
    computes), so routing the tuning rows reproduces the reported share. It is stored as the least
    float32 at or above the tuned value, which changes no decision.

    Args:
        model: An artifact (calibrated or not).
        frame: Outcomes.
        target: ``"strong-share=0.5"``, ``"quality=0.95"``, ``"weak-error=0.2@0.1"`` or a :class:`TuningTarget`.
        name: The operating point's name (1-64 characters of ``[A-Za-z0-9_.:-]``); an existing one is replaced.
        default: Make it the one a Router starts with (the first point stored becomes the default anyway).
        rows: ``"cal"``: the stored split's calibration rows (every row when none is stored); ``"all"``:
            every row (outcomes of another dataset, or of recorded traffic).
        out: Artifact to write (default: overwrite ``model``).
        data_tag: Where the data came from, stored in the point's ``source``.

    Returns:
        A :class:`TunedOperatingPoint`.

    Raises:
        InvalidInputError: a malformed target or ``rows``.
        ConfigError: an invalid name.
    """
    goal = target if isinstance(target, TuningTarget) else parse_target(target)
    if rows not in ("cal", "all"):
        raise InvalidInputError(f"rows: expected 'cal' or 'all', got {rows!r}")
    artifact, meta = _read_router(model)
    split = dict(artifact.split)
    chosen = evaluation_rows(frame, meta, "test" if rows == "cal" else "all")["cal"]
    part = frame.iloc[chosen]
    scorer = serving_scorer(artifact, uncertainty="original")
    p = scorer.score(part["prompt"].astype(str).tolist(), threshold=math.inf).p_strong.astype(np.float64)
    weak = part["weak_correct"].to_numpy(np.float64)
    strong = part["strong_correct"].to_numpy(np.float64)
    tuned = tune_threshold(p, weak, strong, goal.target, goal.value, goal.delta or 0.1, pass_mark=artifact.pass_mark)
    threshold = _float32_ceiling(tuned.threshold)
    use = calls_strong(p, threshold)
    kept_errors = weak_failed(weak[~use], artifact.pass_mark)
    point = OperatingPoint(
        threshold=threshold,
        target=goal.target,
        value=goal.value,
        delta=goal.delta,
        reached={
            "strong_share": float(use.mean()),
            "quality": float(np.where(use, strong, weak).mean()),
            "weak_error": float(kept_errors.mean()) if kept_errors.size else 0.0,
        },
        source={
            "data": data_tag or split.get("data", ""),
            "data_sha256": frame_sha256(frame),
            "rows": rows,
            "n_rows": len(part),
            "split": split.get("kind") if rows == "cal" and split else None,
            "seed": split.get("seed") if rows == "cal" and split else None,
            "created": _now_iso(),
        },
    )
    first = not artifact.operating_points
    path = save_router(out or model, artifact.with_operating_point(name, point, default=default or first))
    return TunedOperatingPoint(name, point, path)


class WeakErrorThreshold(NamedTuple):
    """The Learn-then-Test threshold (tuned on the calibration rows) and what it does on the test rows.

    Attributes:
        alpha: Tolerated weak-error rate among the queries kept on the weak model.
        delta: Allowed failure probability of the guarantee.
        threshold: Strong iff calibrated score >= this (``-inf``: nothing certified, all strong).
        test_weak_share: Share of test rows kept on the weak model.
        test_weak_error: Weak-error rate (``weak_correct < pass_mark``) among them (0 when none is kept).
    """

    alpha: float
    delta: float
    threshold: float
    test_weak_share: float
    test_weak_error: float


class StrongShareThreshold(NamedTuple):
    """A threshold tuned on the calibration rows for a target, and its strong-call share on the test rows.

    Attributes:
        threshold: Strong iff calibrated score >= this.
        test_strong_share: Share of test rows sent to the strong model.
    """

    threshold: float
    test_strong_share: float


class ReportThresholds(NamedTuple):
    """The three tuned thresholds of a report (JSON keys ``weak_error``, ``strong_share_0.5``, ``quality_share_0.95``).

    Attributes:
        weak_error: Learn-then-Test at the report's ``alpha`` and ``delta``.
        strong_share_50: At most half of the calls strong.
        quality_share_95: The least strong share reaching 95 % of the strong model's quality.
    """

    weak_error: WeakErrorThreshold
    strong_share_50: StrongShareThreshold
    quality_share_95: StrongShareThreshold

    def as_dict(self) -> dict[str, dict[str, float]]:
        """The JSON form of ``python -m tinydancer evaluate --json`` (its ``thresholds`` object)."""
        return {
            "weak_error": self.weak_error._asdict(),
            "strong_share_0.5": self.strong_share_50._asdict(),
            "quality_share_0.95": self.quality_share_95._asdict(),
        }


class EvaluationReport(NamedTuple):
    """Routing, calibration and uncertainty figures on the test rows (thresholds tuned on the calibration rows).

    Attributes:
        n_test: Test rows.
        apgr: APGR of RouteLLM's 10-quantile sweep (calibrated scores).
        apgr_dense: APGR of the dense sweep (every distinct score).
        cpt20: CPT(20 %) of the 10-quantile curve; ``cpt50`` and ``cpt80`` likewise.
        cpt50: CPT(50 %).
        cpt80: CPT(80 %).
        auroc: AUROC of the calibrated scores against the target's binary label (:func:`strong_needed`: "weak model
            fails", ``weak_correct < pass_mark``, for ``weak_fails``; "strong model scores higher" for ``strong_gain``).
        ece: ECE (15 equal-width bins) of the calibrated scores.
        ece_raw: ECE of the raw scores.
        ece_equal_mass: ECE with 15 equal-mass bins (calibrated).
        coverage: Split-conformal coverage on the test rows.
        coverage_target: Its nominal level ``1 - alpha``.
        uncertain_share: Share of test rows whose conformal set holds both labels.
        calibrator: The calibrator's kind.
        thresholds: The three tuned thresholds.
    """

    n_test: int
    apgr: float
    apgr_dense: float
    cpt20: float
    cpt50: float
    cpt80: float
    auroc: float
    ece: float
    ece_raw: float
    ece_equal_mass: float
    coverage: float
    coverage_target: float
    uncertain_share: float
    calibrator: str
    thresholds: ReportThresholds

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of ``python -m tinydancer evaluate --json`` (without its ``model`` key).

        Infinite thresholds stay ``inf`` here; the CLI writes them as ``null``.
        """
        return {**self._asdict(), "thresholds": self.thresholds.as_dict()}


def report(
    scores: np.ndarray,
    frame: pd.DataFrame,
    rows: dict[str, np.ndarray],
    cal: Calibrator,
    alpha: float = 0.1,
    delta: float = 0.1,
    pass_mark: float = PASS_MARK,
    target: str = "weak_fails",
) -> EvaluationReport:
    """All routing/calibration/uncertainty figures of any scores on the test rows (thresholds tuned on ``cal``).

    Outcomes may be 0/1 or scores in [0, 1]: APGR, CPT and the ``strong_share`` / ``quality_share``
    thresholds use the outcomes (quality = mean outcome); AUROC, ECE and conformal coverage use the binary
    label of ``target`` (:func:`strong_needed`: ``weak_correct < pass_mark`` for ``"weak_fails"``), the
    weak-error threshold "the weak model fails" whatever the target.

    Args:
        scores: [N] raw scores P(weak fails) of every row of ``frame``.
        frame: Outcomes (``weak_correct``, ``strong_correct``).
        rows: At least ``"cal"`` and ``"test"`` row indices.
        cal: Calibrator applied to the scores first (``Calibrator("none")``: none).
        alpha: Conformal miscoverage and guaranteed weak-error level.
        delta: Failure probability of the weak-error guarantee.
        pass_mark: Weak outcomes below it are failures (any value in (0, 1] on 0/1 outcomes).
        target: The scores' training target (an artifact's ``target``).

    Returns:
        An :class:`EvaluationReport`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> p = rng.random(2000)
        >>> f = pd.DataFrame({"weak_correct": (rng.random(2000) > p) * 1.0, "strong_correct": np.ones(2000)})
        >>> r = report(p, f, {"cal": np.arange(1000), "test": np.arange(1000, 2000)}, Calibrator("none"))
        >>> r.n_test, r.auroc > 0.7, r.thresholds.strong_share_50.test_strong_share < 0.55
        (1000, True, True)
    """
    test, calr = rows["test"], rows["cal"]
    weak = frame["weak_correct"].to_numpy(np.float64)
    strong = frame["strong_correct"].to_numpy(np.float64)
    y = strong_needed(frame, target, pass_mark)
    y_fail = failure_labels(frame, pass_mark)
    p_test, p_cal = apply_calibrator(cal, scores[test]), apply_calibrator(cal, scores[calr])
    curve = routing_curve(p_test, weak[test], strong[test])
    dense = routing_curve(p_test, weak[test], strong[test], dense_thresholds(p_test))
    q = conformal_quantile(p_cal, y[calr], alpha)
    sets = conformal_sets(p_test, q)
    coverage = float(np.mean(sets[np.arange(test.size), y[test].astype(int)]))
    guaranteed = tune_threshold(p_cal, weak[calr], strong[calr], "weak_error", alpha, delta, pass_mark=pass_mark)
    kept = ~calls_strong(p_test, guaranteed.threshold)
    share50 = tune_threshold(p_cal, weak[calr], strong[calr], "strong_share", 0.5)
    quality95 = tune_threshold(p_cal, weak[calr], strong[calr], "quality_share", 0.95)
    thresholds = ReportThresholds(
        weak_error=WeakErrorThreshold(
            alpha=alpha,
            delta=delta,
            threshold=guaranteed.threshold,
            test_weak_share=float(kept.mean()),
            test_weak_error=float(np.mean(y_fail[test][kept])) if kept.any() else 0.0,
        ),
        strong_share_50=StrongShareThreshold(
            share50.threshold, float(np.mean(calls_strong(p_test, share50.threshold)))
        ),
        quality_share_95=StrongShareThreshold(
            quality95.threshold, float(np.mean(calls_strong(p_test, quality95.threshold)))
        ),
    )
    return EvaluationReport(
        n_test=int(test.size),
        apgr=apgr(curve),
        apgr_dense=apgr(dense),
        cpt20=cpt(curve, 0.2),
        cpt50=cpt(curve, 0.5),
        cpt80=cpt(curve, 0.8),
        auroc=auroc(p_test, y[test]),
        ece=ece(p_test, y[test]),
        ece_raw=ece(scores[test], y[test]),
        ece_equal_mass=ece(p_test, y[test], strategy="quantile"),
        coverage=coverage,
        coverage_target=1 - alpha,
        uncertain_share=float(np.mean(sets.all(axis=1))),
        calibrator=cal.kind,
        thresholds=thresholds,
    )


def evaluate_router(
    model: str | Path,
    frame: pd.DataFrame,
    *,
    rows: str = "test",
    alpha: float = 0.1,
    delta: float = 0.1,
    batch_size: int = SCORE_BATCH,
    pass_mark: float | None = None,
) -> EvaluationReport:
    """Score a checkpoint on outcomes and report it with its stored calibrator (``python -m tinydancer evaluate``).

    Args:
        model: An artifact written by :func:`train_router` or :func:`~tinydancer.learning.train_scorer_router`
            (and :func:`calibrate_router`).
        frame: Outcomes.
        rows: ``"test"``: the stored split's calibration and test rows; ``"all"``: every row (another dataset).
        alpha: Conformal miscoverage and guaranteed weak-error level.
        delta: Failure probability of the weak-error guarantee.
        batch_size: Rows per jitted scoring call.
        pass_mark: Weak outcomes below it are failures (default: the one stored by :func:`calibrate_router`,
            else :data:`~tinydancer.learning.labels.PASS_MARK`).

    Returns:
        An :class:`EvaluationReport`.
    """
    scores, meta = score_frame(model, frame, batch_size=batch_size)
    mark = stored_pass_mark(meta) if pass_mark is None else check_pass_mark(pass_mark)
    target = json.loads(meta.get("target", '"weak_fails"'))
    rows_used = evaluation_rows(frame, meta, rows)
    return report(scores, frame, rows_used, stored_calibrator(meta), alpha, delta, mark, target)
