"""The benchmark runner of issue 6: tinydancer side by side with the original router, in one run.

Measures, in this order and in one process (the original in node, interleaved with ours):

1. route() latency per call (median, p95) at 1/10/100/1000 candidates, dim 384, for four
   observability settings and for the original (``@ruvector/tiny-dancer@0.1.22``, installed into
   ``.cache/oracle`` with npm if missing); ratio tinydancer / original per row;
2. the route kernel's compile cache before and after a steady-state loop (must not grow);
3. batch scoring throughput from feature rows and from 384-d embeddings vs plain numpy;
4. feature extraction ns per candidate at dim 384;
5. FastGRNN dense / sparse / int8 model size and latency;
6. training: FastGRNN vs the original's ``trainRouter`` on the MMLU outcomes (``benchmarks/training.py``;
   skipped, with the reason, when the dataset or node is absent).

Writes ``<out>/<mode>.json`` (with the machine, load average, versions, date and the command),
``<out>/<mode>.md`` (tables and goal verdicts) and ``<out>/route_latency_<mode>.png``. ``<out>`` is the
git-ignored ``.cache/bench/results`` unless asked: ``--out benchmarks/results`` (``make bench
BENCH_OUT=benchmarks/results``) refreshes the results committed with the docs.

Usage: ``.venv/bin/python -m benchmarks.run [--quick] [--out DIR]``  (``make bench`` / ``make bench-quick``)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from benchmarks.batch_throughput import measure_batch, measure_feature_extraction
from benchmarks.model_rows import measure_fastgrnn
from benchmarks.report import batch_table, goals, plot_latency, route_table, training_table
from benchmarks.route_latency import SETTINGS, compile_check, measure_routes
from benchmarks.training import DEFAULT_DATA, SCRATCH_RESULTS
from benchmarks.training import measure as measure_training
from tinydancer import DataError, configure_jax

COUNTS = [1, 10, 100, 1000]
DIM = 384


def python_reference_us(calls: int = 2000) -> float:
    """Median us of ``sum(range(1000))``: a load gauge (~10-15 us on an idle core of this kind)."""
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        sum(range(1000))
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples)) * 1e6


def machine_facts() -> dict[str, Any]:
    """nproc, CPU model, load average, a Python speed gauge, versions."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "loadavg": list(os.getloadavg()),
        "python_reference_us": python_reference_us(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "jax_devices": [str(d) for d in jax.devices()],
        "jax_cpu_async_dispatch": bool(jax.config.read("jax_cpu_enable_async_dispatch")),
    }


def run(quick: bool) -> dict[str, Any]:
    """Every measurement; returns the JSON-able result."""
    started = time.time()
    config: dict[str, Any] = {
        "quick": quick,
        "counts": COUNTS,
        "dim": DIM,
        "route_budget_s": 0.6 if quick else 3.0,
        "rounds": 2 if quick else 4,
        "batch_sizes": [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000],
        "embedding_batch_sizes": [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000],
        "batch_reps": 3 if quick else 5,
    }
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.run", *sys.argv[1:]]),
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": config,
        "settings": SETTINGS,
        "machine": machine_facts(),
    }
    print(f"route latency: {COUNTS} candidates, dim {DIM} ...", flush=True)
    result["route"] = measure_routes(COUNTS, DIM, config["route_budget_s"], config["rounds"])
    result["compile_check"] = compile_check(COUNTS, DIM, calls=10 if quick else 50)
    print(f"compile check, timed loop: {result['route']['timed_loop_compile_cache']}", flush=True)
    print(f"compile check, steady-state loop: {result['compile_check']}", flush=True)
    print("batch scoring ...", flush=True)
    result["batch"] = measure_batch(config["batch_sizes"], config["embedding_batch_sizes"], DIM, config["batch_reps"])
    result["feature_extraction"] = measure_feature_extraction(10_000 if quick else 100_000, DIM, config["batch_reps"])
    print("fastgrnn model rows ...", flush=True)
    result["fastgrnn"] = measure_fastgrnn(reps=50 if quick else 300)
    print("training vs trainRouter ...", flush=True)
    try:
        result["training"] = measure_training(DEFAULT_DATA)
    except (DataError, FileNotFoundError) as exc:  # no MMLU outcomes here, or no node/npm
        result["training"] = {"measured": False, "why": str(exc)}
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    result["machine"]["python_reference_us_end"] = python_reference_us()
    result["wall_s"] = time.time() - started
    return result


def markdown(result: dict[str, Any], plot_name: str) -> str:
    """The result as Markdown: machine, command, tables, goal verdicts."""
    m = result["machine"]
    ref_start, ref_end = m.get("python_reference_us", float("nan")), m.get("python_reference_us_end", float("nan"))
    fe = result["feature_extraction"]
    lines = [
        f"Run {result['date_utc']}: `{result['command']}` ({result['wall_s']:.0f} s)",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), load average {m['loadavg'][0]:.2f} at start, "
        f"{m['loadavg_end'][0]:.2f} at end; sum(range(1000)) took {ref_start:.1f} us at start and {ref_end:.1f} us "
        f"at end (idle: ~10-15 us); Python {m['python']}, JAX {m['jax']}, numpy {m['numpy']}.",
        "",
        "### route() latency per call",
        "",
        *route_table(result),
        "",
        f"![route latency]({plot_name})",
        "",
        "### Batch scoring",
        "",
        *batch_table(result),
        "",
        f"Feature extraction at dim {fe['dim']} (N={fe['n']:,}): tinydancer jitted "
        f"{fe['tinydancer_ns_per_candidate']['median']:.0f} ns/candidate (best "
        f"{fe['tinydancer_ns_per_candidate']['best']:.0f}), numpy {fe['numpy_ns_per_candidate']['median']:.0f} "
        f"(best {fe['numpy_ns_per_candidate']['best']:.0f}).",
        "",
        "### FastGRNN variants",
        "",
    ]
    fg = result["fastgrnn"]
    if fg.get("measured"):
        lines += [
            f"Config: {fg['config']}",
            "",
            "| variant | size bytes | batch 1 median us | batch 1000 median us |",
            "|---|---:|---:|---:|",
        ]
        for name, row in fg["variants"].items():
            lines.append(f"| {name} | {row['size_bytes']:,} | {row['batch1_us']:.1f} | {row['batch1000_us']:.1f} |")
    else:
        lines.append(f"Not measured: {fg.get('why')}")
    lines += ["", "### Training vs `trainRouter` (`benchmarks/training.py`)", "", *training_table(result)]
    lines += ["", "### Goals", "", "| goal | met | numbers |", "|---|---|---|"]
    for goal, ok, text in goals(result):
        verdict = "n/a" if ok is None else ("yes" if ok else "**no**")
        lines.append(f"| {goal} | {verdict} | {text} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    configure_jax()  # synchronous dispatch, as a serving process runs (BENCHMARKS.md)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short budgets and smaller batches (minutes)")
    parser.add_argument(
        "--out", type=Path, default=SCRATCH_RESULTS, help="results folder (default: %(default)s, git-ignored)"
    )
    parser.add_argument("--from-json", type=Path, help="only re-render the Markdown and plot of a saved result")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    if args.from_json is not None:
        result = json.loads(args.from_json.read_text())
        mode = "quick" if result["config"]["quick"] else "full"
    else:
        result = run(args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    plot_name = f"route_latency_{mode}.png"
    plot_latency(result, args.out / plot_name)
    (args.out / f"{mode}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    text = markdown(result, plot_name)
    (args.out / f"{mode}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
