"""The demo runs end to end and writes a report whose figures match what the router recorded."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest

from tinydancer.cli.demo import (
    DEMO_CONFIDENCE_THRESHOLD,
    DEMO_MAX_UNCERTAINTY,
    DEMO_OPERATING_POINTS,
    DEMO_SINGLE_PROMPTS,
    run_demo,
)
from tinydancer.model.prompt_artifact import load_prompt_router


class DemoRun(NamedTuple):
    folder: Path
    out: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    tmp_path = tmp_path_factory.mktemp("demo")
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert run_demo(tmp_path / "models", n_requests=40, report_dir=tmp_path / "reports", learned_rows=600) == 0
    return DemoRun(tmp_path, printed.getvalue())


def test_demo_end_to_end(demo: DemoRun) -> None:
    tmp_path, out = demo
    assert "APGR" in out and "Decisions for the first request" in out
    assert "600 bundled RouteLLM MMLU outcomes" in out  # a seeded sample of the real data
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


def test_demo_serves_the_prompt_router_it_trained(demo: DemoRun) -> None:
    tmp_path, out = demo.folder, demo.out.split("5. Serving the prompt router")[1]
    artifact = load_prompt_router(tmp_path / "models" / "demo-prompt-router.safetensors")
    assert set(artifact.operating_points) == set(DEMO_OPERATING_POINTS)
    assert artifact.default_operating_point == next(iter(DEMO_OPERATING_POINTS))
    decisions = pd.read_csv(tmp_path / "reports" / "demo-prompt-decisions.csv")
    n_test = 240  # 40 % of 600 rows
    # one by one, then every test prompt once per operating point: each prompt is one request
    routed = min(DEMO_SINGLE_PROMPTS, n_test) + n_test * len(DEMO_OPERATING_POINTS)
    assert len(decisions) == routed and "prompt" not in decisions.columns
    assert set(decisions["operating_point"]) == set(DEMO_OPERATING_POINTS)
    assert (decisions["use_lightweight"] == (decisions["p_strong"] < decisions["threshold"])).all()
    prom = (tmp_path / "reports" / "demo-prompt-metrics.prom").read_text()
    assert f'tiny_dancer_routing_requests_total{{status="success"}} {float(routed)}' in prom
    assert 'tiny_dancer_operating_point_info{operating_point="share-0.2"} 1.0' in prom  # the last one switched to
    assert f"{artifact.weak_model}" in out or f"{artifact.strong_model}" in out  # decisions name the models
