"""train -> calibrate -> evaluate through the CLI on the bundled synthetic fixture; every option documented."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tinydancer.cli import main as entry
from tinydancer.cli.learn import main
from tinydancer.datasets import load
from tinydancer.datasets.outcomes import load_routellm_outcomes
from tinydancer.learning.calibration import auroc
from tinydancer.learning.experiment import evaluate_router, split_rows
from tinydancer.model.fastgrnn_file import load_fastgrnn

FIXTURE = str(Path(__file__).resolve().parents[2] / "datasets" / "synthetic_routing.csv")
COLUMNS = ["--weak", "weak", "--strong", "strong"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "router.safetensors"
    # The bundled fixture by name, its outcome columns recognised without --weak/--strong.
    args = ["train", "--data", "synthetic", "--out", str(out), "--featurizer", "wordllama_mean"]
    args += ["--dim", "64", "--hidden", "8", "--epochs", "6", "--lr", "0.05", "--batch-size", "64", "--no-progress"]
    args += ["--train-target", "weak_fails"]  # the figures below read "the weak model fails"
    assert main(args) == 0
    return out


def test_train_writes_a_checkpoint_with_featurizer_and_split(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, config, meta = load_fastgrnn(model)
    assert config.input_dim == 64 and config.hidden_dim == 8
    assert json.loads(meta["featurizer"])["kind"] == "wordllama_mean"
    assert json.loads(meta["split"]) == {"kind": "random", "seed": 0, "data": "synthetic"}
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
    assert result["calibrator"] == "platt" and result["n_test"] == 800
    # The synthetic prompts carry their difficulty (the true probabilities' AUROC on these 800 test rows
    # is 0.85): even this small 6-epoch model on mean embeddings is far better than random.
    assert result["auroc"] > 0.75 and result["apgr"] > 0.6
    assert 0.0 <= result["coverage"] <= 1.0
    thresholds = result["thresholds"]["weak_error"]
    assert thresholds["threshold"] is None or math.isfinite(thresholds["threshold"])


def test_calibrate_overwrites_the_model_atomically(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its default overwrites --model; a write that fails midway leaves the old file whole, and no temp file."""
    import os

    copy = tmp_path / "router.safetensors"
    copy.write_bytes(model.read_bytes())
    before = copy.read_bytes()

    def crash(fd: int) -> None:  # the calibrated checkpoint is written to the temporary file, not renamed yet
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        main(["calibrate", "--model", str(copy), "--data", FIXTURE, *COLUMNS])
    assert copy.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [copy.name]
    monkeypatch.undo()
    assert main(["calibrate", "--model", str(copy), "--data", FIXTURE, *COLUMNS]) == 0
    assert json.loads(load_fastgrnn(copy)[2]["calibrator"])["kind"] == "platt"  # the default method
    assert [p.name for p in tmp_path.iterdir()] == [copy.name]


