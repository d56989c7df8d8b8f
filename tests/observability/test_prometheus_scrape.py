"""A real Prometheus scrapes a RouterMetrics endpoint: PromQL sees the exact counts, the rules load."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import yaml

from tests.prometheus_server import PrometheusServer
from tinydancer.errors import InferenceError
from tinydancer.observability.metrics import BREAKER_STATES, RouterMetrics
from tinydancer.observability.monitoring_assets import read_asset, write_assets

pytestmark = pytest.mark.prometheus

LIGHT, POWERFUL = (("model_type", "lightweight"),), (("model_type", "powerful"),)


SMALL = (np.array([0.95, 0.9, 0.86, 0.4, 0.2]), np.array([0.01, 0.05, 0.1, 0.3, 0.6]), np.array([1, 1, 1, 0, 0]))
BIG = (np.linspace(0.0, 1.0, 200), np.linspace(0.0, 0.3, 200), np.arange(200) < 50)


def record_traffic(m: RouterMetrics, rounds: int) -> None:
    """Per round: 7 successes, 3 failures, a 5-candidate batch (3 light), a 200-candidate batch (50 light)."""
    for _ in range(rounds):
        for i in range(10):
            m.record_request(i < 7, 0.002)
        m.record_decisions(*SMALL)
        m.record_decisions(*BIG)
        m.record_exception(InferenceError("injected"))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RouterMetrics, PrometheusServer]]:
    """One RouterMetrics endpoint and one Prometheus (shipped config and alert rules) scraping it."""
    assets = tmp_path_factory.mktemp("assets")
    write_assets(assets)
    metrics = RouterMetrics()
    record_traffic(metrics, rounds=1)
    metrics.bind_breaker_state(lambda: BREAKER_STATES["open"])
    with (
        metrics.serve(port=0) as endpoint,
        PrometheusServer.start(
            [f"127.0.0.1:{endpoint.port}"],
            config=yaml.safe_load((assets / "prometheus.yml").read_text()),
            rule_files=[assets / "alerts.yml"],
        ) as prom,
    ):
        prom.wait_for(
            lambda: prom.query_scalar('tiny_dancer_routing_requests_total{status="success"}') == 7,
            what="first scrape of the metrics endpoint",
        )
        yield metrics, prom


def test_promql_sees_the_recorded_counts(live: tuple[RouterMetrics, PrometheusServer]) -> None:
    _, prom = live
    assert prom.query_scalar('up{job="tiny-dancer"}') == 1
    requests = prom.query_values("sum by (status) (tiny_dancer_routing_requests_total)")
    assert requests == {(("status", "success"),): 7, (("status", "failure"),): 3}
    decisions = prom.query_values("sum by (model_type) (tiny_dancer_routing_decisions_total)")
    assert decisions == {LIGHT: 3 + 50, POWERFUL: 2 + 150}
    confidence_counts = prom.query_values("sum by (decision_type) (tiny_dancer_confidence_scores_count)")
    assert confidence_counts == {(("decision_type", "lightweight"),): 53, (("decision_type", "powerful"),): 152}
    # Lightweight confidences in (0.85, 0.95], from the bucket series as Prometheus stored them.
    in_band = prom.query_scalar(
        'tiny_dancer_confidence_scores_bucket{decision_type="lightweight",le="0.95"} - ignoring(le)'
        ' tiny_dancer_confidence_scores_bucket{decision_type="lightweight",le="0.85"}'
    )
    light_conf = np.concatenate([SMALL[0][SMALL[2] == 1], BIG[0][BIG[2]]])
    assert in_band == np.count_nonzero((light_conf > 0.85) & (light_conf <= 0.95)) == 3
    candidates = prom.query_values("sum by (batch_size_range) (tiny_dancer_candidates_processed_total)")
    assert candidates == {
        (("batch_size_range", "1-10"),): 5,
        (("batch_size_range", "11-50"),): 0,
        (("batch_size_range", "51-100"),): 0,
        (("batch_size_range", "100+"),): 200,
    }
    assert prom.query_scalar('tiny_dancer_errors_total{error_type="inference_error"}') == 1
    assert prom.query_scalar('tiny_dancer_errors_total{error_type="circuit_breaker_open"}') == 0
    assert prom.query_scalar("tiny_dancer_circuit_breaker_state") == 2
    assert prom.query_scalar('tiny_dancer_routing_latency_seconds_count{operation="total"}') == 10


def test_later_recordings_reach_prometheus(live: tuple[RouterMetrics, PrometheusServer]) -> None:
    metrics, prom = live
    record_traffic(metrics, rounds=2)
    prom.wait_for(
        lambda: prom.query_scalar('sum(tiny_dancer_routing_decisions_total{model_type="powerful"})') == 3 * 152,
        what="the second batch of decisions to be scraped",
    )
    assert prom.query_scalar('tiny_dancer_routing_requests_total{status="failure"}') == 9
    assert prom.query_scalar('tiny_dancer_candidates_processed_total{batch_size_range="100+"}') == 600


def test_the_shipped_alert_rules_load_and_evaluate(live: tuple[RouterMetrics, PrometheusServer]) -> None:
    _, prom = live
    groups = prom.api("rules")["groups"]
    assert {r["name"] for g in groups for r in g["rules"]} == {"HighErrorRate", "CircuitBreakerOpen", "HighLatency"}

    def breaker_alert_active() -> bool:
        alerts = prom.api("alerts")["alerts"]
        return any(a["labels"]["alertname"] == "CircuitBreakerOpen" for a in alerts)

    # The breaker gauge is 2: the alert is pending (its `for: 1m` has not elapsed), not silent.
    prom.wait_for(breaker_alert_active, timeout_s=20, what="CircuitBreakerOpen to become pending")
    states = {a["state"] for a in prom.api("alerts")["alerts"] if a["labels"]["alertname"] == "CircuitBreakerOpen"}
    assert states == {"pending"}
    # The group has been evaluated, so every rule's health is known, and none failed on the real series.
    assert {r["health"] for g in prom.api("rules")["groups"] for r in g["rules"]} == {"ok"}


def test_every_dashboard_query_runs_on_the_scraped_data(live: tuple[RouterMetrics, PrometheusServer]) -> None:
    _, prom = live
    dashboard = json.loads(read_asset("grafana-dashboard.json"))
    # rate() needs two samples in the window: wait for the guide's request-rate panel to have data.
    prom.wait_for(
        lambda: bool(prom.query("rate(tiny_dancer_routing_requests_total[5m])")),
        what="two scrapes for rate()",
    )
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            result = prom.query(target["expr"])  # raises on a PromQL error
            assert result, f"{panel['title']}: {target['expr']} returned no series"
