"""The demo runs end to end and writes a report whose figures match what the router recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinydancer.demo import run_demo


def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(tmp_path / "models", n_requests=40, report_dir=tmp_path / "reports", learned_rows=400) == 0
    out = capsys.readouterr().out
    assert "APGR" in out and "Decisions for the first request" in out
    summary = json.loads((tmp_path / "reports" / "demo-summary.json").read_text())
    assert summary["requests"] == 10 and summary["candidates"] == 80 and summary["errors"] == 0
    assert 0 <= summary["learned_router"]["apgr"] <= 1
    prom = (tmp_path / "reports" / "demo-metrics.prom").read_text()
    assert 'tiny_dancer_routing_requests_total{status="success"} 10.0' in prom
    assert (tmp_path / "reports" / "demo-overview.png").stat().st_size > 10_000
    assert {p.name for p in (tmp_path / "reports" / "monitoring").iterdir()} >= {"alerts.yml", "prometheus.yml"}
    assert (tmp_path / "models" / "demo-router.safetensors").exists()
