"""CandidateStore: similarity over stored (normalised) embeddings vs raw arrays, and route() by ids vs from_arrays.

Run: ``nice .venv/bin/python -m benchmarks.candidate_store`` (``--score-counts 1000 10000 100000
--route-counts 1 10 100 1000 --dim 384 --rounds 6 --budget-s 20 --out results.json``).

Two measurements, each side by side in one process, interleaved in rounds of one block per (count, side), so
the load of a shared machine hits both alike:

* **scoring**: cosine similarity of one query with N stored candidates, ``store.similarity(query)`` (one
  matrix-vector product over the normalised rows, in place) against the same from raw [N, D] float32 arrays in
  numpy, which must recompute every candidate's norm (``(E @ q) / (|E| |q|)``, the norms by ``einsum``).
  Millions of candidates per second, medians (best call in brackets); max |difference| too.
* **route**: the whole user-visible cost of one route (build the request + ``router.route``; default
  ``RouterConfig``, metrics and INFO logs on, ``LogConfig(renderer="none")``, no tracing) of N candidates named
  by id from a store of ``--store-size`` candidates, ``RoutingRequest.from_store(store, q, ids)``, against
  ``RoutingRequest.from_arrays`` over the same candidates' stacked arrays; plus the same two without route()'s
  records: ``pack_request`` and the router's ``default_inference`` (the store side holding the store's lock and
  packing in place, as route() does), which resolves what route()'s jitter hides.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry import trace

from benchmarks.report import write_results
from tinydancer import CandidateStore, Router, RouterConfig, RoutingRequest, configure_jax
from tinydancer.observability import LogConfig
from tinydancer.routing import DeviceModel, default_inference, pack_request

NOW_S = 1_700_000_000.0
#: Issue 16, item 3: batch scoring from stored 384-d embeddings at this rate at least.
GOAL_M_PER_S = 8.0


def time_calls(fn: Callable[[], object], calls: int) -> list[float]:
    """Wall seconds of each of ``calls`` calls."""
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def interleaved(sides: dict[str, Callable[[], object]], rounds: int, budget_s: float) -> dict[str, list[float]]:
    """Per-call seconds of every side, in ``rounds`` rounds of one block each; blocks sized from a probe."""
    for fn in sides.values():
        time_calls(fn, 3)
    probe = max(float(np.median(time_calls(fn, 5))) for fn in sides.values())
    block = max(3, int(budget_s / rounds / len(sides) / max(probe, 1e-7)))
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            samples[name] += time_calls(fn, block)
    return samples


def raw_similarity(query: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity from raw arrays in numpy: every candidate's norm recomputed, [N]."""
    norms = np.sqrt(np.einsum("ij,ij->i", embeddings, embeddings)) * np.float32(np.sqrt(query @ query))
    out: np.ndarray = (embeddings @ query) / np.where(norms > 0, norms, np.float32(1.0))
    return out


def random_candidates(n: int, dim: int, seed: int) -> dict[str, Any]:
    """Columns of ``n`` random candidates (ages within the last hour, like the route benchmarks)."""
    rng = np.random.default_rng(seed)
    return {
        "ids": [f"candidate-{i}" for i in range(n)],
        "embeddings": rng.uniform(-1, 1, (n, dim)).astype(np.float32),
        "created_at": NOW_S - rng.integers(0, 3600, n),
        "access_count": rng.integers(0, 1000, n),
        "success_rate": rng.uniform(0, 1, n),
    }


def measure_scoring(counts: list[int], dim: int, rounds: int, budget_s: float) -> dict[int, dict[str, float]]:
    """M candidates/s of store.similarity against raw_similarity, per count."""
    out: dict[int, dict[str, float]] = {}
    query = np.random.default_rng(1).uniform(-1, 1, dim).astype(np.float32)
    for n in counts:
        data = random_candidates(n, dim, seed=n)
        store = CandidateStore(dim, capacity=n)
        store.upsert_many(data["ids"], data["embeddings"])
        embeddings = data["embeddings"]
        samples = interleaved(
            {"store": lambda s=store: s.similarity(query), "arrays": lambda e=embeddings: raw_similarity(query, e)},
            rounds,
            budget_s / len(counts),
        )
        diff = float(np.abs(store.similarity(query) - raw_similarity(query, embeddings)).max())
        row: dict[str, float] = {"calls": len(samples["store"]), "max_abs_diff": diff}
        for side, seconds in samples.items():
            row[f"{side}_m_per_s"] = n / float(np.median(seconds)) / 1e6
            row[f"{side}_best_m_per_s"] = n / min(seconds) / 1e6
        row["ratio"] = row["store_m_per_s"] / row["arrays_m_per_s"]
        out[n] = row
        del store, data, embeddings
    return out


