"""Small requests: route() at 1-100 candidates, every way of building a request, against the original in one run.

Run: ``nice .venv/bin/python -m benchmarks.small_requests`` (``--counts 1 10 100 --dim 384 --rounds 6
--budget-s 20 --out results.json``).

Issue 16, item 2: with metrics and logs on and spans at 1%, at most 1.5x the original at 1 candidate and
faster than it from 10 up, for requests built from ``Candidate`` objects (the guide's way) and with
``RoutingRequest.from_arrays`` (and, where the library has one, ``RoutingRequest.from_store``). Each call builds
the request and routes it (default ``RouterConfig``, random default model, breaker on, dim 384,
``LogConfig(renderer="none")``); settings ``metrics_logs`` (no tracing) and ``spans_1pct`` (a ``TracingSystem``
sampling 1%, in-memory exporter). Rounds interleave one block per (count, setting, way) with one run of the
original in node (``benchmarks/original_route.js``, ``process.hrtime`` around each awaited ``route()``), so both
see the same phases of a shared machine's load. Ratio = tinydancer median / original median.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry import trace

import tinydancer as td
from benchmarks.route_latency import NOW_S, ensure_oracle, run_original, time_calls
from tinydancer.observability import LogConfig, TracingConfig, TracingSystem

#: Issue 16, item 2: tinydancer / original at most this at 1 candidate, below 1.0 from 10 up.
GOAL_RATIO_AT_1 = 1.5


def make_routers() -> tuple[dict[str, td.Router], TracingSystem]:
    """The two settings' routers (default config, random model) and the 1% tracing system to shut down."""
    spans = TracingSystem(TracingConfig(service_name="bench", sampling_ratio=0.01, in_memory_capacity=20_000))
    config = td.RouterConfig(model_path=str(Path(".cache") / "absent-model.safetensors"))
    logs = LogConfig(renderer="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "model file not found: using a random model"
        routers = {
            "metrics_logs": td.Router(config, log_config=logs, tracing=trace.NoOpTracerProvider()),
            "spans_1pct": td.Router(config, log_config=logs, tracing=spans),
        }
    return routers, spans


def request_builders(n: int, dim: int, seed: int) -> dict[str, Callable[[], td.RoutingRequest]]:
    """Per way, a function building a request of ``n`` random candidates (the same values every way)."""
    rng = np.random.default_rng(seed)
    query = rng.uniform(-1, 1, dim).astype(np.float32)
    embeddings = rng.uniform(-1, 1, (n, dim)).astype(np.float32)
    ids = [f"candidate-{i}" for i in range(n)]
    created = (NOW_S - rng.integers(0, 3600, n)).tolist()
    access = rng.integers(0, 1000, n).tolist()
    success = rng.uniform(0, 1, n).tolist()
    rows = list(embeddings)  # one [D] array per candidate, as an application holds them

    def objects() -> td.RoutingRequest:
        return td.RoutingRequest(
            query_embedding=query,
            candidates=[
                td.Candidate(id=i, embedding=e, created_at=c, access_count=a, success_rate=s)
                for i, e, c, a, s in zip(ids, rows, created, access, success, strict=True)
            ],
        )

    def arrays() -> td.RoutingRequest:
        return td.RoutingRequest.from_arrays(
            query, embeddings, ids=ids, created_at=created, access_count=access, success_rate=success
        )

    builders = {"objects": objects, "arrays": arrays}
    if hasattr(td, "CandidateStore"):  # absent in versions before the store (for before/after runs)
        store = td.CandidateStore(dim)
        store.upsert_many(ids, embeddings, created_at=created, access_count=access, success_rate=success)
        builders["store"] = lambda: td.RoutingRequest.from_store(store, query, ids)
    return builders


def measure(counts: list[int], dim: int, rounds: int, budget_s: float) -> dict[str, Any]:
    """Medians per (setting, count, way) and of the original per count, interleaved in rounds."""
    routers, spans = make_routers()
    builders = {n: request_builders(n, dim, seed=n) for n in counts}
    ways = list(builders[counts[0]])
    blocks: dict[int, int] = {}
    for n in counts:  # warm-up: compiles each bucket once, sizes the blocks
        for router in routers.values():
            for build in builders[n].values():
                time_calls(lambda r=router, b=build: r.route(b(), now=NOW_S), 10)
        probe = float(np.median(time_calls(lambda b=builders[n]["objects"]: routers["metrics_logs"].route(b()), 5)))
        share = budget_s / 2 / rounds / len(counts) / len(routers) / len(ways)
        blocks[n] = max(5, int(share / (probe * 1e-6)))
    ours: dict[str, dict[int, dict[str, list[float]]]] = {
        s: {n: {w: [] for w in ways} for n in counts} for s in routers
    }
    theirs: dict[int, list[float]] = {n: [] for n in counts}
    root, node = ensure_oracle(), shutil.which("node")
    info: dict[str, Any] | None = None
    for _ in range(rounds):
        for n in counts:
            for setting, router in routers.items():
                for way, build in builders[n].items():
                    ours[setting][n][way] += time_calls(lambda r=router, b=build: r.route(b(), now=NOW_S), blocks[n])
        spans.clear()
        if root is not None and node is not None:
            info = run_original(node, root, counts, dim, budget_s / 2 / rounds)
            for n in counts:
                theirs[n] += info["rows"][n]["samples_us"]
    spans.shutdown()
    original = {n: float(np.median(s)) for n, s in theirs.items()} if info is not None else None
    rows: dict[str, Any] = {}
    for setting, per_count in ours.items():
        for n, per_way in per_count.items():
            row: dict[str, Any] = {"setting": setting, "n": n, "calls": len(per_way[ways[0]])}
            for way, samples in per_way.items():
                row[f"{way}_us"] = float(np.median(samples))
                if original is not None:
                    row[f"{way}_ratio"] = row[f"{way}_us"] / original[n]
            row["original_us"] = None if original is None else original[n]
            rows[f"{setting}/{n}"] = row
    meta = None if info is None else {k: v for k, v in info.items() if k != "rows"}
    return {"ways": ways, "rows": rows, "original_info": meta}


def table(result: dict[str, Any]) -> str:
    """Markdown table of :func:`measure`, with the goal verdict per row."""
    ways = result["ways"]
    head = " | ".join(f"{w} us" for w in ways) + " | original us | " + " | ".join(f"{w} / original" for w in ways)
    lines = [f"| setting | N | {head} | goal |", "|---|---:|" + "---:|" * (2 * len(ways) + 1) + ":---|"]
    for row in result["rows"].values():
        ratios = [row.get(f"{w}_ratio") for w in ways]
        limit = GOAL_RATIO_AT_1 if row["n"] == 1 else 1.0
        if any(r is None for r in ratios):
            verdict = "no original"
        else:
            verdict = "met" if all(r <= limit if row["n"] == 1 else r < limit for r in ratios) else "NOT met"
        cells = " | ".join(f"{row[f'{w}_us']:.0f}" for w in ways)
        orig = "-" if row["original_us"] is None else f"{row['original_us']:.0f}"
        rat = " | ".join("-" if r is None else f"{r:.2f}x" for r in ratios)
        lines.append(f"| {row['setting']} | {row['n']} | {cells} | {orig} | {rat} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, measure, print the table (with the command, date, machine), optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--budget-s", type=float, default=20.0, help="wall time of the timed rounds, about")
    parser.add_argument("--out", type=Path, default=None, help="write every number as JSON here")
    args = parser.parse_args(argv)
    td.configure_jax()  # synchronous dispatch, as a serving process runs (BENCHMARKS.md)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"
    machine = f"{platform.processor() or platform.machine()}, load average {load}"
    command = "python -m benchmarks.small_requests " + " ".join(argv if argv is not None else sys.argv[1:])
    result = measure(args.counts, args.dim, args.rounds, args.budget_s)
    result |= {"command": command, "date": stamp, "machine": machine, "tinydancer": td.__version__}
    print(f"\n# {command}\n# {stamp}, {machine}, dim {args.dim}, {args.rounds} rounds")
    print(table(result))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
