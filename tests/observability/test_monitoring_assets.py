"""Shipped monitoring assets: exact guide content, promtool-checked, dashboard queries match real metrics."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests._requires import require_tool
from tinydancer.errors import InvalidInputError
from tinydancer.observability.metrics import RouterMetrics
from tinydancer.observability.monitoring_assets import ASSET_NAMES, read_asset, write_assets

# The guide's "Alerting Rules" block, as data.
GUIDE_ALERTS = {
    "groups": [
        {
            "name": "tiny_dancer",
            "rules": [
                {
                    "alert": "HighErrorRate",
                    "expr": "rate(tiny_dancer_errors_total[5m]) > 0.05",
                    "for": "5m",
                    "annotations": {"summary": "High error rate detected"},
                },
                {
                    "alert": "CircuitBreakerOpen",
                    "expr": "tiny_dancer_circuit_breaker_state == 2",
                    "for": "1m",
                    "annotations": {"summary": "Circuit breaker is open"},
                },
                {
                    "alert": "HighLatency",
                    "expr": "histogram_quantile(0.95, rate(tiny_dancer_routing_latency_seconds_bucket[5m])) > 0.01",
                    "for": "5m",
                    "annotations": {"summary": "P95 latency above 10ms"},
                },
            ],
        }
    ]
}
# The prompt router's live-quality alerts (tinydancer.observability.outcomes): name -> (expr, for).
QUALITY_ALERTS = {
    "ConformalCoverageLow": (
        "tiny_dancer_conformal_coverage < on(job, instance) tiny_dancer_conformal_coverage_target - 0.05"
        " and on(job, instance) tiny_dancer_outcome_window_size >= 200",
        "10m",
    ),
    "WeakErrorAboveTarget": (
        'tiny_dancer_weak_error_rate > on(job, instance) tiny_dancer_operating_point_target{target="weak_error"}',
        "10m",
    ),
    "StrongShareOffTarget": (
        "abs(tiny_dancer_strong_share - on(job, instance)"
        ' tiny_dancer_operating_point_target{target="strong_share"}) > 0.1',
        "15m",
    ),
    "DriftDetected": ("tiny_dancer_drift_psi > 0.2", "20m"),
}
# The guide's example dashboard: title -> expression.
GUIDE_PANELS = {
    "Request Rate": "rate(tiny_dancer_routing_requests_total[5m])",
    "P95 Latency": "histogram_quantile(0.95, rate(tiny_dancer_routing_latency_seconds_bucket[5m]))",
    "Circuit Breaker State": "tiny_dancer_circuit_breaker_state",
    "Lightweight vs Powerful Routing": "rate(tiny_dancer_routing_decisions_total[5m])",
}


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def dashboard() -> dict:
    return json.loads(read_asset("grafana-dashboard.json"))


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def exported_labels() -> dict[str, set[str]]:
    """Sample name -> label names, from a RouterMetrics with every series pre-created."""
    out: dict[str, set[str]] = {}
    for s in RouterMetrics().samples():
        out.setdefault(s.name, set()).update(s.labels)
    return out


@pytest.fixture
def assets_dir(tmp_path: Path) -> Path:
    write_assets(tmp_path)
    return tmp_path


def test_write_assets_writes_every_file_verbatim(tmp_path: Path) -> None:
    paths = write_assets(tmp_path / "new" / "dir")
    assert [p.name for p in paths] == list(ASSET_NAMES)
    for p in paths:
        assert p.read_text(encoding="utf-8") == read_asset(p.name)
    assert write_assets(tmp_path / "new" / "dir") == paths  # overwrite is the default


def test_write_assets_refuses_to_overwrite_when_asked(tmp_path: Path) -> None:
    (tmp_path / "alerts.yml").write_text("mine")
    with pytest.raises(FileExistsError, match=r"alerts\.yml"):
        write_assets(tmp_path, overwrite=False)
    assert (tmp_path / "alerts.yml").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.yml"]  # nothing else written


def test_read_asset_rejects_unknown_names() -> None:
    with pytest.raises(InvalidInputError, match="asset name"):
        read_asset("../pyproject.toml")


def test_alert_rules_are_exactly_the_guides() -> None:
    assert yaml.safe_load(read_asset("alerts.yml")) == GUIDE_ALERTS


def test_asset_names_are_every_shipped_file() -> None:
    assert ASSET_NAMES == (
        "prometheus.yml",
        "alerts.yml",
        "alerts_test.yml",
        "quality_alerts.yml",
        "quality_alerts_test.yml",
        "grafana-dashboard.json",
    )


def test_quality_alert_rules() -> None:
    spec = yaml.safe_load(read_asset("quality_alerts.yml"))
    [group] = spec["groups"]
    assert group["name"] == "tiny_dancer_quality"
    rules = {r["alert"]: r for r in group["rules"]}
    assert list(rules) == list(QUALITY_ALERTS)
    for name, (expr, duration) in QUALITY_ALERTS.items():
        assert rules[name]["expr"] == expr, name
        assert rules[name]["for"] == duration, name
        assert set(rules[name]["annotations"]) == {"summary", "description"}, name
        assert set(rules[name]) == {"alert", "expr", "for", "annotations"}, name


def test_quality_alerts_name_only_exported_series() -> None:
    from prometheus_client import CollectorRegistry

    from tinydancer.observability.drift import DriftMonitor
    from tinydancer.observability.outcomes import OPERATING_POINT_TARGETS, OutcomeMonitor

    registry = CollectorRegistry()
    OutcomeMonitor(registry)
    DriftMonitor(registry)
    exported = {s.name for m in registry.collect() for s in m.samples}
    [group] = yaml.safe_load(read_asset("quality_alerts.yml"))["groups"]
    for rule in group["rules"]:
        names = set(re.findall(r"\btiny_dancer_[a-z_]+", rule["expr"]))
        assert names and names <= exported, rule["alert"]
        assert set(re.findall(r'target="(\w+)"', rule["expr"])) <= set(OPERATING_POINT_TARGETS), rule["alert"]


def test_scrape_config_is_the_guides_plus_rule_files() -> None:
    cfg = yaml.safe_load(read_asset("prometheus.yml"))
    assert cfg["rule_files"] == ["alerts.yml", "quality_alerts.yml"]
    assert cfg["scrape_configs"] == [
        {"job_name": "tiny-dancer", "scrape_interval": "15s", "static_configs": [{"targets": ["localhost:9090"]}]}
    ]


def test_alert_unit_tests_cover_firing_and_not_firing_for_every_alert() -> None:
    spec = yaml.safe_load(read_asset("alerts_test.yml"))
    assert spec["rule_files"] == ["alerts.yml"]
    outcomes: dict[str, set[bool]] = {}
    for group in spec["tests"]:
        for case in group.get("alert_rule_test", []):
            outcomes.setdefault(case["alertname"], set()).add(bool(case["exp_alerts"]))
    assert outcomes == {name: {True, False} for name in ("HighErrorRate", "CircuitBreakerOpen", "HighLatency")}


def test_quality_alert_unit_tests_cover_firing_and_not_firing_for_every_alert() -> None:
    spec = yaml.safe_load(read_asset("quality_alerts_test.yml"))
    assert spec["rule_files"] == ["quality_alerts.yml"]
    outcomes: dict[str, set[bool]] = {}
    for group in spec["tests"]:
        for case in group.get("alert_rule_test", []):
            outcomes.setdefault(case["alertname"], set()).add(bool(case["exp_alerts"]))
    assert outcomes == {name: {True, False} for name in QUALITY_ALERTS}
    text = read_asset("quality_alerts_test.yml")
    assert "NaN" in text and "150x20" in text  # NaN targets and a too-small window are exercised


@pytest.mark.prometheus
def test_promtool_check_rules_and_config(assets_dir: Path) -> None:
    promtool = require_tool("promtool")
    for name, count in (("alerts.yml", 3), ("quality_alerts.yml", 4)):
        rules = run(promtool, "check", "rules", assets_dir / name)
        assert rules.returncode == 0, rules.stdout + rules.stderr
        assert f"SUCCESS: {count} rules found" in rules.stdout, name
    config = run(promtool, "check", "config", assets_dir / "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    assert "2 rule files found" in config.stdout


@pytest.mark.prometheus
@pytest.mark.parametrize("tests", ["alerts_test.yml", "quality_alerts_test.yml"])
def test_promtool_unit_tests_pass(assets_dir: Path, tests: str) -> None:
    promtool = require_tool("promtool")
    result = run(promtool, "test", "rules", tests, cwd=assets_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.prometheus
@pytest.mark.parametrize(
    ("old", "new"),
    [("> 0.05", "> 5"), ("== 2", "== 1"), ("> 0.01", "> 0.1"), ("for: 1m", "for: 10m")],
)
def test_promtool_unit_tests_catch_a_changed_rule(assets_dir: Path, old: str, new: str) -> None:
    promtool = require_tool("promtool")
    rules = assets_dir / "alerts.yml"
    text = rules.read_text()
    assert text.count(old) == 1
    rules.write_text(text.replace(old, new))
    result = run(promtool, "test", "rules", "alerts_test.yml", cwd=assets_dir)
    assert result.returncode != 0, result.stdout


@pytest.mark.prometheus
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("- 0.05", "- 0.5"),
        (">= 200", ">= 100"),
        ("abs(", "("),
        ('{target="weak_error"}', '{target="strong_share"}'),
        ("> 0.1", "> 0.3"),
        ("for: 15m", "for: 10m"),
        ("drift_psi > 0.2", "drift_psi > 0.4"),
        ("for: 20m", "for: 30m"),
    ],
)
def test_promtool_quality_unit_tests_catch_a_changed_rule(assets_dir: Path, old: str, new: str) -> None:
    promtool = require_tool("promtool")
    rules = assets_dir / "quality_alerts.yml"
    text = rules.read_text()
    assert text.count(old) == 1
    rules.write_text(text.replace(old, new))
    result = run(promtool, "test", "rules", "quality_alerts_test.yml", cwd=assets_dir)
    assert result.returncode != 0, result.stdout


def test_dashboard_has_the_guides_panels_and_the_distribution_panels() -> None:
    d = dashboard()
    assert d["title"] == "Tiny Dancer Routing"
    assert [i["name"] for i in d["__inputs"]] == ["DS_PROMETHEUS"]
    panels = {p["title"]: p for p in d["panels"]}
    for title, expr in GUIDE_PANELS.items():
        assert [t["expr"] for t in panels[title]["targets"]] == [expr], title
    exprs = " ".join(dashboard_exprs())
    for metric in (
        "tiny_dancer_confidence_scores_bucket",
        "tiny_dancer_uncertainty_estimates_bucket",
        "tiny_dancer_errors_total",
        "tiny_dancer_feature_engineering_duration_seconds_bucket",
        "tiny_dancer_model_inference_duration_seconds_bucket",
        "tiny_dancer_candidates_processed_total",
    ):
        assert metric in exprs, metric
    assert {p["type"] for p in d["panels"]} <= {"timeseries", "stat", "heatmap"}


def test_dashboard_layout_is_valid() -> None:
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, f"{p['title']} overlaps another panel"
        cells |= area
        for t in p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def test_every_dashboard_query_names_exported_metrics_and_labels() -> None:
    labels = exported_labels()
    scrape_labels = {"job", "instance"}
    for p in dashboard()["panels"]:
        for t in p["targets"]:
            names = re.findall(r"\btiny_dancer_[a-z_]+", t["expr"])
            assert names, t["expr"]
            available = scrape_labels.copy()
            for name in names:
                assert name in labels, f"{p['title']}: {name} is not exported by RouterMetrics"
                available |= labels[name]
            for group in re.findall(r"by \(([^)]*)\)", t["expr"]):
                assert {g.strip() for g in group.split(",")} <= available, t["expr"]
            assert set(re.findall(r"{{(\w+)}}", t.get("legendFormat", ""))) <= available, p["title"]


@pytest.mark.prometheus
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(dashboard_exprs())],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(dashboard_exprs())} rules found" in result.stdout
