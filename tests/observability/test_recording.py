"""Recordings: a router's collector saved to Parquet segments reads back into the same frames, exactly."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._prompt_routers import mmlu, tuned
from tinydancer.cli.main import main
from tinydancer.errors import DataError, InvalidInputError
from tinydancer.learning.experiment import train_router
from tinydancer.learning.train import TrainConfig
from tinydancer.observability.collector import Collector
from tinydancer.observability.logs import LogConfig
from tinydancer.observability.recording import RECORDING_KINDS, RECORDING_VERSION, load_recording, recording_outcomes
from tinydancer.observability.tracing import TracingConfig, TracingSystem
from tinydancer.routing import Router, RouterConfig, RoutingRequest

KINDS = RECORDING_KINDS


def frames(collector: Collector) -> dict[str, pd.DataFrame]:
    return {kind: getattr(collector, kind)() for kind in KINDS}


def assert_same(recorded: pd.DataFrame, expected: pd.DataFrame, kind: str) -> None:
    if kind == "metrics":
        assert (recorded["segment"] == 0).all()
        recorded = recorded.drop(columns="segment")
    pd.testing.assert_frame_equal(recorded, expected)


@pytest.fixture(scope="module")
def prompts() -> list[str]:
    return mmlu()["prompt"].head(60).tolist()


def test_a_prompt_routers_recording_round_trips_exactly(tmp_path: Path, prompts: list[str]) -> None:
    tracing = TracingSystem(TracingConfig(service_name="recording-test", sampling_ratio=1.0))
    try:
        router = Router(RouterConfig(model_path=str(tuned()), record_prompts=True), tracing=tracing,
                        log_config=LogConfig(renderer="none"))  # fmt: skip
        router.route_prompts(prompts[:40])
        router.route_prompt(prompts[40], metadata={"user": "u1"})
        with pytest.raises(InvalidInputError):
            router.route_prompt("   ")
        router.record_outcome(0, weak_correct=1.0, cost=0.25)
        router.record_outcome(10**9, strong_correct=0.0)  # unknown: kept, not joined
    finally:
        tracing.shutdown()
    expected = frames(router.collector)
    assert all(len(expected[k]) for k in KINDS)  # every kind has rows to round-trip
    segment = router.collector.save(tmp_path / "rec")
    assert segment.name == "segment-000000" and router.collector.stored["requests"] == 0  # moved out
    recording = load_recording(tmp_path / "rec")
    for kind in KINDS:
        assert_same(getattr(recording, kind), expected[kind], kind)
    assert recording.decisions["prompt"].dropna().tolist() == prompts[:41]  # asked for: kept
    span_attributes = recording.spans["attributes"].tolist()
    assert any("batch_size" in a for a in span_attributes)
    assert recording.segments["requests_rows"].tolist() == [42]


def test_a_candidate_routers_recording_round_trips_exactly(tmp_path: Path) -> None:
    config = RouterConfig(model_path=str(tmp_path / "absent.safetensors"))
    with pytest.warns(RuntimeWarning, match="not found"):
        router = Router(config, log_config=LogConfig(renderer="none"))
    rng = np.random.default_rng(0)
    for i in range(5):
        router.route(RoutingRequest.from_arrays(rng.normal(size=8), rng.normal(size=(4, 8)),
                                                ids=[f"r{i}c{j}" for j in range(4)]), now=1_700_000_000)  # fmt: skip
    expected = frames(router.collector)
    router.collector.save(tmp_path / "rec", clear=False)
    assert router.collector.stored["requests"] == 5  # copied, not moved
    recording = load_recording(tmp_path / "rec")
    for kind in KINDS:
        assert_same(getattr(recording, kind), expected[kind], kind)


def test_prompt_text_is_recorded_only_when_asked(tmp_path: Path, prompts: list[str]) -> None:
    router = Router(RouterConfig(model_path=str(tuned())), log_config=LogConfig(renderer="none"))
    router.route_prompts(prompts[:10])
    router.collector.save(tmp_path / "rec")
    recording = load_recording(tmp_path / "rec")
    assert recording.decisions["prompt"].isna().all()
    for file in (tmp_path / "rec").rglob("*.parquet"):
        data = file.read_bytes()
        assert not any(p[:40].encode() in data for p in prompts[:10]), file.name


def test_segments_append_and_nothing_is_lost_while_routing(tmp_path: Path, prompts: list[str]) -> None:
    router = Router(RouterConfig(model_path=str(tuned())), log_config=LogConfig(renderer="none"))
    router.route_prompts(prompts[:5])  # compile before the race
    router.collector.clear()
    stop, routed = threading.Event(), [0]

    def traffic() -> None:
        while not stop.is_set():
            router.route_prompts(prompts[:7])
            routed[0] += 7

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        for _ in range(5):
            router.collector.save(tmp_path / "rec")
    finally:
        stop.set()
        worker.join()
    router.collector.save(tmp_path / "rec")
    recording = load_recording(tmp_path / "rec")
    assert len(recording.segments) == 6
    assert len(recording.requests) == routed[0] == recording.segments["requests_rows"].sum()
    assert recording.requests["request_id"].is_unique and recording.requests["request_id"].is_monotonic_increasing
    assert len(recording.decisions) == routed[0]
    assert recording.metrics["segment"].unique().tolist() == list(range(6))
    assert recording.decisions["model_type"].dtype == "category"


def test_an_empty_recording_has_the_collectors_columns(tmp_path: Path) -> None:
    Collector().save(tmp_path / "rec")
    recording = load_recording(tmp_path / "rec")
    for kind in KINDS:
        expected = getattr(Collector(), kind)().columns.tolist() + (["segment"] if kind == "metrics" else [])
        assert getattr(recording, kind).columns.tolist() == expected


def test_unreadable_recordings_fail_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"expected a manifest\.json"):
        load_recording(tmp_path / "nothing")
    Collector().save(tmp_path / "rec")
    manifest = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    assert manifest["format"] == "tinydancer-recording" and manifest["version"] == RECORDING_VERSION
    newer = {**manifest, "version": RECORDING_VERSION + 1}
    (tmp_path / "rec" / "manifest.json").write_text(json.dumps(newer))
    with pytest.raises(DataError, match="newer than this tinydancer reads"):
        load_recording(tmp_path / "rec")
    with pytest.raises(DataError, match="newer than this tinydancer reads"):
        Collector().save(tmp_path / "rec")  # and nothing is appended to it
    (tmp_path / "rec" / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "rec" / "segment-000000" / "spans.parquet").unlink()
    with pytest.raises(DataError, match=r"spans\.parquet of segment-000000 is missing"):
        load_recording(tmp_path / "rec")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(DataError, match="not a tinydancer-recording manifest"):
        load_recording(tmp_path / "other")


def test_a_recording_with_outcomes_is_a_training_set(tmp_path: Path, prompts: list[str]) -> None:
    frame = mmlu().head(60)
    router = Router(RouterConfig(model_path=str(tuned()), record_prompts=True), log_config=LogConfig(renderer="none"))
    routed = router.route_prompts(frame["prompt"])
    ids = routed["request_id"].tolist()
    # late, partial reports: strong outcomes first for everyone, weak ones later for all but the last 10
    router.record_outcomes({"request_id": ids, "strong_correct": frame["strong_correct"].tolist()})
    router.record_outcomes({"request_id": ids[:-10], "weak_correct": frame["weak_correct"].tolist()[:-10]})
    router.record_outcome(10**9, weak_correct=1.0)  # unknown: counted, not joined
    router.collector.save(tmp_path / "rec")
    recording = load_recording(tmp_path / "rec")
    assert recording.outcomes["joined"].tolist().count(False) == 1
    both = recording_outcomes(recording)
    assert both["prompt"].tolist() == frame["prompt"].tolist()[:-10]
    assert both["weak_correct"].tolist() == frame["weak_correct"].tolist()[:-10]
    assert both["strong_correct"].tolist() == frame["strong_correct"].tolist()[:-10]
    assert (both["use_strong"].to_numpy() == routed["use_strong"].to_numpy()[:-10]).all()
    assert len(recording_outcomes(recording, require="weak")) == 50
    trained = train_router(both, tmp_path / "retrained.safetensors", train=TrainConfig(epochs=1, progress=False))
    assert trained.row_counts["train"] + trained.row_counts["test"] < len(both)
    assert main(["train", "--data", str(tmp_path / "rec"), "--out", str(tmp_path / "cli.safetensors"),
                 "--epochs", "1", "--no-progress"]) == 0  # fmt: skip


def test_a_recording_without_prompt_text_is_not_training_data(tmp_path: Path, prompts: list[str]) -> None:
    router = Router(RouterConfig(model_path=str(tuned())), log_config=LogConfig(renderer="none"))
    ids = router.route_prompts(prompts[:5])["request_id"].tolist()
    router.record_outcomes({"request_id": ids, "weak_correct": [1.0] * 5, "strong_correct": [1.0] * 5})
    router.collector.save(tmp_path / "rec")
    with pytest.raises(DataError, match="record_prompts=True"):
        recording_outcomes(load_recording(tmp_path / "rec"))
    assert main(["train", "--data", str(tmp_path / "rec"), "--out", str(tmp_path / "m.safetensors")]) == 2
