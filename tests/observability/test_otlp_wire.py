"""OTLP/HTTP wire format, and exporters that are down never block or lose count.

A local ``http.server`` on 127.0.0.1 plays the collector (``POST /v1/traces``); bodies are decoded
with ``ExportTraceServiceRequest``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from tinydancer.observability.route_spans import RoutingSpan, emit_candidate_spans
from tinydancer.observability.tracing import TracingConfig, TracingSystem


class Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CollectorHandler)
        self.requests: list[tuple[str, str, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


class CollectorHandler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((self.path, self.headers["Content-Type"], body))
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def emit_tree(system: TracingSystem) -> None:
    tracer = system.tracer
    start = time.time_ns()
    with RoutingSpan.routing_request(2, tracer=tracer):
        with RoutingSpan.circuit_breaker_check(tracer=tracer):
            pass
        with RoutingSpan.model_inference(2, tracer=tracer) as inference:
            emit_candidate_spans(
                tracer,
                inference,
                ["c-0", "c-1"],
                np.array([0.92, 0.40]),
                np.array([0.08, 0.30]),
                np.array([True, False]),
                start,
                time.time_ns(),
            )


def attrs(span: OtlpSpan) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in span.attributes:
        field = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, field)
    return out


def test_span_tree_arrives_as_export_trace_service_request(collector: Collector) -> None:
    system = TracingSystem(TracingConfig(service_name="otlp-wire", otlp_endpoint=collector.url))
    emit_tree(system)
    system.shutdown()
    expected = {s.context.span_id: s for s in system.finished_spans()}  # type: ignore[union-attr]
    assert len(expected) == 7

    spans: list[OtlpSpan] = []
    services = set()
    for path, content_type, body in collector.requests:
        assert path == "/v1/traces" and content_type == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            services.add((resource["service.name"], resource["service.version"]))
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "tiny_dancer_router"
                spans.extend(scope_spans.spans)
    assert {name for name, _ in services} == {"otlp-wire"}
    assert len(spans) == 7
    for wire in spans:
        sdk = expected[int.from_bytes(wire.span_id, "big")]
        assert wire.name == sdk.name
        assert int.from_bytes(wire.trace_id, "big") == sdk.context.trace_id  # type: ignore[union-attr]
        parent = int.from_bytes(wire.parent_span_id, "big") if wire.parent_span_id else None
        assert parent == (sdk.parent.span_id if sdk.parent is not None else None)
    (root,) = [s for s in spans if s.name == "routing_request"]
    assert root.kind == OtlpSpan.SPAN_KIND_SERVER and attrs(root) == {"candidate_count": 2}
    decisions = {attrs(s)["candidate_id"]: attrs(s) for s in spans if s.name == "uncertainty_estimation"}
    assert decisions["c-0"]["use_lightweight"] is True
    assert decisions["c-1"]["uncertainty"] == pytest.approx(0.30)
    (otlp_stats,) = system.exporter_stats()
    assert (otlp_stats.exported, otlp_stats.failed, otlp_stats.dropped) == (7, 0, 0)


def closed_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nobody listens any more: connections are refused


def test_dead_exporters_fail_counted_without_raising() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    jaeger_port = udp.getsockname()[1]
    udp.close()  # nobody listens on this UDP port
    system = TracingSystem(
        TracingConfig(
            jaeger_agent_endpoint=f"127.0.0.1:{jaeger_port}",
            otlp_endpoint=f"http://127.0.0.1:{closed_tcp_port()}/v1/traces",
            export_timeout_s=1.0,
        )
    )
    for _ in range(20):
        emit_tree(system)
    system.shutdown()
    stats = {s.name: s for s in system.exporter_stats()}
    assert len(system.finished_spans()) == 140  # the in-memory record is complete
    # UDP is fire-and-forget: the agent being absent is invisible to the sender.
    assert (stats["jaeger"].enqueued, stats["jaeger"].exported, stats["jaeger"].dropped) == (140, 140, 0)
    # Refused connections: every span is accounted for as failed, nothing raised into the caller.
    assert (stats["otlp"].enqueued, stats["otlp"].exported, stats["otlp"].failed) == (140, 0, 140)


def test_stuck_collector_never_blocks_the_caller_and_drops_are_counted() -> None:
    # A listening socket that never accepts: the TCP handshake completes (backlog) and the POST
    # then waits for a reply that never comes, until export_timeout_s.
    stuck = socket.socket()
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(8)
    try:
        queue = 16
        system = TracingSystem(
            TracingConfig(
                otlp_endpoint=f"http://127.0.0.1:{stuck.getsockname()[1]}/v1/traces",
                export_queue_size=queue,
                export_timeout_s=1.5,
            )
        )
        emitted = 0
        for _ in range(60):
            emit_tree(system)
            emitted += 7
        mid = {s.name: s for s in system.exporter_stats()}["otlp"]
        system.shutdown()
    finally:
        stuck.close()
    assert len(system.finished_spans()) == emitted
    assert mid.enqueued + mid.dropped == emitted
    assert mid.max_in_flight <= queue  # the queue bound holds
    assert mid.dropped > 0  # the export of the first full batch is stuck: the rest is dropped
    final = {s.name: s for s in system.exporter_stats()}["otlp"]
    assert final.enqueued + final.dropped == emitted
    assert (final.exported, final.failed) == (0, final.enqueued)  # timed out, counted, not raised
