"""Soak: route many requests through one Router with collectors at default capacity; memory must stay flat.

One Router (seeded random model, logs captured but not rendered, tracing at ``--sampling`` with the
default in-memory span buffer) routes ``--routes`` small requests. It prints the resident set size
(RSS, from ``/proc/self/statm``) at the start, after warm-up, at the middle and at the end, plus the
collectors' stored and dropped record counts and the span buffer's drops, then checks that nothing was
lost: ``requests_total`` equals the number of routes, and every collector kind has
``stored + dropped == offered``.

Memory grows while the bounded collectors fill (requests 100k, decision rows 1M, logs 100k, spans 10k)
and must be flat afterwards; the figure to read is ``end - middle`` once the collectors are full.

Usage::

    .venv/bin/python benchmarks/soak.py                 # 1,000,000 routes
    .venv/bin/python benchmarks/soak.py --quick         # 100,000 routes
    .venv/bin/python benchmarks/soak.py --routes 300000 --candidates 4 --sampling 0.01
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from tinydancer import Router, RouterConfig, RoutingRequest, configure_jax
from tinydancer.observability import LogConfig, TracingConfig, TracingSystem


def rss_mib() -> float:
    """Current resident set size in MiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def small_request(rng: np.random.Generator, n: int, dim: int) -> RoutingRequest:
    """A request of ``n`` random candidates of dimension ``dim``."""
    return RoutingRequest.from_arrays(
        rng.normal(size=dim),
        rng.normal(size=(n, dim)),
        ids=[f"c{j}" for j in range(n)],
        created_at=1_700_000_000 - rng.integers(0, 5000, n),
        access_count=rng.integers(0, 100, n),
        success_rate=rng.uniform(0, 1, n),
    )


def main() -> None:
    configure_jax()  # synchronous dispatch, as a serving process runs (BENCHMARKS.md)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=float, default=1e6, help="number of route calls (default 1e6)")
    parser.add_argument("--quick", action="store_true", help="100,000 routes")
    parser.add_argument("--candidates", type=int, default=2, help="candidates per request (default 2)")
    parser.add_argument("--sampling", type=float, default=0.01, help="trace sampling ratio (default 0.01)")
    args = parser.parse_args()
    routes = 100_000 if args.quick else int(args.routes)
    n, dim = args.candidates, 8

    tracing = TracingSystem(TracingConfig(service_name="soak", sampling_ratio=args.sampling))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the seeded random model's "model file not found" warning
        router = Router(
            RouterConfig(model_path="/nonexistent/soak.safetensors", seed=1),
            tracing=tracing,
            log_config=LogConfig(renderer="none"),
        )
    rng = np.random.default_rng(0)
    pool = [small_request(rng, n, dim) for _ in range(64)]
    print(f"soak: {routes:,} routes x {n} candidates, sampling {args.sampling}, capacities {router.collector.capacity}")
    init_logs = router.collector.stored["logs"]  # start-up records (initialisation, model warning)
    quarters = {routes // 4: "25%", routes // 2: "middle", 3 * routes // 4: "75%"}
    marks: list[tuple[str, int, float, float]] = [("start", 0, rss_mib(), 0.0)]
    t0 = time.perf_counter()
    for i in range(routes):
        router.route(pool[i % len(pool)], now=1_700_000_000)
        done = i + 1
        if done == min(1000, routes):
            marks.append(("warm", done, rss_mib(), time.perf_counter() - t0))
        if done in quarters:
            marks.append((quarters[done], done, rss_mib(), time.perf_counter() - t0))
    marks.append(("end", routes, rss_mib(), time.perf_counter() - t0))
    for name, at, rss, elapsed in marks:
        print(f"  {name:>6} after {at:>9,} routes: RSS {rss:8.1f} MiB  ({elapsed:7.1f} s)")
    by_name = {name: rss for name, _, rss, _ in marks}
    print(f"  RSS growth middle -> end: {by_name['end'] - by_name.get('middle', by_name['start']):+.1f} MiB")
    elapsed = marks[-1][3]
    print(f"  {routes / elapsed:,.0f} routes/s, {elapsed / routes * 1e6:.0f} us/route")

    stored, dropped = router.collector.stored, router.collector.dropped
    offered = {"requests": routes, "decisions": routes * n, "logs": 2 * routes + init_logs}
    print(f"  collector stored {stored}")
    print(f"  collector dropped {dropped}")
    print(f"  spans kept {len(tracing.finished_spans()):,}, span buffer dropped {tracing.dropped_spans:,}")
    requests_total = sum(s.value for s in router.metrics.samples() if s.name == "tiny_dancer_routing_requests_total")
    lost = {k: offered[k] - stored[k] - dropped[k] for k in offered}
    print(f"  requests_total {requests_total:,.0f}; offered - stored - dropped per kind: {lost}")
    tracing.shutdown()
    if requests_total != routes or any(lost.values()):
        raise SystemExit("soak: records were lost")
    print("  nothing lost")


if __name__ == "__main__":
    main()
