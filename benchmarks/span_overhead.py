"""Cost of tinydancer's tracing and logging on one route-shaped request (one run, medians).

For N = 1, 10, 100, 1000 candidates it times the span tree a ``route()`` builds
(routing_request > circuit_breaker_check, feature_engineering, model_inference > per-candidate
model_inference + uncertainty_estimation records) with the always-on in-memory exporter:

* ``noop``: OpenTelemetry's no-op tracer (tracing never initialised), the floor;
* ``unsampled``: a TracingSystem at sampling_ratio 0 (the parent is not recording: no candidate loop);
* ``sampled/100``: ratio 1, per-candidate records capped at 100 candidates (the Router's default cap);
* ``sampled/all``: ratio 1, a record pair for every candidate.

Then the structlog side: a filtered-out DEBUG call, the per-candidate DEBUG loop when DEBUG is off,
and one rendered INFO record.

Usage: ``.venv/bin/python benchmarks/span_overhead.py [--quick]``
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
from opentelemetry import trace

from tinydancer import configure_jax
from tinydancer.observability import TracingConfig, TracingSystem
from tinydancer.observability.logs import LogConfig, LogEvent, log_candidate_results, make_router_logger
from tinydancer.observability.route_spans import CANDIDATE_SPANS_DROPPED, RoutingSpan, emit_candidate_spans


def route_tree(tracer: trace.Tracer, ids: list[str], conf: np.ndarray, limit: int) -> None:
    n = len(ids)
    with RoutingSpan.routing_request(n, tracer=tracer) as root:
        with RoutingSpan.circuit_breaker_check("closed", tracer=tracer):
            pass
        with RoutingSpan.feature_engineering(n, tracer=tracer):
            pass
        start = time.time_ns()
        with RoutingSpan.model_inference(n, tracer=tracer) as inference:
            dropped = emit_candidate_spans(
                tracer, inference, ids, conf, 1.0 - conf, conf > 0.5, start, time.time_ns(), limit
            )
            if dropped:
                root.set_attribute(CANDIDATE_SPANS_DROPPED, dropped)


def median_us(fn: Callable[[], object], budget_s: float, min_reps: int = 5) -> float:
    """Median wall time of ``fn`` in microseconds over repetitions filling ``budget_s``."""
    fn()  # warm-up
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < min_reps or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def median_per_call_us(fn: Callable[[], object], calls: int, budget_s: float) -> float:
    def loop() -> None:
        for _ in range(calls):
            fn()

    return median_us(loop, budget_s) / calls


def main() -> None:
    configure_jax()  # synchronous dispatch, as a serving process runs (BENCHMARKS.md)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short budgets (CI smoke run)")
    budget = 0.05 if parser.parse_args().quick else 0.5

    # Machine-load reference: the shared 2-core boxes vary several-fold, so compare columns, not runs.
    reference = median_per_call_us(lambda: sum(range(1000)), 100, budget)
    print(f"load reference: sum(range(1000)) = {reference:.1f} us\n")
    sampled = TracingSystem(TracingConfig(service_name="bench", in_memory_capacity=10_000))
    unsampled = TracingSystem(TracingConfig(service_name="bench", sampling_ratio=0.0))
    noop = trace.NoOpTracer()
    print("span tree of one route, median us (in-memory exporter only)")
    print(f"{'N':>6} {'noop':>9} {'unsampled':>10} {'sampled/100':>12} {'sampled/all':>12} {'us/cand':>8}")
    one_id, one_conf = ["candidate-0"], np.array([0.5])
    base_one = median_us(lambda: route_tree(sampled.tracer, one_id, one_conf, 1), budget)
    for n in (1, 10, 100, 1000):
        ids = [f"candidate-{i}" for i in range(n)]
        conf = np.linspace(0.0, 1.0, n)

        def timed(tracer: trace.Tracer, limit: int, ids: list[str] = ids, conf: np.ndarray = conf) -> float:
            return median_us(lambda: route_tree(tracer, ids, conf, limit), budget)

        row = [timed(noop, 100), timed(unsampled.tracer, 100), timed(sampled.tracer, 100), timed(sampled.tracer, n)]
        per_candidate = (row[3] - base_one) / max(n - 1, 1)
        print(f"{n:>6} {row[0]:>9.1f} {row[1]:>10.1f} {row[2]:>12.1f} {row[3]:>12.1f} {per_candidate:>8.2f}")
        sampled.clear()
    sampled.shutdown()
    unsampled.shutdown()

    info_log = make_router_logger(LogConfig(level="INFO", renderer="json", stream=io.StringIO()))
    ids = [f"candidate-{i}" for i in range(100)]
    conf = np.linspace(0.0, 1.0, 100)
    filtered = median_per_call_us(lambda: info_log.debug(LogEvent.FEATURES, batch_size=3), 1000, budget)
    loop_off = median_us(lambda: log_candidate_results(info_log, ids, conf, conf, conf > 0.5), budget)
    rendered = median_per_call_us(lambda: info_log.info(LogEvent.REQUEST_STARTED, candidate_count=3), 200, budget)
    print("\nstructlog, median us")
    print(f"  filtered-out DEBUG call:                 {filtered:8.3f}")
    print(f"  per-candidate DEBUG loop, DEBUG off (N=100): {loop_off:8.3f}")
    print(f"  rendered INFO record (JSON to StringIO): {rendered:8.3f}")


if __name__ == "__main__":
    main()
