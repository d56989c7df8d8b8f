"""The guide's three examples run, route with a fitted model, and show what the guide says they show."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tinydancer.examples import MODEL_PATH, full_observability, metrics_example, tracing_example

FITTED = f"no model at {MODEL_PATH}: fitted the demo's candidate router on generated example traffic"


@pytest.fixture(autouse=True)
def in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each example runs where ``./models/fastgrnn.safetensors`` does not exist yet (not in the clone)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _routes(out: str) -> tuple[int, int]:
    found = re.search(r"routed (\d+) candidates: (\d+) lightweight, (\d+) powerful", out)
    assert found, out
    total, light, powerful = (int(g) for g in found.groups())
    assert light + powerful == total
    return light, powerful


def test_metrics_example(in_empty_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert metrics_example.main() == 0
    out = capsys.readouterr().out
    assert FITTED in out and (in_empty_folder / "models" / "fastgrnn.safetensors").is_file()
    assert 'tiny_dancer_routing_requests_total{status="success"} 20.0' in out
    assert "tiny_dancer_candidates_processed_total" in out and "# TYPE tiny_dancer_confidence_scores histogram" in out
    # A fitted model separates the candidates: both routes occur (the random model used when the file was
    # absent sent all 100 to the powerful model).
    light, powerful = _routes(out)
    assert light > 10 and powerful > 10
    assert f'tiny_dancer_routing_decisions_total{{model_type="lightweight"}} {light}.0' in out
    # Second run: the saved file is loaded as it is (no refit), and routes the same way.
    assert metrics_example.main() == 0
    again = capsys.readouterr().out
    assert "no model at" not in again and _routes(again) == (light, powerful)


def test_tracing_example_exports_to_a_jaeger_agent(in_empty_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
    assert FITTED in out and (in_empty_folder / "models" / "fastgrnn.safetensors").is_file()
    light, powerful = _routes(out)
    assert light > 0 and powerful > 0


def test_full_observability_example(in_empty_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert full_observability.main(["--requests", "4"]) == 0
    captured = capsys.readouterr()
    assert 'tiny_dancer_routing_requests_total{status="success"} 4.0' in captured.out
    assert "collector: 4 requests, 20 decisions" in captured.out
    assert "INFO tiny_dancer_router: Routing request completed successfully" in captured.err
    assert "Model path not found" not in captured.err  # the router loaded the fitted file
    assert FITTED in captured.out and (in_empty_folder / "models" / "fastgrnn.safetensors").is_file()
    light, powerful = _routes(captured.out)
    assert light > 0 and powerful > 0
