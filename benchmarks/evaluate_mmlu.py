"""FastGRNN router vs TF-IDF + logistic regression vs random/oracle on the RouteLLM MMLU outcomes.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.evaluate_mmlu [--data routellm-mmlu] [--out benchmarks/results/mmlu_eval.json]

(``make evaluate-mmlu``; without ``--out`` the JSON goes to the git-ignored ``.cache/bench/results``.)

For a random split and a split by subject (seed 0; test 40%, calibration 10%, validation 10%, train
40% of rows, see ``tinydancer.learning.experiment.split_rows``): label = "weak model wrong"; RouteLLM's
10-quantile protocol on the test rows; temperature scaling and conformal/LTT thresholds fitted on the
calibration rows. TF-IDF (1-2 grams) + logistic regression trains on train+validation rows. Prints a
markdown table and writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from benchmarks.training import DEFAULT_DATA, SCRATCH_RESULTS
from tinydancer import configure_jax
from tinydancer.datasets import load as load_outcomes
from tinydancer.learning import (
    SPLITS,
    Calibrator,
    RoutingData,
    TrainConfig,
    apgr,
    bootstrap_ci,
    ensemble_predict,
    fit_calibrator,
    labels,
    oracle_curve,
    predict_scores,
    report,
    routing_curve,
    split_rows,
    stack_params,
    train_fastgrnn,
)
from tinydancer.model import (
    FastGRNNConfig,
    FeaturizerConfig,
    TextFeaturizer,
    apply_norm,
    fit_norm_stats,
    model_size_bytes,
    quantize_params,
)

#: The FastGRNN variants evaluated: name -> (featuriser, model kwargs, training kwargs).
VARIANTS: dict[str, tuple[FeaturizerConfig, dict[str, Any], dict[str, Any]]] = {
    "fastgrnn_mean256_h32": (
        FeaturizerConfig("wordllama_mean", dim=256),
        {"hidden_dim": 32},
        {"epochs": 30, "learning_rate": 3e-3},
    ),
    "fastgrnn_mean256_h16_w8": (
        FeaturizerConfig("wordllama_mean", dim=256),
        {"hidden_dim": 16, "w_rank": 8},
        {"epochs": 30, "learning_rate": 1e-2},
    ),
    "fastgrnn_tokens64x32_h16": (
        FeaturizerConfig("wordllama_tokens", dim=64, max_tokens=32),
        {"hidden_dim": 16},
        {"epochs": 15, "learning_rate": 1e-2},
    ),
}


#: Variants also evaluated as a deep ensemble of this many seeds (mean probability).
ENSEMBLED = {"fastgrnn_mean256_h32": 5}
KEEP = ("apgr", "cpt50", "cpt80", "auroc")
#: Weak-error levels for the Learn-then-Test guaranteed threshold (delta = 0.1).
LTT_ALPHAS = (0.1, 0.15, 0.2, 0.25)


def _with_calibration(scores: np.ndarray, frame: Any, rows: dict[str, np.ndarray], y: np.ndarray) -> dict[str, Any]:
    raw = report(scores, frame, rows, Calibrator("none"))
    cal = fit_calibrator("temperature", scores[rows["cal"]], y[rows["cal"]])
    calibrated = report(scores, frame, rows, cal).as_dict()
    calibrated["ece_raw"] = raw.ece
    calibrated["ltt"] = {
        str(alpha): report(scores, frame, rows, cal, alpha=alpha).thresholds.weak_error._asdict()
        for alpha in LTT_ALPHAS
    }
    return calibrated


def main() -> None:
    configure_jax()  # synchronous dispatch, as a serving process runs (BENCHMARKS.md)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="bundled dataset name or path (default: %(default)s)")
    parser.add_argument(
        "--out", default=str(SCRATCH_RESULTS / "mmlu_eval.json"), help="JSON file (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="split seed (default: %(default)s)")
    ns = parser.parse_args()
    frame = load_outcomes(ns.data)
    y = labels(frame).astype(np.float64)
    features: dict[FeaturizerConfig, tuple[np.ndarray, np.ndarray]] = {}
    for feat, _, _ in VARIANTS.values():
        if feat not in features:
            features[feat] = TextFeaturizer(feat)(frame["prompt"].tolist())
    results: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        rows = split_rows(frame, split, ns.seed)
        test = rows["test"]
        weak, strong = frame["weak_correct"].to_numpy()[test], frame["strong_correct"].to_numpy()[test]
        entry: dict[str, Any] = {"rows": {k: len(v) for k, v in rows.items()}}
        entry["oracle"] = {"apgr": apgr(oracle_curve(weak, strong))}
        rng = np.random.default_rng(ns.seed)
        entry["random"] = report(rng.random(len(frame)), frame, rows, Calibrator("none")).as_dict()
        fit_rows = np.concatenate([rows["train"], rows["val"]])
        started = time.perf_counter()
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        xt = vec.fit_transform(frame["prompt"].to_numpy()[fit_rows])
        lr = LogisticRegression(max_iter=2000, C=1.0).fit(xt, y[fit_rows])
        tfidf_scores = lr.predict_proba(vec.transform(frame["prompt"].to_numpy()))[:, 1]
        entry["tfidf_lr"] = _with_calibration(tfidf_scores, frame, rows, y)
        entry["tfidf_lr"]["train_seconds"] = time.perf_counter() - started
        entry["tfidf_lr"]["apgr_ci95"] = _apgr_ci(tfidf_scores, frame, test)
        mean_feat = FeaturizerConfig("wordllama_mean", dim=256)
        if mean_feat in features:
            with tempfile.TemporaryDirectory() as tmp:
                npm = _npm_router(frame, rows, features[mean_feat][0][:, 0, :], Path(tmp))
            if npm is not None:
                entry["npm_trainRouter"] = _with_calibration(npm[0], frame, rows, y) | npm[1]
        for name, (feat, model_kw, train_kw) in VARIANTS.items():
            x_raw, mask = features[feat]
            stats = fit_norm_stats(x_raw[rows["train"]], mask[rows["train"]])
            x = apply_norm(x_raw, stats, mask)
            cfg = FastGRNNConfig(input_dim=feat.dim, **model_kw)
            tr, va = rows["train"], rows["val"]
            started = time.perf_counter()
            result = train_fastgrnn(
                cfg,
                RoutingData(x[tr], mask[tr], y[tr].astype(np.float32)),
                RoutingData(x[va], mask[va], y[va].astype(np.float32)),
                TrainConfig(seed=ns.seed, progress=False, **train_kw),
            )
            seconds = time.perf_counter() - started
            scores = predict_scores(result.params, cfg, x, mask)
            entry[name] = _with_calibration(scores, frame, rows, y)
            q = quantize_params(result.params)
            int8 = report(predict_scores(q, cfg, x, mask), frame, rows, Calibrator("none"))
            entry[name] |= {
                "train_seconds": seconds,
                "epochs_run": len(result.history),
                "best_epoch": result.best_epoch,
                "size_bytes_float32": model_size_bytes(result.params),
                "size_bytes_int8": model_size_bytes(q),
                "int8": {k: getattr(int8, k) for k in KEEP},
                "apgr_ci95": _apgr_ci(scores, frame, test),
            }
            if name in ENSEMBLED:
                members = [result.params]
                for seed in range(ns.seed + 1, ns.seed + ENSEMBLED[name]):
                    train_data = RoutingData(x[tr], mask[tr], y[tr].astype(np.float32))
                    val_data = RoutingData(x[va], mask[va], y[va].astype(np.float32))
                    tcfg = TrainConfig(seed=seed, progress=False, **train_kw)
                    members.append(train_fastgrnn(cfg, train_data, val_data, tcfg).params)
                stacked = stack_params(members)
                chunks = [
                    np.asarray(ensemble_predict(stacked, cfg, x[i : i + 2048], mask[i : i + 2048]).mean)
                    for i in range(0, len(x), 2048)
                ]
                ens = np.concatenate(chunks).astype(np.float64)
                key = f"{name}_ens{len(members)}"
                entry[key] = _with_calibration(ens, frame, rows, y)
                entry[key] |= {
                    "size_bytes_float32": len(members) * model_size_bytes(result.params),
                    "size_bytes_int8": len(members) * model_size_bytes(q),
                    "apgr_ci95": _apgr_ci(ens, frame, test),
                }
        results[split] = entry
    results["full_data_timing"] = _full_data_timing(frame, y, features, ns.seed)
    out = Path(ns.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_finite(results), indent=2, allow_nan=False))
    print(_markdown(results))


def _apgr_ci(scores: np.ndarray, frame: Any, test: np.ndarray) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the 10-quantile APGR over the test rows (200 resamples)."""
    weak, strong = frame["weak_correct"].to_numpy()[test], frame["strong_correct"].to_numpy()[test]
    return bootstrap_ci(lambda s, w, g: apgr(routing_curve(s, w, g)), (scores[test], weak, strong), n_boot=200)


