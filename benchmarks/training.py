"""Training speed: tinydancer's FastGRNN against the original's ``trainRouter`` to the same validation accuracy.

Usage (from the repository root; needs the MMLU outcomes and ``make oracle``)::

    .venv/bin/python -m benchmarks.training [--data routellm-mmlu] [--out FILE]

Same rows, same inputs, same label for both routers: the RouteLLM MMLU outcomes, random split seed 0
(:func:`tinydancer.learning.experiment.split_rows`: training rows 40%, validation rows 10%), 256-d WordLlama mean
embeddings of the prompts (featurised once and cached in ``.cache/bench``; featurisation is excluded
from every time), and trainRouter's own label: "the cheap model is good enough" (its score within 0.05
of the best). ``trainRouter`` (npm 0.1.22, its defaults: hidden 12, 40 epochs, lr 0.05) trains on the
training rows; its validation accuracy on our validation rows is the target. tinydancer then trains a
FastGRNN on the same rows with ``TrainConfig(stop_at_accuracy=target)``: the wall time until it reaches
the target, XLA compilation included, is compared with trainRouter's whole run; then a full FastGRNN run
(30 epochs at most, early stopping on the validation loss) with its whole run. Each FastGRNN run is a
fresh Python process (cold XLA compilation), timed around ``train_fastgrnn`` only, as the node script
times only ``trainRouter``. Also
reported: validation accuracy and AUROC of each, seconds per epoch (median after the first), the first
epoch (compilation), peak memory (each process's peak RSS since it started, VmHWM: node with the
native trainer; Python with the interpreter, JAX and the data; plus the growth of the Python peak
during training), and the majority-class accuracy for scale.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from benchmarks.route_latency import REPO, ensure_oracle
from tinydancer import configure_jax
from tinydancer.datasets import load as load_outcomes
from tinydancer.learning import RoutingData, TrainConfig, auroc, split_rows, train_fastgrnn
from tinydancer.model import (
    FastGRNNConfig,
    FeaturizerConfig,
    TextFeaturizer,
    apply_norm,
    fastgrnn_predict,
    fit_norm_stats,
)

#: jax.monitoring event recorded once per XLA backend compilation.
BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
#: trainRouter's label tolerance: the cheap model is good enough within this of the best score.
TOLERANCE = 0.05
#: Bundled dataset name (or a path) of the MMLU outcomes.
DEFAULT_DATA = "routellm-mmlu"
#: Where benchmark runs write unless asked otherwise: git-ignored, so a run never dirties the tree.
SCRATCH_RESULTS = REPO / ".cache" / "bench" / "results"
FEATURIZER = FeaturizerConfig("wordllama_mean", dim=256)
MODEL = {"hidden_dim": 32}
TRAIN = {"epochs": 30, "learning_rate": 3e-3}


def cheap_is_enough(frame: Any) -> np.ndarray:
    """trainRouter's label per row: 1.0 when the weak model's score is within TOLERANCE of the best."""
    weak, strong = frame["weak_correct"].to_numpy(np.float64), frame["strong_correct"].to_numpy(np.float64)
    return (weak >= np.maximum(weak, strong) - TOLERANCE).astype(np.float32)


def mean_embeddings(frame: Any) -> np.ndarray:
    """[N, 256] WordLlama mean embeddings of the prompts, cached in .cache/bench by a hash of the prompts."""
    prompts = frame["prompt"].astype(str).tolist()
    digest = hashlib.sha256("\x00".join(prompts).encode()).hexdigest()[:16]
    cache = REPO / ".cache" / "bench" / f"prompts_{FEATURIZER.kind}{FEATURIZER.dim}_{digest}.npy"
    if cache.is_file():
        return np.load(cache)
    x, _ = TextFeaturizer(FEATURIZER)(prompts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, x[:, 0, :])
    return x[:, 0, :]


def run_train_router(embeddings: np.ndarray, frame: Any, rows: dict[str, np.ndarray]) -> dict[str, Any]:
    """trainRouter on the training rows (node), scored on the validation rows."""
    root = ensure_oracle()
    if root is None:
        raise FileNotFoundError("node/npm not found: the original router cannot run (make oracle)")
    weak, strong = frame["weak_correct"].to_numpy(), frame["strong_correct"].to_numpy()
    train = [
        {"embedding": embeddings[i].tolist(), "scores": {"weak": float(weak[i]), "strong": float(strong[i])}}
        for i in rows["train"]
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = {"train": train, "score": embeddings[rows["val"]].tolist(), "epochs": 40, "out_model": str(work / "m")}
        (work / "in.json").write_text(json.dumps(spec))
        env = {**os.environ, "TINYDANCER_ORACLE_DIR": str(root.resolve())}
        script = REPO / "benchmarks" / "train_router_npm.js"
        subprocess.run(["node", str(script), str(work / "in.json"), str(work / "out.json")], check=True, env=env)
        out = json.loads((work / "out.json").read_text())
    p_cheap, label = np.asarray(out["scores"], np.float64), cheap_is_enough(frame)[rows["val"]]
    return {
        "seconds": out["seconds"],
        "val_accuracy": float(np.mean((p_cheap >= 0.5) == (label > 0.5))),
        "val_auroc": auroc(p_cheap, label),
        "max_rss_mib": out["max_rss_kb"] / 1024,
        **out["result"],
    }


def _status_kib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmHWM: peak RSS since exec), KiB.

    ``ru_maxrss`` would not do: Linux carries the parent's RSS at fork time across exec into it.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return float(line.split()[1])
    return float("nan")


def run_tinydancer(x: np.ndarray, y: np.ndarray, rows: dict[str, np.ndarray], target: float | None) -> dict[str, Any]:
    """FastGRNN on the same rows (label: the cheap model is NOT enough), stopping at ``target`` accuracy."""
    tr, va = rows["train"], rows["val"]
    ones = np.ones((len(x), 1), bool)
    cfg = FastGRNNConfig(input_dim=x.shape[1], **MODEL)
    compiles: list[float] = []  # XLA backend compilations during training (seconds each)
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **_: compiles.append(seconds) if event == BACKEND_COMPILE else None
    )
    rss_before = _status_kib("VmRSS")
    started = time.perf_counter()
    result = train_fastgrnn(
        cfg,
        RoutingData(x[tr, None, :], ones[tr], 1.0 - y[tr]),
        RoutingData(x[va, None, :], ones[va], 1.0 - y[va]),
        TrainConfig(seed=0, progress=False, stop_at_accuracy=target, **TRAIN),  # type: ignore[arg-type]
    )
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    epochs = result.history["seconds"].to_numpy()
    p_strong = np.asarray(fastgrnn_predict(result.params, cfg, x[va, None, :], ones[va]), np.float64)
    return {
        "seconds": seconds,
        "epochs_run": len(epochs),
        "val_accuracy": float(np.mean((p_strong >= 0.5) == (y[va] < 0.5))),
        "val_auroc": auroc(p_strong, 1.0 - y[va]),
        "first_epoch_seconds": float(epochs[0]),
        "seconds_per_epoch_after_first": float(np.median(epochs[1:])) if len(epochs) > 1 else None,
        "xla_compiles": len(compiles),
        "xla_compile_seconds": float(sum(compiles)),
        "peak_rss_mib": peak / 1024,  # the whole Python process: interpreter, JAX, data, training
        "peak_rss_growth_mib": (peak - rss_before) / 1024,
        "reached_target": target is None or bool(result.history["val_accuracy"].iloc[-1] >= target),
    }


def cold_run(x: np.ndarray, y: np.ndarray, rows: dict[str, np.ndarray], target: float | None) -> dict[str, Any]:
    """:func:`run_tinydancer` in a fresh Python process, so XLA compiles from scratch as a new user's would."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs, out = Path(tmp) / "inputs.npz", Path(tmp) / "out.json"
        np.savez(inputs, x=x, y=y, train=rows["train"], val=rows["val"])
        command = [sys.executable, "-m", "benchmarks.training", "--worker", str(inputs), "--worker-out", str(out)]
        if target is not None:
            command += ["--target", repr(target)]
        subprocess.run(command, check=True, cwd=REPO)
        result: dict[str, Any] = json.loads(out.read_text())
    return result