def measure_routes(
    counts: list[int], dim: int, store_size: int, rounds: int, budget_s: float, stage: str
) -> dict[int, dict[str, float]]:
    """Median microseconds of build + route (or build + pack_request) by ids from a store vs from_arrays."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "model file not found: using a random model"
        router = Router(RouterConfig(), log_config=LogConfig(renderer="none"), tracing=trace.NoOpTracerProvider())
    data = random_candidates(max(store_size, *counts), dim, seed=3)
    store = CandidateStore(dim)
    store.upsert_many(
        data["ids"], data["embeddings"], created_at=data["created_at"], access_count=data["access_count"],
        success_rate=data["success_rate"],
    )  # fmt: skip
    query = np.random.default_rng(2).uniform(-1, 1, dim).astype(np.float32)
    out: dict[int, dict[str, float]] = {}
    for n in counts:
        rows = np.random.default_rng(n).choice(len(data["ids"]), n, replace=False)
        ids = [data["ids"][r] for r in rows]
        picked = {k: data[k][rows] for k in ("embeddings", "created_at", "access_count", "success_rate")}

        def from_store(ids: list[str] = ids) -> RoutingRequest:
            return RoutingRequest.from_store(store, query, ids)

        def from_arrays(ids: list[str] = ids, picked: dict[str, Any] = picked) -> RoutingRequest:
            return RoutingRequest.from_arrays(
                query, picked["embeddings"], ids=ids, created_at=picked["created_at"],
                access_count=picked["access_count"], success_rate=picked["success_rate"],
            )  # fmt: skip

        a, b = router.route(from_store(), now=NOW_S), router.route(from_arrays(), now=NOW_S)
        assert a.candidate_ids == b.candidate_ids or n > 100  # near-ties may swap at float32 rounding
        diff = float(np.abs(np.sort(a.confidence) - np.sort(b.confidence)).max())
        if stage == "route":
            sides = {
                "store": lambda f=from_store: router.route(f(), now=NOW_S),
                "arrays": lambda f=from_arrays: router.route(f(), now=NOW_S),
            }
        else:  # what route() does between its records: the store side reads the rows in place under the lock
            model = router.model
            assert isinstance(model, DeviceModel)

            def infer_stored(f: Callable[[], RoutingRequest] = from_store, m: DeviceModel = model) -> object:
                with store.lock:
                    return default_inference(m, pack_request(f(), NOW_S, in_place=True), 0.85, 0.15)

            def infer_arrays(f: Callable[[], RoutingRequest] = from_arrays, m: DeviceModel = model) -> object:
                return default_inference(m, pack_request(f(), NOW_S), 0.85, 0.15)

            sides = {"store": infer_stored, "arrays": infer_arrays}
        samples = interleaved(sides, rounds, budget_s / len(counts))
        store_us, arrays_us = (float(np.median(samples[s])) * 1e6 for s in ("store", "arrays"))
        out[n] = {
            "calls": len(samples["store"]),
            "store_us": store_us,
            "arrays_us": arrays_us,
            "ratio": store_us / arrays_us,
            "max_abs_confidence_diff": diff,
        }
    return out


def scoring_table(rows: dict[int, dict[str, float]], dim: int) -> str:
    """Markdown table of :func:`measure_scoring`."""
    lines = [
        f"| N (dim {dim}) | store M/s median (best) | arrays M/s median (best) | store / arrays | max abs diff "
        f"| goal >= {GOAL_M_PER_S:g} M/s |",
        "|---:|---:|---:|---:|---:|:---|",
    ]
    for n, r in rows.items():
        met = "met" if r["store_m_per_s"] >= GOAL_M_PER_S else "NOT met"
        lines.append(
            f"| {n:,} | {r['store_m_per_s']:.1f} ({r['store_best_m_per_s']:.1f}) | {r['arrays_m_per_s']:.2f} "
            f"({r['arrays_best_m_per_s']:.2f}) | {r['ratio']:.1f}x | {r['max_abs_diff']:.1e} | {met} |"
        )
    return "\n".join(lines)


def route_table(rows: dict[int, dict[str, float]]) -> str:
    """Markdown table of :func:`measure_routes`."""
    lines = [
        "| N | calls/side | from_store (us) | from_arrays (us) | store / arrays | max abs confidence diff |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n, r in rows.items():
        lines.append(
            f"| {n} | {int(r['calls'])} | {r['store_us']:.1f} | {r['arrays_us']:.1f} | {r['ratio']:.2f} "
            f"| {r['max_abs_confidence_diff']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, measure, print the tables (with the command, date and machine), optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--score-counts", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--route-counts", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--store-size", type=int, default=10_000, help="candidates stored for the route timing")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--budget-s", type=float, default=20.0, help="wall time of the timed rounds, about")
    parser.add_argument("--out", type=Path, default=None, help="write every number as JSON here")
    args = parser.parse_args(argv)
    configure_jax()  # synchronous dispatch, as a serving process runs (BENCHMARKS.md)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.processor() or platform.machine()}, load average {_load()}"
    command = "python -m benchmarks.candidate_store " + " ".join(argv if argv is not None else sys.argv[1:])
    out: dict[str, Any] = {"command": command, "date": stamp, "machine": machine, "dim": args.dim}
    third = args.budget_s / 3
    out["scoring"] = measure_scoring(args.score_counts, args.dim, args.rounds, third)
    for stage in ("route", "pack"):
        out[stage] = measure_routes(args.route_counts, args.dim, args.store_size, args.rounds, third, stage)
    text = report(out, args.rounds, args.store_size)
    print(text)
    if args.out is not None:
        write_results(args.out, out, text)
    return out


def report(out: dict[str, Any], rounds: int, store_size: int) -> str:
    """The tables of one run (:func:`main`'s result), as printed and written beside the JSON (.md)."""
    stamp, dim = out["date"], out["dim"]
    text = f"# {out['command']}\n# similarity, {rounds} rounds, {stamp}, {out['machine']}\n"
    text += scoring_table(out["scoring"], dim) + "\n"
    for stage, what in (("route", "build + route()"), ("pack", "build + pack_request() + default_inference()")):
        text += f"\n# {what} by ids from a store of {store_size:,} vs from_arrays, dim {dim}, {stamp}\n"
        text += route_table(out[stage]) + "\n"
    return text


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()
