"""Where the time of one route() call goes: cProfile, grouped into the router's parts.

For each (setting, N) it profiles many route() calls and reports the cumulative time per call of
the parts below (they nest only where noted), plus the unprofiled wall time per call for scale.
cProfile inflates Python-heavy parts more than the jitted call, so read the shares, not the sums.

Usage: ``.venv/bin/python -m benchmarks.profile_route [--calls 300]``
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from typing import Any

from benchmarks.route_latency import NOW_S, make_request, make_routers
from tinydancer import configure_jax

#: part -> (file suffix, function name) whose cumulative time is the part's.
PARTS: dict[str, tuple[str, str]] = {
    "route() total": ("tinydancer/routing/router.py", "route"),
    "pack_request (validate + pack)": ("tinydancer/routing/packing.py", "pack_request"),
    "default_inference (compiled host route, or the jitted kernel)": (
        "tinydancer/routing/router.py",
        "default_inference",
    ),
    "_record_success (metrics + collector + logs)": ("tinydancer/routing/router.py", "_record_success"),
    "  metrics.queue_route": ("tinydancer/observability/metrics.py", "queue_route"),
    "  collector.record_decisions": ("tinydancer/observability/collector.py", "record_decisions"),
    "  collector.record_request": ("tinydancer/observability/collector.py", "record_request"),
    "  collector.record_route_logs (the route's INFO records)": (
        "tinydancer/observability/collector.py",
        "record_route_logs",
    ),
    "root span start (RatioRootTracer.start_span)": ("tinydancer/observability/root_sampling.py", "start_span"),
    "emit_candidate_spans": ("tinydancer/observability/route_spans.py", "emit_candidate_spans"),
    "breaker admit": ("tinydancer/routing/breaker.py", "admit"),
}


def profile(setting: str, n: int, calls: int) -> dict[str, Any]:
    """Per-call microseconds of every part, profiled, plus the plain wall time per call."""
    routers, systems = make_routers()
    router, request = routers[setting], make_request(n, 384, seed=n)
    for _ in range(20):
        router.route(request, now=NOW_S)
    t0 = time.perf_counter()
    for _ in range(calls):
        router.route(request, now=NOW_S)
    plain_us = (time.perf_counter() - t0) / calls * 1e6
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        router.route(request, now=NOW_S)
    prof.disable()
    for system in systems:
        system.shutdown()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    parts = {}
    for part, (suffix, name) in PARTS.items():
        total = sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(suffix) and fn == name)
        parts[part] = total / calls * 1e6
    return {"setting": setting, "n": n, "plain_us_per_call": plain_us, "profiled_us_per_call": parts}


def main() -> None:
    configure_jax()  # synchronous dispatch, as a serving process runs (BENCHMARKS.md)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    rows = [profile(s, n, args.calls) for s in ("metrics_logs", "spans_1pct") for n in (1, 10, 100)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    header = " | ".join(f"{r['setting']} N={r['n']}" for r in rows)
    print(f"| part (us per call, under cProfile) | {header} |")
    print("|---|" + "---:|" * len(rows))
    print(
        "| plain wall time per call, no profiler | " + " | ".join(f"{r['plain_us_per_call']:.0f}" for r in rows) + " |"
    )
    for part in PARTS:
        print(f"| {part} | " + " | ".join(f"{r['profiled_us_per_call'][part]:.0f}" for r in rows) + " |")


if __name__ == "__main__":
    main()