def _npm_router(
    frame: Any, rows: dict[str, np.ndarray], embeddings: np.ndarray, workdir: Path
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The original's `trainRouter` (npm) on the same mean embeddings and training rows; None if absent."""
    oracle = Path(os.environ.get("TINYDANCER_ORACLE_DIR", ".cache/oracle"))
    if shutil.which("node") is None or not (oracle / "node_modules" / "@ruvector" / "tiny-dancer").is_dir():
        return None
    weak, strong = frame["weak_correct"].to_numpy(), frame["strong_correct"].to_numpy()
    train = [
        {"embedding": embeddings[i].tolist(), "scores": {"weak": float(weak[i]), "strong": float(strong[i])}}
        for i in rows["train"]
    ]
    spec = {"train": train, "score": embeddings.tolist(), "epochs": 40, "out_model": str(workdir / "npm.safetensors")}
    (workdir / "npm_in.json").write_text(json.dumps(spec))
    script = Path(__file__).with_name("train_router_npm.js")
    env = {**os.environ, "TINYDANCER_ORACLE_DIR": str(oracle.resolve())}
    subprocess.run(
        ["node", str(script), str(workdir / "npm_in.json"), str(workdir / "npm_out.json")], check=True, env=env
    )
    out = json.loads((workdir / "npm_out.json").read_text())
    # Its output is P(the cheap model is good enough); the router score is the complement.
    return 1.0 - np.asarray(out["scores"], np.float64), {"train_seconds": out["seconds"], **out["result"]}


def _full_data_timing(
    frame: Any, y: np.ndarray, features: dict[FeaturizerConfig, tuple[np.ndarray, np.ndarray]], seed: int
) -> dict[str, Any]:
    """Wall time to train on every row (fixed epochs, no early stop), featurisation excluded."""
    every = np.arange(len(frame))
    timing: dict[str, Any] = {"rows": len(frame)}
    started = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    LogisticRegression(max_iter=2000).fit(vec.fit_transform(frame["prompt"].to_numpy()), y)
    timing["tfidf_lr_seconds"] = time.perf_counter() - started
    for name, (feat, model_kw, train_kw) in VARIANTS.items():
        x_raw, mask = features[feat]
        x = apply_norm(x_raw, fit_norm_stats(x_raw, mask), mask)
        cfg = FastGRNNConfig(input_dim=feat.dim, **model_kw)
        data = RoutingData(x[every], mask[every], y.astype(np.float32))
        tcfg = TrainConfig(seed=seed, progress=False, patience=10_000, **train_kw)
        started = time.perf_counter()
        train_fastgrnn(cfg, data, data, tcfg)
        timing[name] = {"seconds": time.perf_counter() - started, "epochs": tcfg.epochs}
    return timing


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _markdown(results: dict[str, dict[str, Any]]) -> str:
    head = "| split | router | APGR | CPT(50%) | CPT(80%) | AUROC | ECE raw -> temp. | coverage (90%) "
    lines = [head + "| LTT a=0.2: weak share / error | size (int8 APGR) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for split, entry in results.items():
        if split == "full_data_timing":
            continue
        lines.append(f"| {split} | oracle | {entry['oracle']['apgr']:.3f} | | | | | | | |")
        for name, r in entry.items():
            if name in ("rows", "oracle"):
                continue
            ltt = r["ltt"]["0.2"] if "ltt" in r else r["thresholds"]["weak_error"]
            size = ""
            ci = f" [{r['apgr_ci95'][0]:.3f}, {r['apgr_ci95'][1]:.3f}]" if "apgr_ci95" in r else ""
            if "size_bytes_int8" in r:
                size = f"{r['size_bytes_float32']} B f32, {r['size_bytes_int8']} B int8"
                size += f" ({r['int8']['apgr']:.3f})" if "int8" in r else ""
            ece_txt = f"{r['ece']:.3f}"
            if r["calibrator"] != "none":
                ece_txt = f"{r['ece_raw']:.3f} -> {r['ece']:.3f}"
            lines.append(
                f"| {split} | {name} | {r['apgr']:.3f}{ci} | {r['cpt50']:.3f} | {r['cpt80']:.3f} | {r['auroc']:.3f} | "
                f"{ece_txt} | {r['coverage']:.3f} | {ltt['test_weak_share']:.3f} / {ltt['test_weak_error']:.3f} "
                f"| {size} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
