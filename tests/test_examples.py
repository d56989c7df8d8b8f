"""The guide's three examples run and show what the guide says they show."""

from __future__ import annotations

import re
import socket

import pytest

from tinydancer.examples import full_observability, metrics_example, tracing_example


def test_metrics_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert metrics_example.main() == 0
    out = capsys.readouterr().out
    assert 'tiny_dancer_routing_requests_total{status="success"} 20.0' in out
    assert "tiny_dancer_candidates_processed_total" in out and "# TYPE tiny_dancer_confidence_scores histogram" in out


def test_tracing_example_exports_to_a_jaeger_agent(capsys: pytest.CaptureFixture[str]) -> None:
    agent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    agent.bind(("127.0.0.1", 0))
    agent.settimeout(5)
    try:
        assert tracing_example.main([f"127.0.0.1:{agent.getsockname()[1]}"]) == 0
        datagram = agent.recv(65535)
    finally:
        agent.close()
    out = capsys.readouterr().out
    assert b"routing_request" in datagram and b"tiny-dancer" in datagram  # thrift strings on the wire
    assert re.search(r"traceparent: 00-[0-9a-f]{32}-[0-9a-f]{16}-01", out)
    assert "'routing_request': 5" in out and "failed=0" in out


def test_full_observability_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert full_observability.main(["--requests", "4"]) == 0
    captured = capsys.readouterr()
    assert 'tiny_dancer_routing_requests_total{status="success"} 4.0' in captured.out
    assert "collector: 4 requests, 20 decisions" in captured.out
    assert "INFO tiny_dancer_router: Routing request completed successfully" in captured.err
