"""Drift of live traffic from an artifact's calibration rows: PSI and KS, by hand and through a Router."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from scipy import stats

from tests._prompt_routers import mmlu, tuned
from tinydancer.errors import ConfigError
from tinydancer.learning.experiment import calibrate_router, tune_router
from tinydancer.model.prompt_artifact import load_prompt_router, reference_quantiles
from tinydancer.observability.drift import DriftMonitor
from tinydancer.observability.logs import LogConfig
from tinydancer.routing import Router, RouterConfig


def monitor(reference: np.ndarray, window: int = 2000, min_count: int = 50) -> DriftMonitor:
    m = DriftMonitor(CollectorRegistry(), window=window, min_count=min_count)
    m.set_reference({"p_strong": reference_quantiles(reference)})
    return m


def test_psi_matches_its_definition_on_the_reference_deciles() -> None:
    rng = np.random.default_rng(0)
    ref, live = rng.normal(size=20_000), rng.normal(0.5, 1.0, size=2000)
    m = monitor(ref)
    m.record({"p_strong": live})
    edges = np.quantile(ref, np.linspace(0.1, 0.9, 9))
    actual = np.bincount(np.searchsorted(edges, live, side="right"), minlength=10) / live.size
    expected = np.sum((actual - 0.1) * np.log(actual / 0.1))
    assert m.psi("p_strong") == pytest.approx(expected, rel=0.02)  # deciles interpolated from 101 quantiles
    assert m.psi("p_strong") > 0.2  # half a standard deviation: a large shift


def test_ks_agrees_with_scipy_against_the_reference_sample() -> None:
    rng = np.random.default_rng(1)
    ref, live = rng.uniform(size=50_000), rng.uniform(0.1, 1.1, size=1500)
    m = monitor(ref)
    m.record({"p_strong": live})
    assert m.ks("p_strong") == pytest.approx(stats.ks_2samp(live, ref).statistic, abs=0.01)


def test_no_shift_stays_small_and_the_window_slides() -> None:
    rng = np.random.default_rng(2)
    ref = rng.beta(2, 5, size=10_000)
    m = monitor(ref, window=1000)
    m.record({"p_strong": rng.beta(2, 5, size=1000)})
    assert m.psi("p_strong") < 0.05 and m.ks("p_strong") < 0.06
    m.record({"p_strong": np.full(1000, 0.99)})  # the window now holds only the shifted values
    assert m.psi("p_strong") > 2 and m.ks("p_strong") > 0.95


def test_statistics_are_nan_until_the_window_has_enough_values() -> None:
    m = monitor(np.linspace(0, 1, 100), min_count=50)
    m.record({"p_strong": np.full(49, 0.5)})
    assert math.isnan(m.psi("p_strong")) and math.isnan(m.ks("p_strong"))
    assert math.isnan(m.psi("prompt_chars"))  # a feature without a reference
    m.record({"p_strong": np.full(1, 0.5)})
    assert not math.isnan(m.psi("p_strong"))


@pytest.mark.parametrize(
    "reference", [{"other": tuple(range(101))}, {"p_strong": (0.0, 1.0)}, {"p_strong": tuple(range(101))[::-1]}]
)
def test_a_malformed_reference_is_refused(reference: dict[str, tuple[float, ...]]) -> None:
    with pytest.raises(ConfigError, match="drift reference"):
        DriftMonitor(CollectorRegistry()).set_reference(reference)


def test_calibrate_stores_the_reference_and_a_router_watches_it(tmp_path: Path) -> None:
    path = tmp_path / "router.safetensors"
    shutil.copy(tuned(), path)
    frame = mmlu()
    calibrate_router(path, frame, "temperature")
    tune_router(path, frame, "strong-share=0.5", "half", default=True)
    artifact = load_prompt_router(path)
    assert set(artifact.reference) == {"p_strong", "prompt_chars"}
    assert all(len(q) == 101 for q in artifact.reference.values())
    router = Router(RouterConfig(model_path=str(path), drift_window=400), log_config=LogConfig(renderer="none"))

    def drift() -> dict[str, float]:
        samples = {s.name + str(s.labels.get("feature", "")): s.value for s in router.metrics.samples()}
        return {k: v for k, v in samples.items() if k.startswith("tiny_dancer_drift")}

    assert math.isnan(drift()["tiny_dancer_drift_psip_strong"])
    router.route_prompts(frame["prompt"].sample(400, random_state=0))
    same = drift()
    assert same["tiny_dancer_drift_window_size"] == 400
    long_prompts = frame[frame["prompt"].str.len() > frame["prompt"].str.len().quantile(0.9)]
    router.route_prompts(long_prompts["prompt"].sample(400, random_state=0, replace=True))
    shifted = drift()
    assert shifted["tiny_dancer_drift_psiprompt_chars"] > 1.0 > same["tiny_dancer_drift_psiprompt_chars"]
    assert shifted["tiny_dancer_drift_ksprompt_chars"] > 0.8 > same["tiny_dancer_drift_ksprompt_chars"] + 0.5
    router.reload_model()  # a (re)loaded artifact starts a fresh window
    assert drift()["tiny_dancer_drift_window_size"] == 0