def measure(data: str | Path) -> dict[str, Any]:
    """The whole comparison (see the module docstring); JSON-able."""
    frame = load_outcomes(data)
    rows = split_rows(frame, "random", 0)
    raw = mean_embeddings(frame)
    y = cheap_is_enough(frame)
    original = run_train_router(raw, frame, rows)
    x = apply_norm(raw, fit_norm_stats(raw[rows["train"]]))  # statistics of the training rows only
    to_target = cold_run(x, y, rows, original["val_accuracy"])
    full = cold_run(x, y, rows, None)
    return {
        "measured": True,
        "command": "python -m benchmarks.training",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": {"train": len(rows["train"]), "val": len(rows["val"])},
        "majority_val_accuracy": float(max(y[rows["val"]].mean(), 1 - y[rows["val"]].mean())),
        "original_trainRouter": original,
        "tinydancer_fastgrnn_to_target": to_target,
        "tinydancer_fastgrnn_full_run": full,
        "speedup_to_target": original["seconds"] / to_target["seconds"],
        "speedup_full_runs": original["seconds"] / full["seconds"],
        "loadavg": os.getloadavg(),
    }


def main() -> None:
    configure_jax()  # synchronous dispatch, as a serving process runs (BENCHMARKS.md)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="bundled dataset name or path (default: %(default)s)")
    parser.add_argument(
        "--out", default=str(SCRATCH_RESULTS / "training.json"), help="JSON file (default: %(default)s)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # inputs .npz: run one training, write --worker-out
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--target", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        data = np.load(args.worker)
        rows = {"train": data["train"], "val": data["val"]}
        result = run_tinydancer(data["x"], data["y"], rows, args.target)
        Path(args.worker_out).write_text(json.dumps(result))
        return
    result = measure(args.data)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
