"""A Router serving a scorer router: the same decisions as the artifact's own scoring, the guide's records,
exact counters when the scorer fails, and hot reload between the two prompt-router families."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests._prompt_routers import calibrated, copy_of
from tests._routers import request
from tinydancer import InferenceError, InvalidInputError, Router, RouterConfig
from tinydancer.model.calibration_map import Calibrator
from tinydancer.model.prompt_artifact import ConformalSpec, OperatingPoint
from tinydancer.model.scorer_router import (
    LengthScorer,
    ScorerRouterArtifact,
    ScorerScoring,
    ScorerState,
    save_scorer_router,
)
from tinydancer.observability.logs import LogConfig
from tinydancer.routing.prompts import SCORER_MODEL_TYPE

NOW = 1_700_000_000.0
PROMPTS = ["short", "a" * 300, "b" * 700, "what is 2+2?", "c" * 999]


class FlakyScorer(LengthScorer):
    """Raises on a prompt containing 'boom'; returns NaN on one containing 'nan'."""

    name = "flaky"

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        if any("boom" in p for p in prompts):
            raise RuntimeError("scorer exploded")
        out = super().score(prompts)
        return np.where(["nan" in p for p in prompts], np.nan, out)

    @classmethod
    def from_state(cls, state: ScorerState) -> FlakyScorer:
        return cls(state.config["scale"])


def _artifact(scorer: Any = None) -> ScorerRouterArtifact:
    art = ScorerRouterArtifact(
        scorer or LengthScorer(1000.0),
        calibrator=Calibrator("platt", a=2.0, b=0.1),
        conformal=ConformalSpec(0.8, 0.1),
        weak_model="small",
        strong_model="large",
    )
    return art.with_operating_point("low", OperatingPoint(0.3)).with_operating_point(
        "high", OperatingPoint(0.8), default=True
    )


def _router(path: Path, **config: Any) -> Router:
    return Router(RouterConfig(model_path=str(path), **config), log_config=LogConfig(level="DEBUG", renderer="none"))


def _sample(router: Router, name: str, **labels: str) -> float:
    rows = [
        s for s in router.metrics.samples() if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return rows[0].value if rows else 0.0


def test_router_serves_the_artifacts_decisions_and_records_them(tmp_path: Path) -> None:
    art = _artifact()
    router = _router(save_scorer_router(tmp_path / "r.safetensors", art))
    assert router.model_type == SCORER_MODEL_TYPE and router.operating_point == ("high", 0.8)
    frame = router.route_prompts(PROMPTS, now=NOW)
    expected = ScorerScoring(art).score(PROMPTS, threshold=0.8)
    np.testing.assert_array_equal(frame["p_strong"].to_numpy(np.float32), expected.p_strong)
    np.testing.assert_array_equal(frame["use_strong"].to_numpy(), expected.use_strong)
    assert set(frame["model"]) <= {"small", "large"} and frame["prediction_set"].notna().all()
    one = router.route_prompt("b" * 700, now=NOW)
    assert one.p_strong == pytest.approx(float(expected.p_strong[2])) and one.prediction_set is not None
    router.use_operating_point("low")
    assert router.route_prompts(PROMPTS, now=NOW, as_frame=False).threshold == 0.3
    n = 2 * len(PROMPTS) + 1
    assert _sample(router, "tiny_dancer_routing_requests_total", status="success") == n
    assert _sample(router, "tiny_dancer_model_inference_duration_seconds_count", model_type=SCORER_MODEL_TYPE) == 3
    decisions = router.collector.decisions()
    assert len(decisions) == n and set(decisions["model_type"]) == {SCORER_MODEL_TYPE}
    with pytest.raises(InvalidInputError, match="route_prompt"):
        router.route(request(3))


def test_a_failing_scorer_fails_the_request_counts_it_and_the_router_keeps_serving(tmp_path: Path) -> None:
    router = _router(save_scorer_router(tmp_path / "r.safetensors", _artifact(FlakyScorer(1000.0))))
    with pytest.raises(InferenceError, match="scorer exploded"):
        router.route_prompts(["fine", "boom"], now=NOW)
    with pytest.raises(InferenceError, match="finite"):
        router.route_prompt("nan here", now=NOW)
    assert _sample(router, "tiny_dancer_routing_requests_total", status="failure") == 3
    assert _sample(router, "tiny_dancer_errors_total", error_type="inference_error") == 3
    assert router.circuit_breaker_state == "closed"
    ok = router.route_prompts(["fine", "also fine"], now=NOW)
    assert len(ok) == 2 and _sample(router, "tiny_dancer_routing_requests_total", status="success") == 2
    requests = router.collector.requests()
    assert (requests["outcome"] == "failure").sum() == 3 and (requests["outcome"] == "success").sum() == 2


def test_hot_reload_switches_between_the_two_prompt_router_families(tmp_path: Path) -> None:
    path = copy_of(calibrated(), tmp_path)
    router = _router(path)
    assert router.model_type == "fastgrnn_prompt"
    fastgrnn = router.route_prompts(PROMPTS, now=NOW)
    save_scorer_router(path, _artifact())
    router.reload_model()
    assert router.model_type == SCORER_MODEL_TYPE and router.operating_point == ("high", 0.8)
    scored = router.route_prompts(PROMPTS, now=NOW)
    assert not np.allclose(scored["p_strong"], fastgrnn["p_strong"])
    assert _sample(router, "tiny_dancer_model_inference_duration_seconds_count", model_type="fastgrnn_prompt") == 1
    assert _sample(router, "tiny_dancer_model_inference_duration_seconds_count", model_type=SCORER_MODEL_TYPE) == 1


def test_uncertainty_option_applies_to_scorer_routers(tmp_path: Path) -> None:
    path = save_scorer_router(tmp_path / "r.safetensors", _artifact())
    frame = _router(path, prompt_uncertainty="original").route_prompts(PROMPTS, now=NOW)
    p = frame["p_strong"].to_numpy()
    np.testing.assert_allclose(frame["uncertainty"], np.clip(1 - 2 * np.abs(p - 0.5), 0, 1), atol=1e-6)
    assert not math.isnan(frame["uncertainty"].sum())
