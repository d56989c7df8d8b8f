"""Every route records metrics, spans, logs and collector rows, exactly; failures are counted by type."""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pandas.testing import assert_frame_equal

from tests._routers import NOW, strong_model
from tinydancer import CircuitOpenError, InvalidInputError, Router, RouterConfig, RoutingRequest
from tinydancer.observability.collector import Collector
from tinydancer.observability.logs import LogConfig
from tinydancer.observability.tracing import TracingConfig, TracingSystem
from tinydancer.routing.router import default_inference

RNG = np.random.default_rng(1)


def request(n: int, dim: int = 16, prefix: str = "cand") -> RoutingRequest:
    return RoutingRequest.from_arrays(
        RNG.normal(size=dim), RNG.normal(size=(n, dim)), ids=[f"{prefix}-{i}" for i in range(n)],
        created_at=NOW - RNG.integers(0, 5000, n), access_count=RNG.integers(0, 1000, n),
        success_rate=RNG.uniform(0, 1, n))  # fmt: skip


def make_router(tmp_path: Path, tracing: Any = None, level: str = "INFO", **kwargs: Any) -> Router:
    cfg = RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")), confidence_threshold=0.6,
                       max_uncertainty=0.9, **kwargs)  # fmt: skip
    return Router(cfg, tracing=tracing, log_config=LogConfig(level=level, renderer="none"))


def sample(router: Router, name: str, **labels: str) -> float:
    rows = [
        s for s in router.metrics.samples() if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(rows) == 1, (name, labels, rows)
    return rows[0].value


def test_counts_are_exact(tmp_path: Path) -> None:
    router = make_router(tmp_path)
    sizes = [1, 3, 10, 11, 50, 51, 100, 101, 0]
    responses = [router.route(request(n), now=NOW) for n in sizes]
    total = sum(sizes)
    light = sum(r.lightweight_routes for r in responses)
    assert sample(router, "tiny_dancer_routing_requests_total", status="success") == len(sizes)
    assert sample(router, "tiny_dancer_routing_requests_total", status="failure") == 0
    assert sample(router, "tiny_dancer_routing_decisions_total", model_type="lightweight") == light
    assert sample(router, "tiny_dancer_routing_decisions_total", model_type="powerful") == total - light
    assert sample(router, "tiny_dancer_confidence_scores_count", decision_type="lightweight") == light
    assert sample(router, "tiny_dancer_uncertainty_estimates_count", decision_type="powerful") == total - light
    assert sample(router, "tiny_dancer_routing_latency_seconds_count", operation="total") == len(sizes)
    assert sample(router, "tiny_dancer_candidates_processed_total", batch_size_range="1-10") == 1 + 3 + 10
    assert sample(router, "tiny_dancer_candidates_processed_total", batch_size_range="11-50") == 11 + 50
    assert sample(router, "tiny_dancer_candidates_processed_total", batch_size_range="51-100") == 51 + 100
    assert sample(router, "tiny_dancer_candidates_processed_total", batch_size_range="100+") == 101
    # the original's model serves (strong_model writes the original's format): labelled so, not "fastgrnn"
    assert sample(router, "tiny_dancer_model_inference_duration_seconds_count", model_type="original") == len(sizes)
    assert not any(s.labels.get("model_type") == "fastgrnn" for s in router.metrics.samples())
    conf_sum = sample(router, "tiny_dancer_confidence_scores_sum", decision_type="lightweight")
    conf_sum += sample(router, "tiny_dancer_confidence_scores_sum", decision_type="powerful")
    assert conf_sum == pytest.approx(sum(float(r.confidence.astype(np.float64).sum()) for r in responses), rel=1e-9)
    frames = router.collector
    assert len(frames.requests()) == len(sizes) and set(frames.requests().outcome) == {"success"}
    decisions = frames.decisions()
    assert len(decisions) == total and int(decisions.use_lightweight.sum()) == light
    first = decisions[decisions.request_id == decisions.request_id.min()]
    assert list(first.candidate_id) == list(responses[0].candidate_ids)


def test_errors_counted_by_type_and_router_keeps_working(tmp_path: Path) -> None:
    t = [float(NOW)]
    failing = {"on": True}

    def inference(*args: Any) -> Any:
        if failing["on"]:
            raise RuntimeError("boom")
        return default_inference(*args)

    cfg = RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")), circuit_breaker_threshold=2,
                       circuit_breaker_reset_timeout_s=10, circuit_breaker_half_open_probes=1)  # fmt: skip
    router = Router(cfg, clock=lambda: t[0], inference=inference, log_config=LogConfig(renderer="none"))
    gauge = lambda: sample(router, "tiny_dancer_circuit_breaker_state")  # noqa: E731
    assert gauge() == 0
    with pytest.raises(InvalidInputError):
        router.route(RoutingRequest.from_arrays(np.ones(3), np.ones((2, 4))))
    for _ in range(2):
        with pytest.raises(Exception, match="boom"):
            router.route(request(4))
    assert gauge() == 2
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            router.route(request(4))
    t[0] += 10
    assert gauge() == 1  # half-open by time alone: the gauge follows without a route call
    failing["on"] = False
    router.route(request(4))
    assert gauge() == 0
    assert sample(router, "tiny_dancer_errors_total", error_type="invalid_input") == 1
    assert sample(router, "tiny_dancer_errors_total", error_type="inference_error") == 2
    assert sample(router, "tiny_dancer_errors_total", error_type="circuit_breaker_open") == 3
    assert sample(router, "tiny_dancer_routing_requests_total", status="failure") == 6
    assert sample(router, "tiny_dancer_routing_requests_total", status="success") == 1
    requests = router.collector.requests()
    assert Counter(requests.outcome) == {"failure": 3, "rejected": 3, "success": 1}
    assert Counter(requests.error_type.dropna()) == {"invalid_input": 1, "inference_error": 2,
                                                     "circuit_breaker_open": 3}  # fmt: skip
    logs = router.collector.logs()
    events = Counter(zip(logs.level, logs.event, strict=True))
    assert events[("error", "Routing request failed")] == 3
    assert events[("error", "Circuit breaker is open, rejecting request")] == 3
    assert events[("warning", "Circuit breaker state changed")] == 2  # closed->open, open->half_open
    assert events[("info", "Circuit breaker state changed")] == 1  # half_open->closed


