"""End-to-end router experiments on outcome frames: seeded splits, featurise, train, score, report.

The stateful shell behind ``python -m tinydancer train|calibrate|evaluate`` and
``benchmarks/evaluate_mmlu.py``: it wires :mod:`tinydancer.datasets.outcomes`,
:mod:`tinydancer.model.text_features`, :mod:`tinydancer.learning.train`, :mod:`tinydancer.learning.calibration`
and :mod:`tinydancer.learning.evaluation` together.
The split is a pure function of (frame, kind, seed) and is stored in the model's metadata, so
``evaluate`` scores exactly the rows ``train`` never saw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from tinydancer.errors import DataError, ModelLoadError
from tinydancer.learning.calibration import (
    Calibrator,
    apply_calibrator,
    auroc,
    conformal_quantile,
    conformal_sets,
    ece,
)
from tinydancer.learning.evaluation import apgr, cpt, dense_thresholds, routing_curve, tune_threshold
from tinydancer.learning.train import RoutingData, TrainConfig, TrainResult, train_fastgrnn
from tinydancer.model.compression import model_size_bytes, quantize_params
from tinydancer.model.fastgrnn import FastGRNNConfig, fastgrnn_predict
from tinydancer.model.fastgrnn_file import load_fastgrnn, save_fastgrnn
from tinydancer.model.text_features import (
    FeaturizerConfig,
    NormStats,
    TextFeaturizer,
    apply_norm,
    featurizer_from_metadata,
    featurizer_metadata,
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

    Examples:
        >>> f = pd.DataFrame({"subject": list("aabbccddee") * 10})
        >>> {k: len(v) for k, v in split_rows(f, "random", 0).items()}
        {'train': 40, 'val': 10, 'cal': 10, 'test': 40}
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
        chosen: list[str] = []
        for name in names:
            if np.isin(subjects, chosen).sum() >= n_test:
                break
            chosen.append(str(name))
        in_test = np.isin(subjects, chosen)
        test, rest = np.flatnonzero(in_test), rng.permutation(np.flatnonzero(~in_test))
    cal, val, train = rest[:n_cal], rest[n_cal : n_cal + n_val], rest[n_cal + n_val :]
    return {k: np.sort(v) for k, v in (("train", train), ("val", val), ("cal", cal), ("test", test))}


class Prepared(NamedTuple):
    """Featurised outcomes: x [N, T, D] (normalised), mask [N, T], and the frame."""

    x: np.ndarray
    mask: np.ndarray
    frame: pd.DataFrame


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


def labels(frame: pd.DataFrame) -> np.ndarray:
    """Routing label: 1 when the weak model fails (``1 - weak_correct``).

    Examples:
        >>> labels(pd.DataFrame({"weak_correct": [1.0, 0.0]})).tolist()
        [0.0, 1.0]
    """
    return (1.0 - frame["weak_correct"].to_numpy(np.float64)).astype(np.float32)


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
) -> tuple[Path, TrainResult, dict[str, Any]]:
    """Split, featurise, fit normalisation on the training rows, train, and save the checkpoint.

    Returns:
        ``(path, result, info)``; ``info`` has sizes in bytes and row counts.

    Examples:
        >>> import tempfile
        >>> from tinydancer.datasets.outcomes import make_synthetic_outcomes
        >>> f = make_synthetic_outcomes(400, 0).rename(columns={"weak": "weak_correct", "strong": "strong_correct"})
        >>> p, r, info = train_router(f, Path(tempfile.mkdtemp()) / "m.safetensors",
        ...     featurizer=FeaturizerConfig(kind="wordllama_mean"), train=TrainConfig(epochs=2, progress=False))
        >>> info["rows"]["train"]
        160
    """
    feat = featurizer or FeaturizerConfig()
    rows = split_rows(frame, split, seed)
    x_raw, mask = featurize_frame(frame, feat, None)
    stats = fit_norm_stats(x_raw[rows["train"]], mask[rows["train"]])
    x = apply_norm(x_raw, stats, mask)
    y = labels(frame)
    mcfg = FastGRNNConfig(input_dim=feat.dim, **(model or {}))
    tcfg = train or TrainConfig(seed=seed)
    tr, va = rows["train"], rows["val"]
    result = train_fastgrnn(mcfg, RoutingData(x[tr], mask[tr], y[tr]), RoutingData(x[va], mask[va], y[va]), tcfg)
    params = quantize_params(result.params) if quantize else result.params
    meta = featurizer_metadata(feat, stats)
    meta["split"] = json.dumps({"kind": split, "seed": seed, "data": data_tag})
    path = save_fastgrnn(out, params, mcfg, meta)
    info = {
        "rows": {k: len(v) for k, v in rows.items()},
        "size_bytes_float32": model_size_bytes(result.params),
        "size_bytes_int8": model_size_bytes(quantize_params(result.params)),
        "best_epoch": result.best_epoch,
    }
    return path, result, info


def score_frame(path: str | Path, frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, str]]:
    """Raw router scores P(weak fails) for every row, and the checkpoint's metadata.

    Raises:
        ModelLoadError: The checkpoint lacks featuriser metadata.
    """
    params, mcfg, meta = load_fastgrnn(path)
    feat, stats = featurizer_from_metadata(meta)
    if feat.dim != mcfg.input_dim:
        raise ModelLoadError(f"{path}: featuriser dim {feat.dim} does not match input_dim {mcfg.input_dim}")
    x, mask = featurize_frame(frame, feat, stats)
    scores = np.concatenate(
        [
            np.asarray(fastgrnn_predict(params, mcfg, x[i : i + 2048], mask[i : i + 2048]))
            for i in range(0, len(x), 2048)
        ]
    )
    return scores.astype(np.float64), meta


def stored_calibrator(meta: dict[str, str]) -> Calibrator:
    """The calibrator saved by ``calibrate`` (identity when none)."""
    if "calibrator" not in meta:
        return Calibrator("none")
    raw = json.loads(meta["calibrator"])
    return Calibrator(raw["kind"], raw["a"], raw["b"], tuple(raw["xs"]), tuple(raw["ys"]))


def evaluation_rows(frame: pd.DataFrame, meta: dict[str, str], which: str) -> dict[str, np.ndarray]:
    """Rows to use: the stored split when evaluating on the training data, else everything as test."""
    split = json.loads(meta.get("split", "{}"))
    if which == "all" or not split:
        every = np.arange(len(frame))
        return {"cal": every, "test": every}
    return split_rows(frame, split["kind"], int(split["seed"]))


def report(
    scores: np.ndarray,
    frame: pd.DataFrame,
    rows: dict[str, np.ndarray],
    cal: Calibrator,
    alpha: float = 0.1,
    delta: float = 0.1,
) -> dict[str, Any]:
    """All routing/calibration/uncertainty figures on the test rows (thresholds tuned on ``cal``)."""
    test, calr = rows["test"], rows["cal"]
    weak = frame["weak_correct"].to_numpy(np.float64)
    strong = frame["strong_correct"].to_numpy(np.float64)
    y = labels(frame).astype(np.float64)
    p_test, p_cal = apply_calibrator(cal, scores[test]), apply_calibrator(cal, scores[calr])
    curve = routing_curve(p_test, weak[test], strong[test])
    dense = routing_curve(p_test, weak[test], strong[test], dense_thresholds(p_test))
    q = conformal_quantile(p_cal, y[calr], alpha)
    sets = conformal_sets(p_test, q)
    coverage = float(np.mean(sets[np.arange(test.size), y[test].astype(int)]))
    guaranteed = tune_threshold(p_cal, weak[calr], strong[calr], "weak_error", alpha, delta)
    kept = p_test < guaranteed.threshold
    share50 = tune_threshold(p_cal, weak[calr], strong[calr], "strong_share", 0.5)
    quality95 = tune_threshold(p_cal, weak[calr], strong[calr], "quality_share", 0.95)
    return {
        "n_test": int(test.size),
        "apgr": apgr(curve),
        "apgr_dense": apgr(dense),
        "cpt20": cpt(curve, 0.2),
        "cpt50": cpt(curve, 0.5),
        "cpt80": cpt(curve, 0.8),
        "auroc": auroc(p_test, y[test]),
        "ece": ece(p_test, y[test]),
        "ece_raw": ece(scores[test], y[test]),
        "ece_equal_mass": ece(p_test, y[test], strategy="quantile"),
        "coverage": coverage,
        "coverage_target": 1 - alpha,
        "uncertain_share": float(np.mean(sets.all(axis=1))),
        "calibrator": cal.kind,
        "thresholds": {
            "weak_error": {
                "alpha": alpha,
                "delta": delta,
                "threshold": guaranteed.threshold,
                "test_weak_share": float(kept.mean()),
                "test_weak_error": float(np.mean(1 - weak[test][kept])) if kept.any() else 0.0,
            },
            "strong_share_0.5": {
                "threshold": share50.threshold,
                "test_strong_share": float(np.mean(p_test >= share50.threshold)),
            },
            "quality_share_0.95": {
                "threshold": quality95.threshold,
                "test_strong_share": float(np.mean(p_test >= quality95.threshold)),
            },
        },
    }
