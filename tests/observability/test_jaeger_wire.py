"""Jaeger agent wire format: spans arrive over UDP as thrift-compact ``Agent.emitBatch`` datagrams.

No Jaeger server is needed (none is installable here): a UDP socket on 127.0.0.1 plays the agent and
the datagrams are decoded with the thrift types shipped inside the exporter package.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest
from opentelemetry.exporter.jaeger.thrift.gen.agent import Agent
from opentelemetry.exporter.jaeger.thrift.gen.jaeger import ttypes as jaeger
from thrift.protocol import TCompactProtocol
from thrift.transport import TTransport

from tinydancer.observability.route_spans import RoutingSpan, emit_candidate_spans
from tinydancer.observability.tracing import TracingConfig, TracingSystem


@pytest.fixture
def agent_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10.0)
    yield sock
    sock.close()


def decode_emit_batch(datagram: bytes) -> jaeger.Batch:
    protocol = TCompactProtocol.TCompactProtocol(TTransport.TMemoryBuffer(datagram))
    name, _, _ = protocol.readMessageBegin()
    assert name == "emitBatch"
    args = Agent.emitBatch_args()  # type: ignore[no-untyped-call]
    args.read(protocol)  # type: ignore[no-untyped-call]
    protocol.readMessageEnd()
    batch: jaeger.Batch = args.batch
    return batch


def signed64(value: int) -> int:
    """Jaeger thrift carries ids as signed 64-bit integers."""
    return value - (1 << 64) if value >= 1 << 63 else value


def tags(span: jaeger.Span) -> dict[str, object]:
    out: dict[str, object] = {}
    for tag in span.tags or []:
        out[tag.key] = {
            jaeger.TagType.STRING: tag.vStr,
            jaeger.TagType.DOUBLE: tag.vDouble,
            jaeger.TagType.BOOL: tag.vBool,
            jaeger.TagType.LONG: tag.vLong,
        }[tag.vType]
    return out


def test_span_tree_arrives_as_emit_batch(agent_socket: socket.socket) -> None:
    port = agent_socket.getsockname()[1]
    system = TracingSystem(TracingConfig(service_name="jaeger-wire", jaeger_agent_endpoint=f"127.0.0.1:{port}"))
    tracer = system.tracer
    start = time.time_ns()
    with RoutingSpan.routing_request(2, tracer=tracer) as root:
        with RoutingSpan.feature_engineering(2, tracer=tracer):
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
                limit=10,
            )
    system.shutdown()  # flushes the batch processor: the datagrams are sent by now
    expected = {s.context.span_id: s for s in system.finished_spans()}  # type: ignore[union-attr]
    assert len(expected) == 7

    received: list[jaeger.Span] = []
    services = set()
    while len(received) < len(expected):
        batch = decode_emit_batch(agent_socket.recv(65535))
        services.add(batch.process.serviceName)
        received.extend(batch.spans)
    assert services == {"jaeger-wire"}
    assert len(received) == len(expected)

    root_ctx = root.get_span_context()
    by_id = {signed64(s.context.span_id): s for s in expected.values()}  # type: ignore[union-attr]
    for wire in received:
        sdk = by_id[wire.spanId]
        assert wire.operationName == sdk.name
        assert wire.traceIdHigh == signed64(root_ctx.trace_id >> 64)
        assert wire.traceIdLow == signed64(root_ctx.trace_id & (2**64 - 1))
        parent = sdk.parent.span_id if sdk.parent is not None else 0
        assert wire.parentSpanId == signed64(parent)
    names = sorted(s.operationName for s in received)
    assert names == sorted(
        ["routing_request", "feature_engineering", "model_inference"]
        + ["model_inference", "uncertainty_estimation"] * 2
    )
    (wire_root,) = [s for s in received if s.operationName == "routing_request"]
    assert wire_root.parentSpanId == 0
    assert tags(wire_root)["candidate_count"] == 2
    assert tags(wire_root)["span.kind"] == "server"
    per_candidate = {(s.operationName, tags(s)["candidate_id"]): tags(s) for s in received if "candidate_id" in tags(s)}
    assert per_candidate[("model_inference", "c-0")]["confidence"] == pytest.approx(0.92)
    assert per_candidate[("uncertainty_estimation", "c-1")]["use_lightweight"] is False
    assert per_candidate[("uncertainty_estimation", "c-1")]["uncertainty"] == pytest.approx(0.30)
    (jaeger_stats,) = system.exporter_stats()
    assert (jaeger_stats.name, jaeger_stats.exported, jaeger_stats.dropped) == ("jaeger", 7, 0)


def test_force_flush_sends_without_shutdown(agent_socket: socket.socket) -> None:
    port = agent_socket.getsockname()[1]
    system = TracingSystem(TracingConfig(service_name="flush", jaeger_agent_endpoint=f"127.0.0.1:{port}"))
    try:
        with RoutingSpan.circuit_breaker_check("open", tracer=system.tracer):
            pass
        assert system.force_flush()
        batch = decode_emit_batch(agent_socket.recv(65535))
        assert [(s.operationName, tags(s)["circuit_breaker.state"]) for s in batch.spans] == [
            ("circuit_breaker_check", "open")
        ]
    finally:
        system.shutdown()