def test_span_tree_and_traceparent(tmp_path: Path, tracing: TracingSystem) -> None:
    router = make_router(tmp_path, tracing=tracing, max_candidate_spans=3)
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    resp = router.route(request(5), now=NOW, traceparent=incoming)
    spans = tracing.finished_spans()
    by_name = Counter(s.name for s in spans)
    assert by_name == {"routing_request": 1, "circuit_breaker_check": 1, "feature_engineering": 1,
                       "model_inference": 1 + 3, "uncertainty_estimation": 3}  # fmt: skip
    root = next(s for s in spans if s.name == "routing_request")
    assert format(root.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert format(root.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert root.kind.name == "SERVER"
    assert root.attributes["candidate_count"] == 5 and root.attributes["outcome"] == "success"
    assert root.attributes["lightweight_routes"] + root.attributes["powerful_routes"] == 5
    batch = next(s for s in spans if s.name == "model_inference" and "batch_size" in s.attributes)
    assert batch.parent.span_id == root.context.span_id
    assert batch.attributes["candidate_spans_dropped"] == 2
    per_candidate = [s for s in spans if "candidate_id" in s.attributes]
    assert all(s.parent.span_id == batch.context.span_id for s in per_candidate)
    confidences = dict(zip(resp.candidate_ids, resp.confidence.tolist(), strict=True))
    for s in per_candidate:
        if s.name == "model_inference":
            assert s.attributes["confidence"] == pytest.approx(confidences[s.attributes["candidate_id"]])
    for name in ("circuit_breaker_check", "feature_engineering"):
        assert next(s for s in spans if s.name == name).parent.span_id == root.context.span_id
    # the collector joins requests, spans and logs by trace id
    req = router.collector.requests().iloc[-1]
    assert req.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert set(router.collector.spans().trace_id) == {req.trace_id}
    logs = router.collector.logs()
    assert set(logs[logs.event == "Routing request completed successfully"].trace_id) == {req.trace_id}


def test_failure_sets_error_status(tmp_path: Path, tracing: TracingSystem) -> None:
    router = make_router(tmp_path, tracing=tracing)
    with pytest.raises(InvalidInputError):
        router.route(RoutingRequest.from_arrays(np.ones(3), np.full((1, 3), np.nan)), now=NOW)
    root = next(s for s in tracing.finished_spans() if s.name == "routing_request")
    assert root.status.status_code.name == "ERROR"
    assert any(e.name == "exception" for e in root.events)
    fe = next(s for s in tracing.finished_spans() if s.name == "feature_engineering")
    assert fe.status.status_code.name == "ERROR"


def test_unsampled_requests_create_no_child_spans(tmp_path: Path) -> None:
    system = TracingSystem(TracingConfig(sampling_ratio=0.0))
    try:
        router = make_router(tmp_path, tracing=system)
        for _ in range(5):
            router.route(request(50), now=NOW)
        assert system.finished_spans() == ()
        # a sampled incoming trace is honoured even at ratio 0 (parent-based sampling)
        router.route(request(2), now=NOW, traceparent="00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")
        assert {s.name for s in system.finished_spans()} >= {"routing_request", "model_inference"}
    finally:
        system.shutdown()


@pytest.mark.parametrize("wiring", ["global", "provider", "system"])
def test_collector_keeps_its_spans_through_shutdown_and_reinit(tmp_path: Path, wiring: str) -> None:
    """What the collector recorded stays until its clear(), whatever happens to the tracing system."""
    system = TracingSystem(TracingConfig(service_name="first", sampling_ratio=1.0))
    later = TracingSystem(TracingConfig(service_name="later", sampling_ratio=1.0))
    try:
        if wiring != "system":
            system.init()  # the process-wide provider: the router follows it (or is handed it)
        tracing = {"global": None, "provider": system.provider, "system": system}[wiring]
        router = make_router(tmp_path, tracing=tracing, max_candidate_spans=3)
        sizes = (1, 2, 5)
        for n in sizes:
            router.route(request(n), now=NOW)
        # routing_request, circuit_breaker_check, feature_engineering, model_inference, 2 per candidate (<= 3)
        expected = sum(4 + 2 * min(n, 3) for n in sizes)
        before = router.collector.spans()
        assert len(before) == expected
        assert before.trace_id.nunique() == len(sizes) and set(before.trace_id) == set(
            router.collector.requests().trace_id
        )

        system.shutdown()  # flushes and closes the exporters; a global one turns tracing off
        assert_frame_equal(router.collector.spans(), before)
        later.init()  # a re-init with a new config
        assert_frame_equal(router.collector.spans(), before)
        assert router.collector.stored["spans"] == expected and router.collector.dropped["spans"] == 0
        if wiring == "global":  # the router follows the new system; the old spans stay
            router.route(request(2), now=NOW)
            spans = router.collector.spans()
            assert len(spans) == expected + 8
            assert_frame_equal(spans.iloc[:expected], before)
            assert [s.resource.attributes["service.name"] for s in router.collector.finished_spans()[expected:]] == [
                "later"
            ] * 8

        router.collector.clear()
        assert len(router.collector.spans()) == 0 and router.collector.stored["spans"] == 0
    finally:
        later.shutdown()
        system.shutdown()


def test_collector_span_capacity_drops_whole_requests_and_counts_them(tmp_path: Path, tracing: TracingSystem) -> None:
    router = Router(
        RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")), max_candidate_spans=3),
        tracing=tracing,
        log_config=LogConfig(renderer="none"),
        collector=Collector(capacity_spans=20),
    )
    for n in (1, 2, 5, 1):  # 6, 8, 10, 6 spans
        router.route(request(n), now=NOW)
    tracing.shutdown()
    assert router.collector.stored["spans"] == 10 + 6 and router.collector.dropped["spans"] == 6 + 8
    spans = router.collector.spans()
    kept_traces = list(router.collector.requests().trace_id)[2:]
    assert Counter(spans.trace_id) == {kept_traces[0]: 10, kept_traces[1]: 6}


def test_bad_traceparent_is_invalid_input(tmp_path: Path) -> None:
    router = make_router(tmp_path)
    with pytest.raises(InvalidInputError):
        router.route(request(2), now=NOW, traceparent="00-zz-00-01")
    assert sample(router, "tiny_dancer_errors_total", error_type="invalid_input") == 1


def test_debug_logs_per_candidate_only_when_enabled(tmp_path: Path) -> None:
    quiet, loud = make_router(tmp_path, level="INFO"), make_router(tmp_path, level="DEBUG")
    for router in (quiet, loud):
        router.route(request(7), now=NOW)
    assert not (quiet.collector.logs().level == "debug").any()
    debug = loud.collector.logs()
    assert (debug.event == "Model inference completed").sum() == 7
    assert (debug.event == "Routing decision made").sum() == 7
    assert (debug.event == "Extracting features").sum() == 1
    completed = debug[debug.event == "Routing request completed successfully"].iloc[0].fields
    assert set(completed) >= {"inference_time_us", "lightweight_routes", "powerful_routes"}


def test_no_candidate_id_or_free_text_becomes_a_label(tmp_path: Path) -> None:
    router = make_router(tmp_path)
    secret = "cand-SECRET-label-leak"
    router.route(request(20, prefix=secret), now=NOW)
    with pytest.raises(InvalidInputError):
        router.route(RoutingRequest.from_arrays(np.ones(3), np.ones((1, 4)), ids=[secret + "x"]), now=NOW)
    text = router.export_metrics()
    assert "SECRET" not in text
    label_values = set(re.findall(r'="([^"]*)"', text))
    allowed = {"success", "failure", "total", "1-10", "11-50", "51-100", "100+", "original", "fastgrnn",
               "lightweight", "powerful"}  # fmt: skip
    from tinydancer.errors import ERROR_TYPES

    numeric = {v for v in label_values if re.fullmatch(r"[-+0-9.eInf]+", v)}  # histogram "le" bounds
    assert label_values - numeric <= allowed | set(ERROR_TYPES)


def test_two_routers_do_not_collide(tmp_path: Path) -> None:
    a, b = make_router(tmp_path), make_router(tmp_path)
    a.route(request(3), now=NOW)
    assert sample(a, "tiny_dancer_routing_requests_total", status="success") == 1
    assert sample(b, "tiny_dancer_routing_requests_total", status="success") == 0


def test_concurrent_callers_counts_exact(tmp_path: Path, tracing: TracingSystem) -> None:
    router = make_router(tmp_path, tracing=tracing)
    per_thread, threads_n, n = 40, 4, 6
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(per_thread):
                router.route(request(n), now=NOW)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    total = per_thread * threads_n
    assert sample(router, "tiny_dancer_routing_requests_total", status="success") == total
    assert len(router.collector.requests()) == total
    assert len(router.collector.decisions()) == total * n
    assert router.collector.requests().request_id.is_unique
    names = Counter(s.name for s in tracing.finished_spans())
    assert names["routing_request"] == total and names["model_inference"] == total * (1 + n)
    logs = router.collector.logs()
    assert (logs.event == "Routing request completed successfully").sum() == total
    assert (logs.event == "Processing routing request").sum() == total


def test_metrics_endpoint_and_wsgi(tmp_path: Path) -> None:
    import urllib.request

    router = make_router(tmp_path)
    router.route(request(4), now=NOW)
    server = router.serve_metrics(port=0)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        body = urllib.request.urlopen(server.url, timeout=5).read().decode()
        assert 'tiny_dancer_routing_requests_total{status="success"} 1.0' in body
    finally:
        server.stop()
    assert callable(router.metrics_wsgi_app())


def test_error_logs_carry_the_trace_id(tmp_path: Path, tracing: TracingSystem) -> None:
    router = make_router(tmp_path, tracing=tracing)
    with pytest.raises(InvalidInputError):
        router.route(RoutingRequest.from_arrays(np.ones(3), np.ones((1, 2))), now=NOW)
    logs = router.collector.logs()
    failed = logs[logs.event == "Routing request failed"]
    req = router.collector.requests().iloc[-1]
    assert len(failed) == 1 and failed.trace_id.iloc[0] == req.trace_id and req.outcome == "failure"
    root = next(s for s in tracing.finished_spans() if s.name == "routing_request")
    assert root.attributes["outcome"] == "failure"
