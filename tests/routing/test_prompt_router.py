"""A Router serving a prompt router: exact scores and shares, bad input, metrics, operating points, reload, spans."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests._prompt_routers import TARGETS, calibrated, copy_of, mmlu, trained, tuned
from tests._routers import request, strong_model
from tinydancer import ConfigError, InvalidInputError, ModelLoadError, Router, RouterConfig
from tinydancer.learning.calibration import apply_calibrator
from tinydancer.learning.experiment import evaluation_rows, score_frame, stored_calibrator
from tinydancer.model.prompt_artifact import OperatingPoint, load_prompt_router, save_prompt_router
from tinydancer.observability.logs import LogConfig
from tinydancer.observability.tracing import TracingSystem
from tinydancer.routing.prompts import PROMPT_RESULT_COLUMNS, PromptBatch, PromptDecision, prompt_hash

NOW = 1_700_000_000.0
#: Prompts with a marker that must never leak into logs or metric labels.
SECRET = "zebraquokka"
PROMPTS = [f"{SECRET} question {i}: what is the derivative of x^{i} times sin(x)?" for i in range(12)]


def make_router(path: Path, tracing: Any = None, **config: Any) -> Router:
    return Router(
        RouterConfig(model_path=str(path), **config),
        tracing=tracing,
        log_config=LogConfig(level="DEBUG", renderer="none"),
    )


def sample(router: Router, name: str, **labels: str) -> float:
    rows = [
        s for s in router.metrics.samples() if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(rows) == 1, (name, labels, rows)
    return rows[0].value


def maybe(router: Router, name: str, **labels: str) -> float:
    rows = [
        s for s in router.metrics.samples() if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return rows[0].value if rows else 0.0


@pytest.fixture(scope="module")
def meta() -> dict[str, str]:
    return score_frame(calibrated(), mmlu().iloc[:1]).metadata


# (a) exactness ---------------------------------------------------------------------------------------------------


def test_route_prompts_equals_the_calibrated_offline_scores(meta: dict[str, str]) -> None:
    frame = mmlu()
    test_rows = evaluation_rows(frame, meta, "test")["test"]
    assert len(test_rows) == round(0.4 * len(frame))
    part = frame.iloc[test_rows]
    raw = score_frame(calibrated(), part).scores
    expected = apply_calibrator(stored_calibrator(meta), raw)
    router = make_router(calibrated())
    assert router.operating_point == ("p0.5", 0.5)
    decisions = router.route_prompts(part["prompt"], now=NOW)
    assert isinstance(decisions, pd.DataFrame)
    assert list(decisions.columns) == list(PROMPT_RESULT_COLUMNS) and len(decisions) == len(part)
    np.testing.assert_allclose(decisions["p_strong"].to_numpy(), expected, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(decisions["use_strong"], decisions["p_strong"] >= 0.5)
    assert decisions["request_id"].tolist() == list(range(len(part)))
    assert set(decisions["prediction_set"]) <= {"", "weak", "strong", "weak,strong"}
    art = load_prompt_router(calibrated())
    assert set(decisions["model"]) <= {art.weak_model, art.strong_model}
    np.testing.assert_array_equal(decisions["model"] == art.strong_model, decisions["use_strong"])


@pytest.mark.parametrize("name", list(TARGETS))
def test_routing_the_tuning_rows_reproduces_the_reached_share(name: str, meta: dict[str, str]) -> None:
    frame = mmlu()
    rows = evaluation_rows(frame, meta, "test")["cal"]
    art = load_prompt_router(tuned())
    point = art.operating_points[name]
    router = make_router(tuned(), operating_point=name)
    assert router.operating_point == (name, point.threshold)
    batch = router.route_prompts(frame.iloc[rows]["prompt"].tolist(), now=NOW, as_frame=False)
    assert isinstance(batch, PromptBatch) and len(batch) == len(rows)
    assert batch.operating_point == name and batch.threshold == point.threshold
    assert float(batch.scores.use_strong.mean()) == point.reached["strong_share"]
    assert point.source["n_rows"] == len(rows)


# (b) bad input ---------------------------------------------------------------------------------------------------

BAD = {
    "none": None,
    "bytes": b"what is 2+2?",
    "int": 3,
    "empty": "",
    "whitespace": " \n\t ",
    "too long": "x" * 101,
    "lone surrogate": "abc\ud800def",
    "nul": "abc\x00def",
}


@pytest.fixture(scope="module")
def router_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_of(tuned(), tmp_path_factory.mktemp("prompt-router"))


def test_bad_prompts_are_rejected_and_counted(router_path: Path) -> None:
    router = make_router(router_path, max_prompt_chars=100)
    for label, bad in BAD.items():
        with pytest.raises(InvalidInputError, match="prompt 0"):
            router.route_prompt(bad, now=NOW)  # type: ignore[arg-type]
        assert label
    n = len(BAD)
    assert sample(router, "tiny_dancer_routing_requests_total", status="failure") == n
    assert sample(router, "tiny_dancer_errors_total", error_type="invalid_input") == n
    assert maybe(router, "tiny_dancer_routing_requests_total", status="success") == 0
    # exactly 100 characters is fine, and the router keeps routing
    ok = router.route_prompt("y" * 100, now=NOW)
    assert isinstance(ok, PromptDecision)
    assert sample(router, "tiny_dancer_routing_requests_total", status="success") == 1
    requests = router.collector.requests()
    assert requests["outcome"].tolist() == ["failure"] * n + ["success"]
    assert set(requests["error_type"].iloc[:n]) == {"invalid_input"}
    assert len(router.collector.decisions()) == 1


def test_a_batch_with_one_bad_prompt_routes_nothing(router_path: Path) -> None:
    router = make_router(router_path)
    with pytest.raises(InvalidInputError, match=r"prompt 2: .*\(1 of 4 prompts invalid\)"):
        router.route_prompts(["a", "b", None, "c"], now=NOW)  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match=r"\(2 of 3 prompts invalid\)"):
        router.route_prompts(["", "ok", "\x00"], now=NOW)
    assert sample(router, "tiny_dancer_routing_requests_total", status="failure") == 7
    assert sample(router, "tiny_dancer_errors_total", error_type="invalid_input") == 7
    assert len(router.collector.decisions()) == 0
    assert router.collector.requests()["outcome"].tolist() == ["failure"] * 7
    assert len(router.route_prompts(["a", "b"], now=NOW)) == 2
    assert router.collector.requests()["request_id"].tolist() == list(range(9))


@pytest.mark.parametrize("texts", ["a single str", b"bytes", 42, None])
def test_a_batch_that_is_not_a_list_is_rejected(router_path: Path, texts: Any) -> None:
    router = make_router(router_path)
    with pytest.raises(InvalidInputError, match="texts"):
        router.route_prompts(texts, now=NOW)
    assert sample(router, "tiny_dancer_routing_requests_total", status="failure") == 1


def test_bad_metadata_and_now(router_path: Path) -> None:
    router = make_router(router_path)
    with pytest.raises(InvalidInputError, match="metadata"):
        router.route_prompt("hello", metadata=["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        router.route_prompt("hello", now=math.nan)
    assert sample(router, "tiny_dancer_routing_requests_total", status="failure") == 2
    decision = router.route_prompt("hello", metadata={"user": "u1"}, now=NOW)
    assert decision.metadata == {"user": "u1"}


# (c) kind errors ---------------------------------------------------------------------------------------------------


def test_route_on_a_prompt_router_and_route_prompt_on_a_candidate_router(router_path: Path, tmp_path: Path) -> None:
    prompt_router = make_router(router_path)
    with pytest.raises(InvalidInputError, match=r"route_prompt"):
        prompt_router.route(request(3), now=NOW)
    assert prompt_router.model_type == "fastgrnn_prompt"
    candidates = make_router(strong_model(tmp_path / "candidates.safetensors"))
    with pytest.raises(InvalidInputError, match=r"call route\(request\)"):
        candidates.route_prompt("hello", now=NOW)
    with pytest.raises(InvalidInputError, match=r"call route\(request\)"):
        candidates.route_prompts(["hello"], now=NOW)
    with pytest.raises(InvalidInputError, match="candidates"):
        candidates.use_operating_point("share50")
    assert candidates.operating_point is None
    assert sample(candidates, "tiny_dancer_errors_total", error_type="invalid_input") == 2
    assert candidates.route(request(4), now=NOW).candidate_ids  # still routes candidates


# (d) metrics, collectors and privacy -------------------------------------------------------------------------------


def test_metrics_and_collector_rows_are_exact(router_path: Path) -> None:
    router = make_router(router_path)
    name, threshold = router.operating_point  # type: ignore[misc]
    assert name == "quality95"
    batch = router.route_prompts(PROMPTS[:9], now=NOW)
    singles = [router.route_prompt(p, now=NOW + 1) for p in PROMPTS[9:]]
    n = len(PROMPTS)
    assert isinstance(batch, pd.DataFrame)
    strong = np.concatenate([batch["use_strong"].to_numpy(), [d.use_strong for d in singles]])
    p_strong = np.concatenate([batch["p_strong"].to_numpy(), [d.p_strong for d in singles]])
    confidence = np.concatenate([batch["confidence"].to_numpy(), [d.confidence for d in singles]])
    assert sample(router, "tiny_dancer_routing_requests_total", status="success") == n
    assert maybe(router, "tiny_dancer_routing_requests_total", status="failure") == 0
    assert maybe(router, "tiny_dancer_routing_decisions_total", model_type="powerful") == strong.sum()
    assert maybe(router, "tiny_dancer_routing_decisions_total", model_type="lightweight") == n - strong.sum()
    assert maybe(router, "tiny_dancer_confidence_scores_count", decision_type="powerful") == strong.sum()
    assert maybe(router, "tiny_dancer_uncertainty_estimates_count", decision_type="lightweight") == n - strong.sum()
    conf_sum = maybe(router, "tiny_dancer_confidence_scores_sum", decision_type="powerful")
    conf_sum += maybe(router, "tiny_dancer_confidence_scores_sum", decision_type="lightweight")
    assert conf_sum == pytest.approx(confidence.sum(), abs=1e-5)
    assert sample(router, "tiny_dancer_routing_latency_seconds_count", operation="total") == n
    inference = sample(router, "tiny_dancer_model_inference_duration_seconds_count", model_type="fastgrnn_prompt")
    assert inference == 1 + len(singles)  # one jitted call per routing call
    # the collector: one request row per prompt, one decision row per prompt
    requests = router.collector.requests()
    assert requests["request_id"].tolist() == list(range(n))
    assert (requests["outcome"] == "success").all() and (requests["candidate_count"] == 1).all()
    np.testing.assert_array_equal(requests["powerful_routes"], strong.astype(int))
    np.testing.assert_array_equal(requests["lightweight_routes"], 1 - strong.astype(int))
    decisions = router.collector.decisions()
    assert len(decisions) == n and decisions["request_id"].tolist() == list(range(n))
    art = load_prompt_router(router_path)
    assert decisions["model"].tolist() == [art.strong_model if s else art.weak_model for s in strong]
    np.testing.assert_array_equal(decisions["use_lightweight"], ~strong)
    assert decisions["decision"].tolist() == ["powerful" if s else "lightweight" for s in strong]
    assert (decisions["model_type"] == "fastgrnn_prompt").all()
    np.testing.assert_allclose(decisions["p_strong"], p_strong, atol=0)
    assert set(decisions["operating_point"]) == {"quality95"} and set(decisions["threshold"]) == {threshold}
    assert decisions["prompt_chars"].tolist() == [len(p) for p in PROMPTS]
    assert decisions["prompt_hash"].tolist() == [prompt_hash(p) for p in PROMPTS]
    assert decisions["prompt"].isna().all()
    expected_sets = batch["prediction_set"].tolist() + [",".join(d.prediction_set or ()) for d in singles]
    assert decisions["prediction_set"].tolist() == expected_sets
    assert str(decisions["timestamp"].iloc[0]) == str(pd.Timestamp(NOW, unit="s", tz="UTC"))
    assert_no_prompt_text(router)


def assert_no_prompt_text(router: Router) -> None:
    logs = router.collector.logs()
    assert len(logs) > 0
    for _, row in logs.iterrows():
        assert SECRET not in repr(row.to_dict()), row.to_dict()
    assert SECRET not in router.export_metrics()
    assert all(SECRET not in v for s in router.metrics.samples() for v in s.labels.values())
    assert SECRET not in repr(router.collector.requests().to_dict())
    assert SECRET not in repr(router.collector.metrics().to_dict())


def test_failures_do_not_log_prompt_text(router_path: Path) -> None:
    router = make_router(router_path, max_prompt_chars=60)
    with pytest.raises(InvalidInputError):
        router.route_prompts([PROMPTS[0], SECRET * 10], now=NOW)
    with pytest.raises(InvalidInputError):
        router.route_prompt(SECRET + "\x00", now=NOW)
    assert_no_prompt_text(router)


def test_record_prompts_keeps_the_text_in_decisions_only(router_path: Path) -> None:
    router = make_router(router_path, record_prompts=True)
    router.route_prompts(PROMPTS[:5], now=NOW)
    router.route_prompt(PROMPTS[5], now=NOW)
    decisions = router.collector.decisions()
    assert decisions["prompt"].tolist() == PROMPTS[:6]
    assert decisions["prompt_hash"].tolist() == [prompt_hash(p) for p in PROMPTS[:6]]
    assert SECRET not in router.export_metrics()


# (e) operating points ----------------------------------------------------------------------------------------------


def test_use_operating_point_switches_gauges_and_logs(router_path: Path) -> None:
    router = make_router(router_path)
    points = load_prompt_router(router_path).operating_points
    assert router.operating_point == ("quality95", points["quality95"].threshold)
    assert sample(router, "tiny_dancer_operating_point_threshold") == points["quality95"].threshold
    assert sample(router, "tiny_dancer_operating_point_info", operating_point="quality95") == 1
    router.use_operating_point("share50")
    assert router.operating_point == ("share50", points["share50"].threshold)
    assert sample(router, "tiny_dancer_operating_point_threshold") == points["share50"].threshold
    assert sample(router, "tiny_dancer_operating_point_info", operating_point="share50") == 1
    assert sample(router, "tiny_dancer_operating_point_info", operating_point="quality95") == 0
    logs = router.collector.logs(expand_fields=True)
    changed = logs[logs["event"] == "Operating point changed"]
    assert len(changed) == 1
    assert changed["from_operating_point"].iloc[0] == "quality95"
    assert changed["to_operating_point"].iloc[0] == "share50"
    assert changed["threshold"].iloc[0] == points["share50"].threshold
    router.use_operating_point("werr")  # -inf: always strong
    assert sample(router, "tiny_dancer_operating_point_threshold") == -math.inf
    assert router.route_prompts(PROMPTS, now=NOW)["use_strong"].all()
    with pytest.raises(ConfigError, match="nope"):
        router.use_operating_point("nope")
    assert router.operating_point == ("werr", -math.inf)
    assert sample(router, "tiny_dancer_operating_point_info", operating_point="werr") == 1
    decision = router.route_prompt(PROMPTS[0], now=NOW)
    assert (decision.operating_point, decision.threshold, decision.use_strong) == ("werr", -math.inf, True)


def test_starting_operating_point_and_unknown_one(router_path: Path) -> None:
    router = make_router(router_path, operating_point="share50")
    assert router.operating_point is not None and router.operating_point[0] == "share50"
    with pytest.raises(ConfigError, match="operating point"):
        make_router(router_path, operating_point="missing")


def test_switching_while_routing_keeps_every_decision_consistent(router_path: Path) -> None:
    router = make_router(router_path)
    points = load_prompt_router(router_path).operating_points
    thresholds = {name: p.threshold for name, p in points.items()}
    stop = threading.Event()
    switches = Counter[str]()
    errors: list[BaseException] = []

    def switch() -> None:
        try:
            while not stop.is_set():
                for name in thresholds:
                    router.use_operating_point(name)
                    switches[name] += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    texts = mmlu()["prompt"].iloc[:40].tolist()
    thread = threading.Thread(target=switch)
    thread.start()
    try:
        for i in range(40):
            router.route_prompts(texts[: 1 + i % 6], now=NOW)
            router.route_prompt(texts[i], now=NOW)
    finally:
        stop.set()
        thread.join()
    assert errors == [] and sum(switches.values()) > 3
    decisions = router.collector.decisions()
    assert len(decisions) == sum(1 + i % 6 for i in range(40)) + 40
    assert set(decisions["operating_point"]) <= set(thresholds)
    np.testing.assert_array_equal(decisions["threshold"], decisions["operating_point"].map(thresholds))
    np.testing.assert_array_equal(decisions["use_lightweight"], ~(decisions["p_strong"] >= decisions["threshold"]))


# (f) hot reload ----------------------------------------------------------------------------------------------------


def test_hot_reload_replaces_points_and_a_corrupt_file_keeps_the_old_model(tmp_path: Path) -> None:
    path = copy_of(tuned(), tmp_path)
    router = make_router(path)
    router.use_operating_point("share50")
    before = router.route_prompts(PROMPTS, now=NOW)
    art = load_prompt_router(path)
    # the new artifact keeps "share50" (with another threshold) and adds one
    replaced = dataclasses.replace(
        art,
        operating_points={"share50": OperatingPoint(0.0), "never": OperatingPoint(math.inf)},
        default_operating_point="never",
    )
    save_prompt_router(path, replaced)
    router.reload_model()
    assert router.operating_point == ("share50", 0.0)
    assert sample(router, "tiny_dancer_operating_point_threshold") == 0.0
    assert router.route_prompts(PROMPTS, now=NOW)["use_strong"].all()
    with pytest.raises(ConfigError):
        router.use_operating_point("quality95")
    # a point that is gone: the new default
    save_prompt_router(path, dataclasses.replace(replaced, operating_points={"never": OperatingPoint(math.inf)}))
    router.reload_model()
    assert router.operating_point == ("never", math.inf)
    assert not router.route_prompts(PROMPTS, now=NOW)["use_strong"].any()
    # a corrupt file: the old model and point keep serving, and the failure is counted
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError):
        router.reload_model()
    assert sample(router, "tiny_dancer_errors_total", error_type="model_load_error") == 1
    assert router.operating_point == ("never", math.inf)
    after = router.route_prompts(PROMPTS, now=NOW)
    assert not after["use_strong"].any()
    np.testing.assert_array_equal(after["p_strong"], before["p_strong"])
    logs = router.collector.logs()
    assert (logs["event"] == "Operating point changed").sum() == 3  # share50 (by hand), then two reloads
    # a candidate model at the path is a valid model: the router then serves candidates
    strong_model(path)
    router.reload_model()
    assert router.model_type != "fastgrnn_prompt" and router.operating_point is None
    with pytest.raises(InvalidInputError, match=r"route\(request\)"):
        router.route_prompt("hello", now=NOW)


def test_reload_with_an_uncertainty_the_new_artifact_cannot_give(tmp_path: Path) -> None:
    path = copy_of(tuned(), tmp_path)
    router = make_router(path, prompt_uncertainty="conformal")
    copy_of(trained(), tmp_path)  # no conformal quantile
    with pytest.raises(ModelLoadError, match="conformal"):
        router.reload_model()
    assert sample(router, "tiny_dancer_errors_total", error_type="model_load_error") == 1
    assert router.route_prompt(PROMPTS[0], now=NOW).prediction_set is not None


# (g) spans ---------------------------------------------------------------------------------------------------------


def test_span_tree(router_path: Path, tracing: TracingSystem) -> None:
    router = make_router(router_path, tracing=tracing)
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    out = router.route_prompts(PROMPTS[:5], now=NOW, traceparent=incoming)
    assert isinstance(out, pd.DataFrame)
    spans = tracing.finished_spans()
    assert Counter(s.name for s in spans) == {"routing_request": 1, "circuit_breaker_check": 1,
                                              "feature_engineering": 1, "model_inference": 1,
                                              "uncertainty_estimation": 1}  # fmt: skip
    by_name = {s.name: s for s in spans}
    root = by_name["routing_request"]
    assert format(root.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert format(root.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert root.attributes["outcome"] == "success" and root.attributes["operating_point"] == "quality95"
    strong = int(out["use_strong"].sum())
    assert (root.attributes["powerful_routes"], root.attributes["lightweight_routes"]) == (strong, 5 - strong)
    for name in ("circuit_breaker_check", "feature_engineering", "model_inference"):
        assert by_name[name].parent.span_id == root.context.span_id, name
    estimation = by_name["uncertainty_estimation"]
    assert estimation.parent.span_id == by_name["model_inference"].context.span_id
    assert estimation.attributes["uncertainty_mode"] == "conformal"
    assert estimation.attributes["strong_routes"] == strong
    for s in spans:
        assert SECRET not in repr(dict(s.attributes or {}))
    requests = router.collector.requests()
    assert set(requests["trace_id"]) == {"4bf92f3577b34da6a3ce929d0e0e4736"}
    assert set(router.collector.spans()["name"]) == set(by_name)


def test_a_failed_call_has_an_error_span(router_path: Path, tracing: TracingSystem) -> None:
    router = make_router(router_path, tracing=tracing)
    with pytest.raises(InvalidInputError):
        router.route_prompts(["ok", ""], now=NOW)
    root = next(s for s in tracing.finished_spans() if s.name == "routing_request")
    assert root.status.status_code.name == "ERROR" and root.attributes["outcome"] == "failure"
    assert any(e.name == "exception" for e in root.events)


# (h) plots ---------------------------------------------------------------------------------------------------------


def test_plot_overview_of_a_prompt_router(router_path: Path, close_figures: None) -> None:
    from tinydancer.plots import plot_overview

    router = make_router(router_path)
    router.route_prompts(PROMPTS, now=NOW)
    threshold = router.operating_point[1]  # type: ignore[index]
    fig = plot_overview(router.collector, threshold=threshold)
    assert len(fig.axes) >= 3
    assert fig.axes[0].get_title() == f"Routing latency ({len(PROMPTS)} requests)"
