"""Servable scorers through the whole learning loop: state round trips, train -> calibrate -> tune -> evaluate ->
serve (API and CLI), on the seeded synthetic outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tinydancer import Router, RouterConfig
from tinydancer.cli.main import main
from tinydancer.datasets import load
from tinydancer.errors import InvalidInputError
from tinydancer.learning import (
    FastGRNNScorer,
    KNNEmbeddingScorer,
    OracleScorer,
    PromptStatsScorer,
    RandomScorer,
    ServableScorer,
    TfidfLogisticScorer,
    calibrate_router,
    evaluate_router,
    labels,
    score_frame,
    split_rows,
    train_scorer_router,
    tune_router,
)
from tinydancer.model import load_scorer_router
from tinydancer.observability.logs import LogConfig


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load("synthetic")


SERVABLE = [TfidfLogisticScorer, KNNEmbeddingScorer, PromptStatsScorer, RandomScorer]


@pytest.mark.parametrize("kind", SERVABLE, ids=lambda k: k.__name__)
def test_state_round_trip_gives_the_same_scores(kind: type, frame: pd.DataFrame) -> None:
    prompts = frame["prompt"].tolist()
    scorer = kind().fit(prompts[:600], labels(frame)[:600])
    assert isinstance(scorer, ServableScorer)
    twin = kind.from_state(scorer.state())
    if kind is RandomScorer:  # a rebuilt stream starts over, as a fresh fit does
        scorer.fit(prompts[:600], labels(frame)[:600])
    np.testing.assert_array_equal(twin.score(prompts[600:]), scorer.score(prompts[600:]))
    assert twin.name == scorer.name


def test_train_calibrate_tune_evaluate_and_serve(frame: pd.DataFrame, tmp_path: Path) -> None:
    trained = train_scorer_router(frame, tmp_path / "t.safetensors", TfidfLogisticScorer(), seed=1, data_tag="syn")
    assert trained.row_counts == {k: len(v) for k, v in split_rows(frame, "random", 1).items()}
    stored = load_scorer_router(trained.path)
    assert dict(stored.split) == {"kind": "random", "seed": 1, "data": "syn"} and stored.target == "strong_gain"
    # the stored scorer scores as the fitted one, through the serving path (float32)
    scores, _ = score_frame(trained.path, frame)
    np.testing.assert_allclose(scores, trained.scorer.score(frame["prompt"].tolist()), atol=1e-7)
    calibrated = calibrate_router(trained.path, frame)
    assert calibrated.ece_cal_after < calibrated.ece_cal_before
    tuned = tune_router(trained.path, frame, "strong-share=0.4", "s40", default=True)
    report = evaluate_router(trained.path, frame)
    assert 0.55 < report.apgr <= 1.0  # TF-IDF + LR learns the synthetic outcomes (random is ~0.5)
    router = Router(RouterConfig(model_path=str(trained.path)), log_config=LogConfig(renderer="none"))
    cal_rows = split_rows(frame, "random", 1)["cal"]
    served = router.route_prompts(frame["prompt"].iloc[cal_rows].tolist())
    assert router.operating_point == ("s40", tuned.point.threshold)
    assert served["use_strong"].mean() == pytest.approx(tuned.point.reached["strong_share"])


@pytest.mark.parametrize("scorer", [FastGRNNScorer(), "oracle"], ids=["fastgrnn", "oracle"])
def test_unservable_scorers_are_refused(scorer: object, frame: pd.DataFrame, tmp_path: Path) -> None:
    chosen = OracleScorer(frame) if scorer == "oracle" else scorer
    with pytest.raises(InvalidInputError, match=r"ServableScorer.*train_router"):
        train_scorer_router(frame, tmp_path / "x.safetensors", chosen)  # type: ignore[arg-type]
    assert not (tmp_path / "x.safetensors").exists()


def test_cli_trains_and_serves_a_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "stats.safetensors")
    data = ["--data", "synthetic"]
    assert main(["train", *data, "--scorer", "prompt_stats", "--out", out, "--weak-name", "mini"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert trained["scorer"] == "prompt_stats" and trained["rows"]["train"] == 800
    assert main(["calibrate", "--model", out, *data]) == 0
    assert main(["tune", "--model", out, *data, "--target", "strong-share=0.5", "--name", "half"]) == 0
    assert main(["evaluate", "--model", out, *data, "--json"]) == 0
    capsys.readouterr()
    assert main(["route", "--model", out, "What is 2+2?", "Prove the four colour theorem."]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["operating_point"] for r in rows] == ["half", "half"] and {r["model"] for r in rows} <= {"mini", "strong"}
