"""Alert evaluation through promtool: each shipped alert fires when it should and only then."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from tests._requires import require_tool
from tests._routers import NOW, request, strong_model
from tinydancer import InferenceError, Router, RouterConfig
from tinydancer.errors import CircuitOpenError, InvalidInputError
from tinydancer.observability.alerting import AlertFiring, evaluate_alerts, samples_to_series, series_key
from tinydancer.observability.logs import LogConfig
from tinydancer.routing.router import default_inference

BUCKETS = (1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, float("inf"))


def latency_series(seconds_per_request: float, steps: int, per_step: int = 10) -> dict[str, list[float]]:
    """Cumulative histogram buckets for a constant latency, `per_step` requests per scrape."""
    series = {}
    for le in BUCKETS:
        inside = seconds_per_request <= le
        key = series_key("tiny_dancer_routing_latency_seconds_bucket", {"operation": "total", "le": f"{le:g}"})
        series[key.replace('le="inf"', 'le="+Inf"')] = [float(i * per_step * inside) for i in range(steps)]
    return series


def test_quiet_series_fire_nothing() -> None:
    require_tool("promtool")
    series = {"tiny_dancer_circuit_breaker_state": [0.0] * 41,
              'tiny_dancer_errors_total{error_type="inference_error"}': [0.0] * 41}  # fmt: skip
    series |= latency_series(0.002, 41)
    assert evaluate_alerts(series, 15, [300, 600]) == []


def test_each_alert_fires_with_its_labels() -> None:
    require_tool("promtool")
    steps = 41  # 10 minutes of 15 s scrapes
    series = {"tiny_dancer_circuit_breaker_state": [0.0, 0.0] + [2.0] * (steps - 2),
              'tiny_dancer_errors_total{error_type="inference_error"}': [6.0 * i for i in range(steps)]}  # fmt: skip
    series |= latency_series(0.02, steps)
    firing = evaluate_alerts(series, 15, [45, 120, 600])
    assert AlertFiring(120.0, "CircuitBreakerOpen", {"alertname": "CircuitBreakerOpen"}) in firing
    assert not [f for f in firing if f.eval_time_s == 45]  # `for: 1m` not yet elapsed
    at_600 = {f.alert: f.labels for f in firing if f.eval_time_s == 600}
    assert set(at_600) == {"CircuitBreakerOpen", "HighErrorRate", "HighLatency"}
    assert at_600["HighErrorRate"]["error_type"] == "inference_error"


def test_router_fault_episode_fires_breaker_alert(tmp_path: Path) -> None:
    """Snapshots of a real router's samples, scraped every 15 simulated seconds, go through promtool."""
    require_tool("promtool")
    t = [float(NOW)]
    failing = {"on": False}

    def inference(*args: Any) -> Any:
        if failing["on"]:
            raise RuntimeError("injected")
        return default_inference(*args)

    cfg = RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")), circuit_breaker_threshold=3,
                       circuit_breaker_reset_timeout_s=600)  # fmt: skip
    router = Router(cfg, clock=lambda: t[0], inference=inference, log_config=LogConfig(renderer="none"))
    snapshots = []
    for step in range(24):  # 6 minutes
        failing["on"] = 4 <= step < 8
        for _ in range(3):
            with contextlib.suppress(InferenceError, CircuitOpenError):
                router.route(request(4))
        snapshots.append(router.metrics.samples())
        t[0] += 15
    series = samples_to_series(snapshots, ["tiny_dancer_circuit_breaker_state", "tiny_dancer_errors_total"])
    assert series["tiny_dancer_circuit_breaker_state"][3:6] == [0.0, 2.0, 2.0]
    firing = evaluate_alerts(series, 15, [60, 180, 330])
    assert [f.eval_time_s for f in firing if f.alert == "CircuitBreakerOpen"] == [180.0, 330.0]


def test_bad_series_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="one length"):
        evaluate_alerts({"a": [1.0], "b": [1.0, 2.0]}, 15, [0])
