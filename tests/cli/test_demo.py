"""The demo runs end to end and writes a report whose figures match what the router recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tinydancer.cli.demo import DEMO_CONFIDENCE_THRESHOLD, DEMO_MAX_UNCERTAINTY, run_demo


def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(tmp_path / "models", n_requests=40, report_dir=tmp_path / "reports", learned_rows=400) == 0
    out = capsys.readouterr().out
    assert "APGR" in out and "Decisions for the first request" in out
    assert "400 generated RouteLLM-format outcomes" in out and "bundled" not in out  # the data is generated
    # Counts print as integers, not as 10.00000.
    for key, value in (
        ("requests", 10),
        ("candidates", 80),
        ("errors", 0),
        ("lightweight_routes_judged_unsuitable", 0),
    ):
        assert re.search(rf"^{key}\s+{value}$", out, re.MULTILINE), key
    assert not re.search(r"^(requests|candidates|errors|spans_recorded|log_records)\s+\d+\.\d", out, re.MULTILINE)
    # The thresholds the router used are printed (they are not RouterConfig's 0.85 / 0.15).
    assert (DEMO_CONFIDENCE_THRESHOLD, DEMO_MAX_UNCERTAINTY) == (0.7, 0.6)
    assert "lightweight when confidence >= 0.7 and uncertainty <= 0.6" in out
    assert re.search(r"^confidence_threshold\s+0\.700$", out, re.MULTILINE)
    assert re.search(r"^max_uncertainty\s+0\.600$", out, re.MULTILINE)
    summary = json.loads((tmp_path / "reports" / "demo-summary.json").read_text())
    assert summary["requests"] == 10 and summary["candidates"] == 80 and summary["errors"] == 0
    assert summary["confidence_threshold"] == 0.7 and summary["max_uncertainty"] == 0.6
    # Both routes occur: the fitted candidate model separates the candidates at these thresholds.
    assert 0 < summary["lightweight_share"] < 1
    assert 0 <= summary["learned_router"]["apgr"] <= 1
    prom = (tmp_path / "reports" / "demo-metrics.prom").read_text()
    assert 'tiny_dancer_routing_requests_total{status="success"} 10.0' in prom
    assert (tmp_path / "reports" / "demo-overview.png").stat().st_size > 10_000
    assert {p.name for p in (tmp_path / "reports" / "monitoring").iterdir()} >= {"alerts.yml", "prometheus.yml"}
    assert (tmp_path / "models" / "demo-router.safetensors").exists()
