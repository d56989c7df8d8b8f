"""Load: 8 threads route concurrently while a reader scrapes; every count is exact, nothing deadlocks.

test_router_observability.py checks exact counts with 4 threads x 40 routes; this is the issue's
load case: 8 threads x ``TINYDANCER_LOAD_ROUTES`` routes each (10,000 by default under CI; 250 per
thread locally, where the shared 2-core machine routes ~200 requests/s), every request sampled, with
a ninth thread reading metrics and collector frames the whole time. Free-threading is not assumed
(nor needed): correctness comes from the locks, which this test exercises.

Exact: requests_total, decisions_total, the collector's requests and decision rows, the spans
(kept + dropped by the bounded in-memory buffer) and the log records (stored + dropped).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path

import numpy as np

from tests._routers import NOW, strong_model
from tinydancer import Router, RouterConfig, RoutingRequest
from tinydancer.observability.logs import LogConfig
from tinydancer.observability.tracing import TracingConfig, TracingSystem

THREADS = 8
PER_THREAD = int(
    os.environ.get(
        "TINYDANCER_LOAD_ROUTES", "10000" if os.environ.get("TINYDANCER_REQUIRE_ALL") or os.environ.get("CI") else "250"
    )
)
CANDIDATES = 3
SPANS_PER_ROUTE = 4 + 2 * CANDIDATES


def sample(router: Router, name: str, **labels: str) -> float:
    rows = [
        s for s in router.metrics.samples() if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(rows) == 1, (name, labels, rows)
    return rows[0].value


def requests_for(thread: int) -> list[RoutingRequest]:
    rng = np.random.default_rng(thread)
    return [
        RoutingRequest.from_arrays(
            rng.normal(size=8),
            rng.normal(size=(CANDIDATES, 8)),
            ids=[f"t{thread}-{k}-{j}" for j in range(CANDIDATES)],
            created_at=NOW - rng.integers(0, 5000, CANDIDATES),
            access_count=rng.integers(0, 100, CANDIDATES),
            success_rate=rng.uniform(0, 1, CANDIDATES),
        )
        for k in range(16)
    ]


def test_eight_threads_exact_counts_no_deadlock(tmp_path: Path) -> None:
    total = THREADS * PER_THREAD
    system = TracingSystem(TracingConfig(service_name="load", sampling_ratio=1.0, in_memory_capacity=5_000))
    router = Router(
        RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")), confidence_threshold=0.6,
                     max_uncertainty=0.9),
        tracing=system,
        log_config=LogConfig(renderer="none"),
    )  # fmt: skip
    init_logs = router.collector.stored["logs"]
    start = threading.Barrier(THREADS + 1)
    light = [0] * THREADS
    errors: list[BaseException] = []
    done = threading.Event()
    scrapes = [0]

    def worker(k: int) -> None:
        reqs = requests_for(k)
        try:
            start.wait(timeout=60)
            for i in range(PER_THREAD):
                resp = router.route(reqs[i % len(reqs)], now=NOW)
                assert resp.candidates_processed == CANDIDATES
                light[k] += resp.lightweight_routes
        except BaseException as exc:  # reported below
            errors.append(exc)

    def reader() -> None:
        try:
            start.wait(timeout=60)
            while not done.wait(0.05):
                router.export_metrics()
                router.collector.requests()
                _ = router.circuit_breaker_state
                scrapes[0] += 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(THREADS)]
    watcher = threading.Thread(target=reader, daemon=True)
    for th in [*threads, watcher]:
        th.start()
    limit_s = max(120.0, total * 0.05)  # 20x the ~2.5 ms/route of a loaded 2-core machine
    for th in threads:
        th.join(timeout=limit_s)
        assert not th.is_alive(), f"a routing thread did not finish within {limit_s:.0f} s: deadlock?"
    done.set()
    watcher.join(timeout=60)
    assert not watcher.is_alive(), "the reader thread is stuck"
    system.shutdown()
    assert not errors, errors[:3]
    assert scrapes[0] > 0

    lightweight = sum(light)
    assert sample(router, "tiny_dancer_routing_requests_total", status="success") == total
    assert sample(router, "tiny_dancer_routing_requests_total", status="failure") == 0
    assert sample(router, "tiny_dancer_routing_decisions_total", model_type="lightweight") == lightweight
    assert sample(router, "tiny_dancer_routing_decisions_total", model_type="powerful") == (
        total * CANDIDATES - lightweight
    )
    assert sample(router, "tiny_dancer_routing_latency_seconds_count", operation="total") == total
    stored, dropped = router.collector.stored, router.collector.dropped
    assert stored["requests"] + dropped["requests"] == total
    assert stored["decisions"] + dropped["decisions"] == total * CANDIDATES
    assert stored["logs"] + dropped["logs"] == init_logs + 2 * total  # request start + completion
    if dropped["requests"] == 0:
        frame = router.collector.requests()
        assert frame.request_id.is_unique and set(frame.outcome) == {"success"}
        decisions = router.collector.decisions()
        assert int(decisions.use_lightweight.sum()) == lightweight
        assert Counter(decisions.groupby("request_id").size()) == {CANDIDATES: total}
    assert len(system.finished_spans()) + system.dropped_spans == total * SPANS_PER_ROUTE
    roots = [s for s in system.finished_spans() if s.name == "routing_request"]
    assert len({s.context.trace_id for s in roots if s.context is not None}) == len(roots)  # one trace per route
