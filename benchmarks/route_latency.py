"""route() latency per call for tinydancer (four observability settings) and the original (through node).

The tinydancer settings are timed interleaved, in rounds (one block of calls per setting per round),
so that the load of the shared machine hits every setting alike. The original is timed inside node
(``benchmarks/original_route.js``, ``process.hrtime`` per call) right after, so no process start or
JSON transfer is counted on its side either.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry import trace

from tinydancer.observability import LogConfig, TracingConfig, TracingSystem
from tinydancer.routing import Router, RouterConfig, RoutingRequest

REPO = Path(__file__).resolve().parent.parent
ORACLE_PACKAGE = "@ruvector/tiny-dancer@0.1.22"
NOW_S = 1_700_000_000.0

#: Setting name -> what it means (the column headers of BENCHMARKS.md).
SETTINGS: dict[str, str] = {
    "off": "logs filtered out (level CRITICAL, renderer none), no tracing; metrics + collector stay on",
    "metrics_logs": "metrics + INFO logs captured into the collector (renderer none), no tracing",
    "spans_1pct": "metrics + logs + TracingSystem sampling 1% (in-memory exporter)",
    "spans_100pct": "metrics + logs + TracingSystem sampling 100% (in-memory exporter, <= 10 candidate spans)",
}


@dataclass
class Timing:
    """Per-call samples of one (setting, candidate count)."""

    samples_us: list[float]

    def summary(self) -> dict[str, float]:
        """median / p95 / mean / min in microseconds and the number of calls."""
        a = np.asarray(self.samples_us)
        return {
            "calls": len(a),
            "median_us": float(np.median(a)),
            "p95_us": float(np.percentile(a, 95)),
            "mean_us": float(a.mean()),
            "min_us": float(a.min()),
        }


def make_request(n: int, dim: int, seed: int) -> RoutingRequest:
    """A request of ``n`` random candidates like the node script's (ages within the last hour)."""
    rng = np.random.default_rng(seed)
    return RoutingRequest.from_arrays(
        rng.uniform(-1, 1, dim).astype(np.float32),
        rng.uniform(-1, 1, (n, dim)).astype(np.float32),
        ids=[f"candidate-{i}" for i in range(n)],
        created_at=NOW_S - rng.integers(0, 3600, n),
        access_count=rng.integers(0, 1000, n),
        success_rate=rng.uniform(0, 1, n),
    )


def make_routers() -> tuple[dict[str, Router], list[TracingSystem]]:
    """One router per setting (random default model, breaker on), and the tracing systems to shut down."""
    noop = trace.NoOpTracerProvider()
    config = RouterConfig(model_path=str(REPO / ".cache" / "absent-model.safetensors"))
    span_cfg = {"service_name": "bench", "in_memory_capacity": 20_000}
    one_pct = TracingSystem(TracingConfig(sampling_ratio=0.01, **span_cfg))  # type: ignore[arg-type]
    all_spans = TracingSystem(TracingConfig(sampling_ratio=1.0, **span_cfg))  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "model file not found: using a random model"
        routers = {
            "off": Router(config, log_config=LogConfig(level="CRITICAL", renderer="none"), tracing=noop),
            "metrics_logs": Router(config, log_config=LogConfig(renderer="none"), tracing=noop),
            "spans_1pct": Router(config, log_config=LogConfig(renderer="none"), tracing=one_pct),
            "spans_100pct": Router(config, log_config=LogConfig(renderer="none"), tracing=all_spans),
        }
    return routers, [one_pct, all_spans]


