"""The Router shell: the model_type label follows what serves, one ticket life, one output check, one collector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests._routers import NOW, request, strong_model
from tinydancer import ConfigError, InferenceError, Router, RouterConfig
from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
from tinydancer.model.fastgrnn_file import save_fastgrnn
from tinydancer.observability.collector import Collector
from tinydancer.observability.logs import LogConfig
from tinydancer.observability.tracing import TracingSystem
from tinydancer.routing import router as router_module
from tinydancer.routing.kernel import KernelOutputs
from tinydancer.routing.router import MODEL_TYPES, default_inference, model_type_of

QUIET = LogConfig(renderer="none")
INFERENCE_COUNT = "tiny_dancer_model_inference_duration_seconds_count"


def fastgrnn_file(path: Path) -> Path:
    config = FastGRNNConfig(input_dim=5, hidden_dim=4)
    return save_fastgrnn(path, init_fastgrnn_params(config, 2), config)


def inference_counts(router: Router) -> dict[str, float]:
    return {s.labels["model_type"]: s.value for s in router.metrics.samples() if s.name == INFERENCE_COUNT}


def batch_span_types(system: TracingSystem) -> list[str]:
    """model_type of every batch-level model_inference span, oldest first."""
    spans = sorted(system.finished_spans(), key=lambda s: s.start_time or 0)
    return [str(s.attributes["model_type"]) for s in spans if s.attributes and "model_type" in s.attributes]


# -- A: the model_type label is what serves ------------------------------------------------------------


def test_model_type_names_what_serves_and_follows_a_reload(tmp_path: Path, tracing: TracingSystem) -> None:
    path = strong_model(tmp_path / "m.safetensors")
    router = Router(RouterConfig(model_path=str(path)), tracing=tracing, log_config=QUIET)
    registry = router.metrics.registry
    assert router.model_type == "original" and model_type_of(router.model) == "original"
    assert inference_counts(router) == {"original": 0}  # pre-created for what serves, nothing else
    router.route(request(3), now=NOW)

    fastgrnn_file(path)
    router.reload_model()  # switches kind: the original's model -> a FastGRNN checkpoint
    assert router.model_type == "fastgrnn"
    for _ in range(2):
        router.route(request(4), now=NOW)
    strong_model(path)
    router.reload_model()  # and back
    router.route(request(5), now=NOW)

    assert router.metrics.registry is registry  # the same metrics, never re-registered
    assert inference_counts(router) == {"original": 2, "fastgrnn": 2}
    assert batch_span_types(tracing) == ["original", "fastgrnn", "fastgrnn", "original"]
    decisions = router.collector.decisions()
    per_request = decisions.groupby("request_id", sort=True).model_type.agg(lambda s: set(s.astype(str)))
    assert per_request.tolist() == [{"original"}, {"fastgrnn"}, {"fastgrnn"}, {"original"}]
    reloads = router.collector.logs(expand_fields=True)
    assert reloads[reloads.event == "Model reloaded"].model_type.tolist() == ["fastgrnn", "original"]


def test_a_router_started_on_a_fastgrnn_checkpoint_never_says_original(tmp_path: Path) -> None:
    path = fastgrnn_file(tmp_path / "fg.safetensors")
    router = Router(RouterConfig(model_path=str(path)), log_config=QUIET)
    router.route(request(6), now=NOW)
    assert inference_counts(router) == {"fastgrnn": 1}
    assert set(router.collector.decisions().model_type.astype(str)) == {"fastgrnn"}
    assert 'model_type="original"' not in router.export_metrics()


def test_every_model_kind_has_a_label() -> None:
    assert dict(MODEL_TYPES) == {
        "compat": "original",
        "fastgrnn": "fastgrnn",
        "prompt": "fastgrnn_prompt",
        "scorer_prompt": "scorer_prompt",
    }


# -- B: the breaker ticket's life, the one output check ---------------------------------------------------


def half_open_router(tmp_path: Path, inference: Any) -> tuple[Router, list[float]]:
    """A router whose breaker is half-open with one probe slot (opened by one failure, timeout passed)."""
    clock = [float(NOW)]
    failing = [True]

    def hook(*args: Any) -> Any:
        if failing[0]:
            failing[0] = False
            raise RuntimeError("first call fails")
        return inference(*args)

    router = Router(
        RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")), circuit_breaker_threshold=1,
                     circuit_breaker_reset_timeout_s=10, circuit_breaker_half_open_probes=1),
        clock=lambda: clock[0], inference=hook, log_config=QUIET,
    )  # fmt: skip
    with pytest.raises(InferenceError, match="first call fails"):
        router.route(request(2), now=NOW)
    clock[0] += 10
    assert router.circuit_breaker_state == "half_open"
    return router, clock


def test_an_interrupt_during_inference_frees_the_probe_instead_of_leaking_it(tmp_path: Path) -> None:
    interrupt = [True]

    def inference(*args: Any) -> Any:
        if interrupt[0]:
            interrupt[0] = False
            raise KeyboardInterrupt
        return default_inference(*args)

    router, _ = half_open_router(tmp_path, inference)
    with pytest.raises(KeyboardInterrupt):
        router.route(request(2), now=NOW)
    # not a model failure (still half-open) and the probe slot is free again: the next request is the probe
    assert router.circuit_breaker_state == "half_open"
    router.route(request(2), now=NOW)
    assert router.circuit_breaker_state == "closed"


def test_a_failed_request_records_no_feature_or_inference_timing(tmp_path: Path) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("down")

    router = Router(RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors"))), inference=broken,
                    log_config=QUIET)  # fmt: skip
    with pytest.raises(InferenceError):
        router.route(request(3), now=NOW)
    samples = {(s.name, tuple(s.labels.items())): s.value for s in router.metrics.samples()}
    assert samples[("tiny_dancer_routing_requests_total", (("status", "failure"),))] == 1
    assert samples[("tiny_dancer_errors_total", (("error_type", "inference_error"),))] == 1
    assert sum(v for (name, _), v in samples.items() if name.endswith("duration_seconds_count")) == 0
    (record,) = router.collector.request_records()
    assert (record.outcome, record.error_type, record.candidate_count, record.feature_time_us) == (
        "failure", "inference_error", 3, 0.0,
    )  # fmt: skip


def test_default_outputs_are_checked_once_by_the_kernel_and_hooks_by_the_router(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = router_module._checked_outputs

    def counting(outputs: object, n: int) -> Any:
        calls.append(n)
        return real(outputs, n)

    monkeypatch.setattr(router_module, "_checked_outputs", counting)
    path = str(strong_model(tmp_path / "m.safetensors"))
    plain = Router(RouterConfig(model_path=path), log_config=QUIET)
    plain.route(request(3), now=NOW)
    assert calls == []  # run_route_kernel checked its KernelOutputs; the router trusts them as they are
    hooked = Router(RouterConfig(model_path=path), inference=lambda *a: default_inference(*a), log_config=QUIET)
    hooked.route(request(4), now=NOW)
    assert calls == [4]


@pytest.mark.parametrize("n", [1, 3])
def test_responses_and_records_never_share_a_hooks_arrays(tmp_path: Path, n: int) -> None:
    kept: list[tuple[np.ndarray, ...]] = []

    def keeping(*args: Any) -> tuple[np.ndarray, ...]:
        outputs = tuple(np.asarray(a) for a in default_inference(*args))
        kept.append(outputs)  # a hook that keeps (and later reuses) its buffers
        return outputs

    router = Router(RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors"))), inference=keeping,
                    log_config=QUIET)  # fmt: skip
    response = router.route(request(n), now=NOW)
    before = router.collector.decisions()["confidence"].to_numpy().copy()
    for array in kept[0]:
        array[...] = 0  # the hook overwrites its buffers
    assert all(not np.shares_memory(a, b) for a in kept[0] for b in (response.confidence, response.uncertainty))
    np.testing.assert_array_equal(router.collector.decisions()["confidence"].to_numpy(), before)
    assert (response.confidence > 0).all()


def test_a_hook_returning_a_hand_made_kernel_outputs_is_still_checked(tmp_path: Path) -> None:
    """KernelOutputs is a plain NamedTuple: a hook can build a broken one, and it must fail like any other."""

    def forged(*args: Any) -> KernelOutputs:
        confidence, uncertainty, light = default_inference(*args)
        return KernelOutputs(np.full_like(confidence, np.nan), uncertainty, light)

    router = Router(RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors")), circuit_breaker_threshold=1),
                    inference=forged, log_config=QUIET)  # fmt: skip
    with pytest.raises(InferenceError, match="NaN"):
        router.route(request(3), now=NOW)
    assert router.circuit_breaker_state == "open"  # counted towards the breaker
    assert len(router.collector.decisions()) == 0  # and never reached the collector


# -- B: one collector, one router -------------------------------------------------------------------------


def test_a_collector_handed_to_a_second_router_is_refused(tmp_path: Path) -> None:
    path = str(strong_model(tmp_path / "m.safetensors"))
    shared = Collector()
    first = Router(RouterConfig(model_path=path), collector=shared, log_config=QUIET)
    first.route(request(3), now=NOW)
    logs_before = len(shared.logs())
    with pytest.raises(ConfigError, match="give each Router its own Collector") as info:
        Router(RouterConfig(model_path=path), collector=shared, log_config=QUIET)
    assert isinstance(info.value, ValueError) and "expected a Collector no other router records into" in str(info.value)
    assert shared.owner == f"Router at {id(first):#x}"
    # the refused router wrote nothing into it, and it still shows the first router's metrics
    assert len(shared.logs()) == logs_before and len(shared.requests()) == 1
    frame = shared.metrics()
    requests_total = frame[frame["sample"] == "tiny_dancer_routing_requests_total"]
    assert dict(zip(requests_total.labels.map(lambda d: d["status"]), requests_total.value, strict=True)) == {
        "success": 1.0,
        "failure": 0.0,
    }
    # each router with its own collector: both work side by side
    second = Router(RouterConfig(model_path=path), log_config=QUIET)
    second.route(request(2), now=NOW)
    assert len(shared.requests()) == 1 and len(second.collector.requests()) == 1


def test_a_collector_with_its_own_metric_source_is_refused(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    with pytest.raises(ConfigError, match="without a metric_source"):
        Router(RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors"))),
               collector=Collector(metric_source=lambda: registry), log_config=QUIET)  # fmt: skip
