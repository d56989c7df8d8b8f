"""Replay: recorded traffic decided again under another threshold or artifact, compared request by request."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests._prompt_routers import mmlu, tuned
from tinydancer.errors import ConfigError, DataError
from tinydancer.model.prompt_artifact import load_prompt_router
from tinydancer.model.scorer_router import LengthScorer, ScorerRouterArtifact, save_scorer_router
from tinydancer.observability.logs import LogConfig
from tinydancer.observability.recording import load_recording
from tinydancer.routing import REPLAY_COLUMNS, Router, RouterConfig, replay


def record(folder: Path, *, record_prompts: bool, segments: int = 2) -> list[int]:
    frame = mmlu().head(90)
    router = Router(RouterConfig(model_path=str(tuned()), record_prompts=record_prompts),
                    log_config=LogConfig(renderer="none"))  # fmt: skip
    ids: list[int] = []
    for part in np.array_split(np.arange(len(frame)), segments):
        rows = frame.iloc[part]
        routed = router.route_prompts(rows["prompt"])
        ids += routed["request_id"].tolist()
        router.record_outcomes({"request_id": routed["request_id"].tolist()[:20],
                                "weak_correct": rows["weak_correct"].tolist()[:20],
                                "strong_correct": rows["strong_correct"].tolist()[:20]})  # fmt: skip
        router.collector.save(folder)
    return ids


def test_a_threshold_replay_redecides_the_recorded_scores(tmp_path: Path) -> None:
    ids = record(tmp_path / "rec", record_prompts=False)
    result = replay(tmp_path / "rec", threshold=0.3)
    frame = result.requests
    assert frame.columns.tolist() == list(REPLAY_COLUMNS) and frame["request_id"].tolist() == ids
    assert (frame["new_use_strong"] == (frame["old_p_strong"] >= np.float32(0.3))).all()
    assert (frame["flipped"] == (frame["new_use_strong"] != frame["old_use_strong"])).all()
    s = result.summary
    assert s["requests"] == 90 and s["flipped"] == s["to_strong"] + s["to_weak"]
    assert s["with_outcomes"] == 40  # 20 rows with both outcomes per segment
    known = frame.dropna(subset=["old_quality", "new_quality"])
    assert s["new_quality"] == pytest.approx(known["new_quality"].mean())
    everything = replay(tmp_path / "rec", threshold=-math.inf).summary
    assert everything["new_strong_share"] == 1.0 and everything["to_weak"] == 0


def test_replaying_the_same_artifact_and_operating_point_flips_nothing(tmp_path: Path) -> None:
    record(tmp_path / "rec", record_prompts=True)
    artifact = load_prompt_router(tuned())
    same = replay(tmp_path / "rec", tuned())
    assert same.summary["flipped"] == 0 and same.summary["threshold"] == artifact.operating_point().threshold
    np.testing.assert_allclose(same.requests["new_p_strong"], same.requests["old_p_strong"], atol=1e-6)
    other = next(name for name in artifact.operating_points if name != artifact.default_operating_point)
    moved = replay(tmp_path / "rec", artifact, other)
    assert moved.summary["threshold"] == artifact.operating_point(other).threshold


def test_a_scorer_router_replays_the_recorded_prompts(tmp_path: Path) -> None:
    record(tmp_path / "rec", record_prompts=True)
    scorer = LengthScorer(500.0)
    path = save_scorer_router(tmp_path / "len.safetensors", ScorerRouterArtifact(scorer))
    result = replay(tmp_path / "rec", path, threshold=0.4)
    prompts = mmlu().head(90)["prompt"].tolist()
    np.testing.assert_allclose(result.requests["new_p_strong"], scorer.score(prompts), atol=1e-6)
    assert (result.requests["new_use_strong"] == (result.requests["new_p_strong"] >= np.float32(0.4))).all()
    assert result.summary["requests"] == 90


def test_a_model_replay_needs_recorded_prompts_and_clear_arguments(tmp_path: Path) -> None:
    record(tmp_path / "rec", record_prompts=False)
    with pytest.raises(DataError, match="record_prompts=True"):
        replay(tmp_path / "rec", tuned())
    with pytest.raises(ConfigError, match="not both"):
        replay(tmp_path / "rec", tuned(), "x", threshold=0.5)
    with pytest.raises(ConfigError, match="expected a threshold"):
        replay(tmp_path / "rec")


def test_the_summary_is_the_same_without_the_per_request_frame(tmp_path: Path) -> None:
    record(tmp_path / "rec", record_prompts=False, segments=3)
    kept, streamed = (
        replay(tmp_path / "rec", threshold=0.35),
        replay(tmp_path / "rec", threshold=0.35, keep_requests=False),
    )
    assert len(streamed.requests) == 0 and streamed.requests.columns.tolist() == list(REPLAY_COLUMNS)
    assert streamed.summary == pytest.approx(kept.summary, nan_ok=True)


def test_off_policy_estimates_recover_a_new_policys_quality_from_explored_traffic(tmp_path: Path) -> None:
    frame = mmlu().sample(3000, random_state=0)
    router = Router(RouterConfig(model_path=str(tuned()), exploration_rate=0.4, seed=3),
                    log_config=LogConfig(renderer="none"))  # fmt: skip
    routed = router.route_prompts(frame["prompt"])
    strong = routed["use_strong"].to_numpy()
    decisions = router.collector.decisions()
    policy = decisions["p_strong"] >= decisions["threshold"]
    explored = strong != policy.to_numpy()
    assert 0.1 < explored.mean() < 0.3  # a random model: about half of the 40 % differ from the policy
    assert set(np.round(decisions["propensity"], 6)) == {0.8, 0.2}
    assert (decisions.loc[explored, "propensity"] == 0.2).all()
    # only the served model's outcome is observed, as in production
    weak, strong_out = frame["weak_correct"].to_numpy(), frame["strong_correct"].to_numpy()
    router.record_outcomes({"request_id": routed["request_id"].tolist(),
                            "weak_correct": np.where(strong, np.nan, weak).tolist(),
                            "strong_correct": np.where(strong, strong_out, np.nan).tolist()})  # fmt: skip
    router.collector.save(tmp_path / "rec")
    result = replay(tmp_path / "rec", threshold=0.25)
    s = result.summary
    assert s["explored"] and s["with_reward"] == 3000
    truth = np.where(decisions["p_strong"].to_numpy() >= np.float32(0.25), strong_out, weak).mean()
    assert s["snips_low"] < truth < s["snips_high"] and s["ips_low"] < truth < s["ips_high"]
    assert s["snips_high"] - s["snips_low"] < 0.06


def test_without_exploration_there_is_no_off_policy_estimate(tmp_path: Path) -> None:
    record(tmp_path / "rec", record_prompts=False)
    s = replay(tmp_path / "rec", threshold=0.3).summary
    assert not s["explored"] and math.isnan(s["ips_quality"]) and math.isnan(s["snips_quality"])


def test_outcomes_saved_after_their_decisions_still_join(tmp_path: Path) -> None:
    frame = mmlu().head(30)
    router = Router(RouterConfig(model_path=str(tuned())), log_config=LogConfig(renderer="none"))
    ids = router.route_prompts(frame["prompt"])["request_id"].tolist()
    router.collector.save(tmp_path / "rec")  # segment 0: the decisions
    router.record_outcomes({"request_id": ids, "weak_correct": frame["weak_correct"].tolist(),
                            "strong_correct": frame["strong_correct"].tolist()})  # fmt: skip
    router.collector.save(tmp_path / "rec")  # segment 1: their late outcomes
    assert replay(tmp_path / "rec", threshold=0.4).summary["with_outcomes"] == 30


def test_a_loaded_recording_replays_like_its_folder(tmp_path: Path) -> None:
    record(tmp_path / "rec", record_prompts=True)
    from_folder = replay(tmp_path / "rec", tuned(), threshold=0.3)
    loaded = replay(load_recording(tmp_path / "rec"), tuned(), threshold=0.3)
    assert loaded.summary == pytest.approx(from_folder.summary, nan_ok=True)
    assert loaded.requests.equals(from_folder.requests)