def time_calls(fn: Callable[[], object], calls: int) -> list[float]:
    """Wall time of each of ``calls`` calls, microseconds."""
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def measure_routes(counts: list[int], dim: int, budget_s: float, rounds: int = 4) -> dict[str, Any]:
    """Per-call route() latency of every setting and of the original, interleaved in rounds.

    Each round times a block of calls per (count, setting) in this process, then runs the node
    script for all counts; samples are pooled over rounds, so slow phases of the shared machine
    hit both routers alike.

    Returns:
        {"tinydancer": {setting: {n: summary}}, "original": {n: summary} | None, "original_info": {...},
        "timed_loop_compile_cache": route_kernel cache size after the warm-up and after the timed rounds}
    """
    routers, systems = make_routers()
    requests = {n: make_request(n, dim, seed=n) for n in counts}
    blocks: dict[int, int] = {}
    for n, request in requests.items():  # warm-up: compiles each bucket once, sizes the blocks
        for router in routers.values():
            time_calls(lambda r=router, q=request: r.route(q, now=NOW_S), 10)
        probe = float(np.median(time_calls(lambda q=request: routers["off"].route(q, now=NOW_S), 5)))
        blocks[n] = max(3, int(budget_s / rounds / len(routers) / (probe * 1e-6)))
    kernel = routers["off"].model.kernel  # every router here serves the same default config
    cache_before = kernel._cache_size()  # after the warm-up: the timed loop must not compile
    ours: dict[str, dict[int, list[float]]] = {name: {n: [] for n in counts} for name in routers}
    theirs: dict[int, list[float]] = {n: [] for n in counts}
    info: dict[str, Any] | None = None
    root, node = ensure_oracle(), shutil.which("node")
    for _ in range(rounds):
        for n, request in requests.items():
            for name, router in routers.items():
                ours[name][n] += time_calls(lambda r=router, q=request: r.route(q, now=NOW_S), blocks[n])
            for system in systems:
                system.clear()
        if root is not None and node is not None:
            info = run_original(node, root, counts, dim, budget_s / rounds / 2)
            for n in counts:
                theirs[n] += info["rows"][n]["samples_us"]
    cache = {"route_kernel_cache_before": cache_before, "route_kernel_cache_after": kernel._cache_size()}
    for system in systems:
        system.shutdown()
    tinydancer = {name: {n: Timing(s).summary() for n, s in rows.items()} for name, rows in ours.items()}
    original = {n: Timing(s).summary() for n, s in theirs.items()} if info is not None else None
    meta = None if info is None else {k: v for k, v in info.items() if k != "rows"}
    return {"tinydancer": tinydancer, "original": original, "original_info": meta, "timed_loop_compile_cache": cache}


def compile_check(counts: list[int], dim: int, calls: int = 50) -> dict[str, int]:
    """route_kernel's compile-cache size before and after a steady-state loop over every count."""
    routers, systems = make_routers()
    router = routers["metrics_logs"]
    requests = [make_request(n, dim, seed=n) for n in counts]
    for request in requests:
        router.route(request, now=NOW_S)
    before = router.model.kernel._cache_size()
    for _ in range(calls):
        for request in requests:
            router.route(request, now=NOW_S)
    after = router.model.kernel._cache_size()
    for system in systems:
        system.shutdown()
    return {"route_kernel_cache_before": before, "route_kernel_cache_after": after, "calls": calls * len(counts)}


def oracle_dir() -> Path:
    """Where the original is installed (env TINYDANCER_ORACLE_DIR, else .cache/oracle)."""
    env = os.environ.get("TINYDANCER_ORACLE_DIR")
    return Path(env) if env else REPO / ".cache" / "oracle"


def ensure_oracle() -> Path | None:
    """Install the original with npm into the oracle folder if it is missing; None when npm/node is absent."""
    root = oracle_dir()
    if (root / "node_modules" / "@ruvector" / "tiny-dancer" / "package.json").is_file():
        return root
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return None
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", ORACLE_PACKAGE], cwd=root, check=True)
    return root


def run_original(node: str, root: Path, counts: list[int], dim: int, budget_s: float) -> dict[str, Any]:
    """One run of benchmarks/original_route.js; rows keyed by candidate count, with raw samples."""
    opts = {"counts": counts, "dim": dim, "budget_s": budget_s, "min_calls": 20, "samples": True}
    opts |= {"oracle_dir": str(root), "scratch": str(root)}
    proc = subprocess.run(
        [node, str(REPO / "benchmarks" / "original_route.js"), json.dumps(opts)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["rows"] = {row["n"]: row for row in result["rows"]}
    return result