def test_json_outputs_keep_their_documented_keys(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``train`` / ``calibrate`` / ``evaluate --json`` print the typed results under the documented keys."""
    capsys.readouterr()
    out = tmp_path / "calibrated.safetensors"
    assert main(["calibrate", "--model", str(model), "--data", "synthetic", "--out", str(out)]) == 0
    calibrated = json.loads(capsys.readouterr().out)
    assert list(calibrated) == ["model", "calibrator", "ece_cal_before", "ece_cal_after"]
    assert calibrated["model"] == str(out) and calibrated["calibrator"] == "platt"
    assert main(["evaluate", "--model", str(out), "--data", "synthetic", "--alpha", "0.2", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == [
        "n_test", "apgr", "apgr_dense", "cpt20", "cpt50", "cpt80", "auroc", "ece", "ece_raw", "ece_equal_mass",
        "coverage", "coverage_target", "uncertain_share", "calibrator", "thresholds", "model",
    ]  # fmt: skip
    assert list(printed["thresholds"]) == ["weak_error", "strong_share_0.5", "quality_share_0.95"]
    assert list(printed["thresholds"]["weak_error"]) == ["alpha", "delta", "threshold", "test_weak_share",
                                                         "test_weak_error"]  # fmt: skip
    # The same figures as the API call, infinite thresholds as null.
    typed = evaluate_router(out, load("synthetic"), alpha=0.2).as_dict()
    weak_error = typed["thresholds"]["weak_error"]
    weak_error["threshold"] = weak_error["threshold"] if math.isfinite(weak_error["threshold"]) else None
    assert printed == {**typed, "model": str(out)}


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
    renamed = tmp_path / "renamed.csv"
    pd.read_csv(FIXTURE).rename(columns={"weak": "w", "strong": "s"}).to_csv(renamed, index=False)
    assert main(["train", "--data", str(renamed), "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "DataError" in err and "found ['prompt', 'subject', 'w', 's', 'cost', 'p_weak_wrong']" in err
    assert "--weak COLUMN --strong COLUMN" in err
    assert main(["train", "--data", "mmlu", "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "expected a bundled dataset name (one of ['routellm-mmlu', 'synthetic'])" in err and "got 'mmlu'" in err
    one_subject = tmp_path / "one_subject.csv"
    pd.read_csv(FIXTURE).assign(subject="gsm").to_csv(one_subject, index=False)
    argv = ["train", "--data", str(one_subject), "--split", "subject", "--out", str(tmp_path / "m.safetensors")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "split 'subject': expected at least 2 subjects" in err and "got 1 ('gsm')" in err


def _help_entries(command: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """``tinydancer COMMAND --help`` parsed into option -> its help text, as printed."""
    with pytest.raises(SystemExit) as exit_info:
        entry.main([command, "--help"])
    assert exit_info.value.code == 0
    entries: dict[str, list[str]] = {}
    text: list[str] = []
    for line in capsys.readouterr().out.split("options:", 1)[1].splitlines():
        if line.startswith("  -"):  # "  --flag METAVAR   help" (after a long invocation the help starts below)
            invocation, _, first = line.strip().partition("  ")
            text = [first.strip()]
            for option in re.findall(r"(?:^|, )(--?[\w-]+)", invocation):
                entries[option] = text
        elif line.startswith("   "):
            text.append(line.strip())
    return {option: " ".join(parts).strip() for option, parts in entries.items() if option not in ("-h", "--help")}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("train", {"--data": None, "--weak": None, "--out": None, "--split": "random", "--seed": "0", "--dim": "64",
                   "--max-tokens": "256", "--epochs": "20", "--lr": "0.001", "--quantize": None, "--refit": "True",
                   "--train-target": "strong_gain", "--featurizer": "wordllama_prefix_mean", "--ngram-l2": "0.0001",
                   "--ngram-lr-scale": "3.0",
                   "--ngram-buckets": None}),
        ("calibrate", {"--data": None, "--model": None, "--method": "platt", "--out": None}),
        ("evaluate", {"--data": None, "--model": None, "--rows": "test", "--alpha": "0.1", "--delta": "0.1",
                      "--json": None}),
        ("demo", {"--out": "models", "--requests": "200", "--reports": "reports"}),
        ("assets", {"--out": "monitoring"}),
    ],
)  # fmt: skip
def test_every_option_of_every_subcommand_has_help_and_shows_its_default(
    command: str, expected: dict[str, str | None], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps at the terminal width, hyphenated names included
    entries = _help_entries(command, capsys)
    assert set(expected) <= set(entries), f"options missing from --help: {set(expected) - set(entries)}"
    empty = [option for option, text in entries.items() if not text]
    assert not empty, f"{command}: options without help text: {empty}"
    for option, default in expected.items():
        if default is not None:
            assert f"(default: {default})" in entries[option], (option, entries[option])
    if "--data" in expected:
        assert "routellm-mmlu" in entries["--data"] and "synthetic" in entries["--data"] and "path" in entries["--data"]
        assert "recognised automatically" in entries["--weak"] and "recognised automatically" in entries["--strong"]


def test_data_takes_a_bundled_name_and_the_outcome_columns_need_no_flags(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--data", "synthetic", "--json"]) == 0
    by_name = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--model", str(model), "--data", FIXTURE, "--json"]) == 0
    by_path = json.loads(capsys.readouterr().out)
    by_name.pop("model"), by_path.pop("model")
    assert by_name == by_path and by_name["n_test"] == 800


def test_cli_defaults_learn_the_bundled_synthetic_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``train --data datasets/synthetic_routing.csv --out X`` with every default, then ``evaluate --json``.

    The default recipe trains for the gain of the strong model, so ``evaluate`` reads the label "the strong
    model scores higher". The bar: test AUROC >= 0.7 and within 0.05 of the AUROC of the true failure
    probabilities against that label on the same rows (0.75; the trained model reaches 0.73), and APGR
    > 0.65 (0.69). A model that learned nothing scores ~0.5, as the 400-row fixture with its weaker signal
    did (0.52, best epoch 1).
    """
    out = tmp_path / "router.safetensors"
    assert entry.main(["train", "--data", FIXTURE, "--out", str(out), "--no-progress"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(trained) == ["model", "rows", "size_bytes_float32", "size_bytes_int8", "best_epoch"]
    assert trained["rows"] == {"train": 800, "val": 200, "cal": 200, "test": 800}
    assert trained["best_epoch"] > 1  # it improved on the validation rows after the first epoch
    assert entry.main(["evaluate", "--model", str(out), "--data", FIXTURE, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    frame = pd.read_csv(FIXTURE)
    test = split_rows(frame, "random", 0)["test"]
    strong_wins = (frame["strong"] > frame["weak"]).to_numpy(np.float64)[test]
    truth = auroc(frame["p_weak_wrong"].to_numpy()[test], strong_wins)
    assert result["n_test"] == 800 and truth > 0.7
    assert result["auroc"] >= 0.7 and result["auroc"] >= truth - 0.05, (result["auroc"], truth)
    assert result["apgr"] > 0.65
