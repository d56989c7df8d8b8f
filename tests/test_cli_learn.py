"""train -> calibrate -> evaluate through the CLI on the bundled synthetic fixture (small and fast)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tinydancer.cli_learn import main
from tinydancer.data import load_routellm_outcomes
from tinydancer.experiment import split_rows
from tinydancer.fastgrnn_io import load_fastgrnn

FIXTURE = str(Path(__file__).resolve().parents[1] / "datasets" / "synthetic_routing.csv")
COLUMNS = ["--weak", "weak", "--strong", "strong"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "router.safetensors"
    args = ["train", "--data", FIXTURE, *COLUMNS, "--out", str(out), "--featurizer", "wordllama_mean"]
    args += ["--dim", "64", "--hidden", "8", "--epochs", "6", "--lr", "0.05", "--batch-size", "64", "--no-progress"]
    assert main(args) == 0
    return out


def test_train_writes_a_checkpoint_with_featurizer_and_split(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, config, meta = load_fastgrnn(model)
    assert config.input_dim == 64 and config.hidden_dim == 8
    assert json.loads(meta["featurizer"])["kind"] == "wordllama_mean"
    assert json.loads(meta["split"]) == {"kind": "random", "seed": 0, "data": FIXTURE}
    assert len(json.loads(meta["norm_stats"])["mean"]) == 64


def test_calibrate_then_evaluate_json(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["calibrate", "--model", str(model), "--data", FIXTURE, *COLUMNS, "--method", "platt"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["calibrator"] == "platt"
    assert json.loads(load_fastgrnn(model)[2]["calibrator"])["kind"] == "platt"
    assert main(["evaluate", "--model", str(model), "--data", FIXTURE, *COLUMNS, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    result = json.loads(out[0])
    for key in ("apgr", "cpt50", "cpt80", "auroc", "ece", "coverage", "thresholds"):
        assert key in result
    assert result["calibrator"] == "platt" and result["n_test"] == 160
    # The synthetic prompts carry their difficulty: better than random (the true probabilities' AUROC
    # on these 160 test rows is 0.70; 160 training rows of mean embeddings recover part of it).
    assert result["auroc"] > 0.58 and result["apgr"] > 0.5
    assert 0.0 <= result["coverage"] <= 1.0
    thresholds = result["thresholds"]["weak_error"]
    assert thresholds["threshold"] is None or math.isfinite(thresholds["threshold"])


def test_evaluate_on_all_rows_of_another_file(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = load_routellm_outcomes(FIXTURE, weak="weak", strong="strong")
    other = tmp_path / "other.csv"
    rows = split_rows(frame, "random", 0)["test"]
    frame.iloc[rows].rename(columns={"weak_correct": "w", "strong_correct": "s"}).to_csv(other, index=False)
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(model),
                "--data",
                str(other),
                "--weak",
                "w",
                "--strong",
                "s",
                "--rows",
                "all",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["n_test"] == len(rows)
    assert np.isfinite(result["apgr"])


def test_typed_errors_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    absent = tmp_path / "absent"
    assert main(["evaluate", "--model", str(tmp_path / "m.safetensors"), "--data", str(absent)]) == 2
    assert str(absent) in capsys.readouterr().err
    assert main(["train", "--data", FIXTURE, "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "DataError" in err and "found ['prompt', 'subject', 'weak', 'strong', 'cost', 'p_weak_wrong']" in err
