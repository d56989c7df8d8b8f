"""Training M routers at once (``train_fastgrnn_many``, one vmapped computation) against a Python loop of M.

Run: ``.venv/bin/python -m benchmarks.sweep_speed [--members 4 8] [--out benchmarks/results/sweep_speed.json]``

The default recipe (featuriser, FastGRNN, ``default_train_config``: early stopping and refit) on the bundled
MMLU outcomes' random split, seed 0 (5,614 training and 1,404 validation prompts, featurised once). For each M,
members differ in seed and learning rate (a seeds x settings sweep: M/2 seeds x {1e-3, 3e-3}); the same
configs are trained in a loop of :func:`tinydancer.learning.train_fastgrnn`, then by
:func:`tinydancer.learning.train_fastgrnn_many`, then both again. The first pair includes compilation (XLA
compiles the loop's step once per distinct epoch count, the vmapped step once per member count; shapes
compiled for an earlier M are reused), the second pair is steady state. The report gives the wall times,
the ratios and the largest weight difference between the two ways.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import time

import jax
import numpy as np

from benchmarks.report import write_results
from benchmarks.training import SCRATCH_RESULTS
from tinydancer import configure_jax
from tinydancer.datasets import load
from tinydancer.learning import (
    DEFAULT_FEATURIZER,
    DEFAULT_MODEL,
    TrainConfig,
    TrainResult,
    default_train_config,
    prepare_split,
    train_fastgrnn,
    train_fastgrnn_many,
)
from tinydancer.model import FastGRNNConfig


def configs(members: int) -> list[TrainConfig]:
    """M/2 seeds x learning rates {1e-3, 3e-3} (M even), the rest of the recipe unchanged."""
    base = default_train_config(progress=False)
    return [dataclasses.replace(base, seed=s, learning_rate=lr) for s in range(members // 2) for lr in (1e-3, 3e-3)]


def _epochs(loop: list[TrainResult], many: list[TrainResult]) -> str:
    """The chosen epochs, "loop/many" where the two ways chose differently (a near-tie in validation loss)."""
    return " ".join(
        str(a.best_epoch) if a.best_epoch == b.best_epoch else f"{a.best_epoch}/{b.best_epoch}"
        for a, b in zip(loop, many, strict=True)
    )


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[4, 8], help="members per run (even)")
    parser.add_argument("--out", default=str(SCRATCH_RESULTS / "sweep_speed.json"), help="JSON (markdown beside it)")
    args = parser.parse_args(argv)
    configure_jax()
    frame = load("routellm-mmlu")
    prepared = prepare_split(frame, DEFAULT_FEATURIZER, "random", 0)
    train, val = prepared.data("train"), prepared.data("val")
    model = FastGRNNConfig(input_dim=DEFAULT_FEATURIZER.dim, **DEFAULT_MODEL)
    buckets = DEFAULT_FEATURIZER.ngram_buckets
    rows = []
    for m in args.members:
        cfgs = configs(m)
        times: dict[str, list[float]] = {"loop": [], "many": []}
        for _ in range(2):
            started = time.perf_counter()
            loop = [train_fastgrnn(model, train, val, c, ngram_buckets=buckets) for c in cfgs]
            times["loop"].append(time.perf_counter() - started)
            started = time.perf_counter()
            many = train_fastgrnn_many(model, train, val, cfgs, ngram_buckets=buckets)
            times["many"].append(time.perf_counter() - started)
        diff = max(
            float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
            for one, other in zip(loop, many, strict=True)
            for a, b in zip(
                jax.tree.leaves((one.params, one.ngram_weights)), jax.tree.leaves((other.params, other.ngram_weights)),
                strict=True,
            )
        )  # fmt: skip
        rows.append({"members": m, "loop_s": times["loop"], "many_s": times["many"],
                     "best_epochs": _epochs(loop, many), "max_abs_weight_diff": diff})  # fmt: skip
        print(rows[-1], flush=True)
    command = "python -m benchmarks.sweep_speed --members " + " ".join(map(str, args.members))
    header = (
        f"# {command}\n# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"load average {os.getloadavg()[0]:.2f}, {len(train.y)} train / {len(val.y)} val rows\n"
    )
    lines = [
        "| members | best epochs | first run: loop / many (s) | speed-up | second run: loop / many (s) | speed-up "
        "| max abs weight diff |",
        "|---:|:---|---:|---:|---:|---:|---:|",
        *(
            f"| {r['members']} | {r['best_epochs']} | {r['loop_s'][0]:.1f} / {r['many_s'][0]:.1f} | "
            f"{r['loop_s'][0] / r['many_s'][0]:.2f}x | {r['loop_s'][1]:.1f} / {r['many_s'][1]:.1f} | "
            f"{r['loop_s'][1] / r['many_s'][1]:.2f}x | {r['max_abs_weight_diff']:.1e} |"
            for r in rows
        ),
    ]
    text = header + "\n".join(lines) + "\n"
    result = {"command": command, "rows": rows}
    write_results(args.out, result, text)
    print(text)
    return result


if __name__ == "__main__":
    main()
