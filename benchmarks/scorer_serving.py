"""Serving any scorer: what the Router adds on top of a scorer's own ``score()``, beside the FastGRNN router.

One process, one run, interleaved rounds (the shared machine's load hits every method alike), on a seeded
sample of the bundled MMLU prompts:

* ``scorer router`` rows: ``Router.route_prompt(text)`` serving a ``tinydancer-scorer-router-v1`` artifact
  (``train_scorer_router`` -> ``calibrate_router`` (Platt) -> ``tune_router`` (strong share 0.5), random split,
  seed 0), with the guide's default observability (Prometheus metrics, INFO logs, the collector; no tracing),
  for the built-in ``tfidf_lr`` and ``prompt_stats`` scorers;
* ``scorer alone`` rows: the same fitted scorer's ``score([text])``, the floor the Router cannot go below;
* ``FastGRNN router``: ``Router.route_prompt(text)`` serving the default recipe's artifact trained,
  calibrated and tuned the same way (``--epochs`` caps training: speed does not depend on it);
* batch rows: ``Router.route_prompts(texts)`` (columnar, ``as_frame=False``) and ``scorer.score(texts)`` over
  every sampled prompt, prompts/s.

Per-prompt figures are medians (p50) and p95 of per-call wall times; "router overhead" is the scorer router's
p50 minus its scorer's. The artifact sizes are the files' bytes.

Usage: ``.venv/bin/python -m benchmarks.scorer_serving [--prompts 300] [--rounds 4] [--epochs 3] [--out F.json]``
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry import trace

import tinydancer as td
from benchmarks.prompt_routing import percentiles, time_batch, time_each
from benchmarks.report import write_results
from benchmarks.run import machine_facts


def build(frame: Any, folder: Path, epochs: int) -> dict[str, tuple[Path, Any]]:
    """The three artifacts, trained, calibrated and tuned; name -> (path, the fitted scorer or None)."""
    built: dict[str, tuple[Path, Any]] = {}
    for scorer in (td.learning.TfidfLogisticScorer(), td.learning.PromptStatsScorer()):
        trained = td.learning.train_scorer_router(frame, folder / f"{scorer.name}.safetensors", scorer)
        built[scorer.name] = (trained.path, trained.scorer)
    recipe = dataclasses.replace(td.learning.default_train_config(progress=False), epochs=epochs)
    built["fastgrnn"] = (td.learning.train_router(frame, folder / "fastgrnn.safetensors", train=recipe).path, None)
    for path, _ in built.values():
        td.learning.calibrate_router(path, frame, "platt")
        td.learning.tune_router(path, frame, "strong-share=0.5", "share-0.5", default=True)
    return built


def measure(prompts: int, rounds: int, epochs: int) -> dict[str, Any]:
    """Per-prompt and batch timings of every method, interleaved in rounds."""
    frame = td.datasets.load("routellm-mmlu")
    texts = frame["prompt"].sample(n=prompts, random_state=0).astype(str).tolist()
    folder = Path(tempfile.mkdtemp(prefix="tinydancer-scorer-serving-"))
    built = build(frame, folder, epochs)
    logs = td.LogConfig(level="INFO", renderer="none")
    routers = {
        name: td.Router(td.RouterConfig(model_path=str(path)), log_config=logs, tracing=trace.NoOpTracerProvider())
        for name, (path, _) in built.items()
    }
    methods = {f"router {name}": routers[name].route_prompt for name in built}
    methods |= {f"scorer {name}": (lambda t, s=scorer: s.score([t])) for name, (_, scorer) in built.items() if scorer}
    batches = {f"router {name}": (lambda ts, r=r: r.route_prompts(ts, as_frame=False)) for name, r in routers.items()}
    batches |= {f"scorer {name}": scorer.score for name, (_, scorer) in built.items() if scorer}
    for fn in methods.values():  # warm-up: compiles, loads WordLlama, fills caches
        time_each(fn, texts[:20])
    for batch_fn in batches.values():
        batch_fn(texts[:64])
    samples: dict[str, list[float]] = {name: [] for name in methods}
    rates: dict[str, list[float]] = {name: [] for name in batches}
    for _ in range(rounds):
        for name, fn in methods.items():
            samples[name] += time_each(fn, texts)
        for name, batch_fn in batches.items():
            rates[name].append(time_batch(batch_fn, texts))
    result: dict[str, Any] = {
        "per_prompt": {name: percentiles(s) for name, s in samples.items()},
        "batch_prompts_per_s": {name: float(np.median(r)) for name, r in rates.items()},
        "artifact_bytes": {name: path.stat().st_size for name, (path, _) in built.items()},
    }
    result["router_overhead_us"] = {
        name: result["per_prompt"][f"router {name}"]["p50_us"] - result["per_prompt"][f"scorer {name}"]["p50_us"]
        for name, (_, scorer) in built.items()
        if scorer
    }
    return result


def table(result: dict[str, Any]) -> str:
    """Markdown: one row per artifact."""
    per, batch = result["per_prompt"], result["batch_prompts_per_s"]
    lines = [
        "| artifact | bytes | route_prompt p50 / p95 us | score([text]) p50 us | router overhead p50 us | "
        "route_prompts prompts/s | score(texts) prompts/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, size in result["artifact_bytes"].items():
        router = per[f"router {name}"]
        scorer = f"scorer {name}"
        alone = f"{per[scorer]['p50_us']:.0f}" if scorer in per else "-"
        overhead = f"{result['router_overhead_us'][name]:.0f}" if scorer in per else "-"
        scorer_rate = f"{batch[scorer]:,.0f}" if scorer in batch else "-"
        lines.append(
            f"| {name} | {size:,} | {router['p50_us']:.0f} / {router['p95_us']:.0f} | {alone} | {overhead} | "
            f"{batch[f'router {name}']:,.0f} | {scorer_rate} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=300, help="MMLU prompts sampled (seed 0)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument(
        "--epochs", type=int, default=3, help="most epochs of the FastGRNN (speed does not depend on it)"
    )
    parser.add_argument("--out", default=None, help="write the JSON here (and the Markdown beside it)")
    args = parser.parse_args(argv)
    td.configure_jax()
    started = time.perf_counter()
    result = measure(args.prompts, args.rounds, args.epochs)
    command = "python -m benchmarks.scorer_serving " + " ".join(sys.argv[1:] if argv is None else argv)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    result |= {"command": command, "machine": machine_facts(), "seconds": time.perf_counter() - started}
    text = f"# {command}\n# {stamp}, {args.prompts} prompts x {args.rounds} rounds\n{table(result)}\n"
    print(text)
    if args.out:
        write_results(args.out, result, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
