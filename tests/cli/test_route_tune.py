"""train -> calibrate -> tune -> route through ``python -m tinydancer``, in-process; typed errors exit 2 in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tinydancer.cli.main import main
from tinydancer.model.prompt_artifact import load_prompt_router
from tinydancer.routing.prompts import PROMPT_RESULT_COLUMNS

PROMPTS = ["What is 2+2?", "Prove that there are infinitely many primes.", "Name the capital of France."]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("route") / "router.safetensors"
    train = ["train", "--data", "synthetic", "--out", str(out), "--featurizer", "wordllama_mean", "--hidden", "8"]
    train += ["--epochs", "1", "--no-progress", "--weak-name", "small-model", "--strong-name", "big-model"]
    assert main(train) == 0
    assert main(["calibrate", "--model", str(out), "--data", "synthetic", "--method", "platt"]) == 0
    assert main(["tune", "--model", str(out), "--data", "synthetic", "--target", "strong-share=0.5", "--name",
                 "half"]) == 0  # fmt: skip
    assert main(["tune", "--model", str(out), "--data", "synthetic", "--target", "quality=0.95", "--name", "q95",
                 "--default"]) == 0  # fmt: skip
    return out


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.strip().splitlines()]


def test_tune_prints_the_point_and_stores_it(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    art = load_prompt_router(model)
    assert set(art.operating_points) == {"half", "q95"} and art.default_operating_point == "q95"
    assert art.calibrator.kind == "platt" and art.conformal is not None
    assert (art.weak_model, art.strong_model) == ("small-model", "big-model")
    assert art.operating_points["half"].target == "strong_share" and art.operating_points["half"].value == 0.5
    assert art.operating_points["half"].reached["strong_share"] <= 0.5
    out = tmp_path / "copy.safetensors"
    capsys.readouterr()
    args = ["tune", "--model", str(model), "--data", "synthetic", "--target", "weak-error=0.3@0.2", "--name", "guard",
            "--rows", "all", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = lines(capsys.readouterr().out)
    assert len(printed) == 1
    line = printed[0]
    assert line["model"] == str(out) and line["operating_point"] == "guard"
    assert (line["target"], line["value"], line["delta"]) == ("weak_error", 0.3, 0.2)
    assert line["source"]["rows"] == "all" and line["source"]["n_rows"] == 2000  # type: ignore[index]
    stored = load_prompt_router(out)
    assert set(stored.operating_points) == {"half", "q95", "guard"} and stored.default_operating_point == "q95"
    assert set(load_prompt_router(model).operating_points) == {"half", "q95"}  # --out left --model alone


def test_route_prompts_to_stdout(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["route", "--model", str(model), *PROMPTS]) == 0
    captured = capsys.readouterr()
    rows = lines(captured.out)
    assert len(rows) == 3 and all(list(r) == list(PROMPT_RESULT_COLUMNS) for r in rows)
    art = load_prompt_router(model)
    threshold = art.operating_points["q95"].threshold
    for r in rows:
        assert r["operating_point"] == "q95" and r["threshold"] == threshold
        assert r["use_strong"] == (r["p_strong"] >= threshold)  # type: ignore[operator]
        assert r["model"] == ("big-model" if r["use_strong"] else "small-model")
        assert r["prediction_set"] in ("", "weak", "strong", "weak,strong")
    assert [r["request_id"] for r in rows] == [0, 1, 2]
    assert captured.err == ""


def test_route_with_an_operating_point_and_uncertainty(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["route", "--model", str(model), "--operating-point", "half", "--uncertainty", "original",
                 "--metrics", *PROMPTS]) == 0  # fmt: skip
    captured = capsys.readouterr()
    rows = lines(captured.out)
    half = load_prompt_router(model).operating_points["half"].threshold
    assert {r["operating_point"] for r in rows} == {"half"} and {r["threshold"] for r in rows} == {half}
    for r in rows:
        p = float(r["p_strong"])  # type: ignore[arg-type]
        assert r["uncertainty"] == pytest.approx(max(0.0, 1 - 2 * abs(p - 0.5)), abs=1e-6)
    assert 'tiny_dancer_routing_requests_total{status="success"} 3.0' in captured.err
    assert 'tiny_dancer_operating_point_info{operating_point="half"} 1.0' in captured.err


def write_prompts(folder: Path, suffix: str) -> Path:
    path = folder / f"prompts{suffix}"
    if suffix == ".jsonl":
        path.write_text(
            json.dumps({"prompt": PROMPTS[0], "id": 1}) + "\n\n" + json.dumps(PROMPTS[1]) + "\n"
            + json.dumps({"prompt": PROMPTS[2]}) + "\n",
            encoding="utf-8",
        )  # fmt: skip
    elif suffix == ".csv":
        pd.DataFrame({"id": [1, 2, 3], "prompt": PROMPTS}).to_csv(path, index=False)
    else:
        path.write_text("\n".join(PROMPTS) + "\n\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".txt"])
@pytest.mark.parametrize("out", [".csv", ".jsonl"])
def test_route_a_file_to_a_file(
    model: Path, tmp_path: Path, suffix: str, out: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reference_out = tmp_path / f"reference{out}"
    capsys.readouterr()
    assert main(["route", "--model", str(model), *PROMPTS]) == 0
    expected = lines(capsys.readouterr().out)
    target = tmp_path / f"decisions{out}"
    assert main(["route", "--model", str(model), "--file", str(write_prompts(tmp_path, suffix)), "--out",
                 str(target)]) == 0  # fmt: skip
    assert capsys.readouterr().out == ""
    got = pd.read_csv(target, keep_default_na=False) if out == ".csv" else pd.read_json(target, lines=True)
    assert list(got.columns) == list(PROMPT_RESULT_COLUMNS) and len(got) == 3
    # both files keep every digit: the decision reads the same from them (JSON lines: double_precision=15)
    assert got["p_strong"].tolist() == pytest.approx([r["p_strong"] for r in expected], abs=1e-12)
    assert ((got["p_strong"] >= got["threshold"]) == got["use_strong"].astype(bool)).all()
    assert got["use_strong"].astype(bool).tolist() == [r["use_strong"] for r in expected]
    assert got["model"].tolist() == [r["model"] for r in expected]
    assert set(got["operating_point"]) == {"q95"}
    assert not reference_out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "--data", "synthetic", "--target", "speed=0.5", "--name", "x"], "InvalidInputError: target"),
        (["tune", "--data", "synthetic", "--target", "strong-share=1.5", "--name", "x"], "InvalidInputError: target"),
        (["tune", "--data", "synthetic", "--target", "quality=0.9@0.1", "--name", "x"], "only weak-error"),
        (["tune", "--data", "synthetic", "--target", "quality=0.9", "--name", "bad name"], "ConfigError"),
        (["route", "--operating-point", "nope", "hello"], "ConfigError: operating point"),
        (["route", "--file", "/nonexistent/prompts.jsonl"], "DataError: --file"),
        (["route", ""], "InvalidInputError: prompt 0"),
        (["route", "ok", "   "], "InvalidInputError: prompt 1"),
        (["route"], "DataError: route: expected prompts"),
    ],
)
def test_typed_errors_exit_2_with_one_line(
    model: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = model.read_bytes()
    capsys.readouterr()
    command, rest = args[0], args[1:]
    assert main([command, "--model", str(model), *rest]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    typed = [line for line in err if line.startswith("tinydancer ")]
    assert typed == [err[-1]], captured.err  # the last line, the only one of its kind
    assert err[-1].startswith(f"tinydancer {command}: ") and message in err[-1]
    assert captured.out == ""
    assert model.read_bytes() == before  # a failed tune writes nothing


@pytest.mark.parametrize("prompts", [[""], ["ok", "   "]])
def test_a_bad_prompt_gives_exactly_one_line_on_stderr(
    model: Path, prompts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["route", "--model", str(model), *prompts]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_route_errors_on_files(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "bad.jsonl": ('{"prompt": "ok"}\nnot json\n', "line 2 is not JSON"),
        "nocol.csv": ("text\nhello\n", "expected a 'prompt' column"),
        "empty.jsonl": ('{"prompt": ""}\n', "prompt 0"),
        "missing.jsonl": ('{"other": "x"}\n', "prompt 0: expected a str, got NoneType"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        capsys.readouterr()
        assert main(["route", "--model", str(model), "--file", str(path)]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert [line for line in err if line.startswith("tinydancer ")] == [err[-1]], (name, err)
        assert message in err[-1], (name, err)
    capsys.readouterr()
    assert main(["route", "--model", str(tmp_path / "absent.safetensors"), "hi"]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["route", "--model", str(model), "--file", str(write_prompts(tmp_path, ".txt")), "also"]) == 2
    assert "not both" in capsys.readouterr().err
