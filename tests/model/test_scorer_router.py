"""Scorer routers: the file format, its errors, and the serving-side decisions against a numpy reference."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinydancer.errors import ConfigError, InvalidInputError, ModelLoadError
from tinydancer.model.calibration_map import Calibrator
from tinydancer.model.prompt_artifact import ConformalSpec, OperatingPoint
from tinydancer.model.safetensors_file import read_safetensors, write_safetensors
from tinydancer.model.scorer_router import (
    LengthScorer,
    ScorerRouterArtifact,
    ScorerScoring,
    ScorerState,
    load_scorer_router,
    save_router,
    save_scorer_router,
    serving_scorer,
    tensor_to_texts,
    texts_to_tensor,
)


class TableScorer:
    """A servable scorer with tensors of several dtypes: the score of a prompt is looked up by its length."""

    name = "table"

    def __init__(self, table: np.ndarray, offsets: np.ndarray, words: list[str]) -> None:
        self.table, self.offsets, self.words = table, offsets, words

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        return np.asarray([self.table[min(len(p), len(self.table) - 1)] for p in prompts], np.float64)

    def state(self) -> ScorerState:
        tensors = {"table": self.table, "offsets": self.offsets, "words": texts_to_tensor(self.words)}
        return ScorerState(tensors, {"note": "lookup"})

    @classmethod
    def from_state(cls, state: ScorerState) -> TableScorer:
        t = state.tensors
        return cls(t["table"], t["offsets"], tensor_to_texts(t["words"]))


class BrokenStateScorer(LengthScorer):
    """from_state always fails (a file naming it cannot be loaded)."""

    @classmethod
    def from_state(cls, state: ScorerState) -> BrokenStateScorer:
        raise ValueError("cannot rebuild")


def _policy_artifact(scorer: object) -> ScorerRouterArtifact:
    reference = {"p_strong": tuple(np.linspace(0, 1, 101)), "prompt_chars": tuple(np.linspace(1, 500, 101))}
    art = ScorerRouterArtifact(
        scorer,
        calibrator=Calibrator("platt", a=1.7, b=-0.4),
        pass_mark=0.6,
        conformal=ConformalSpec(0.62, 0.1),
        weak_model="small-1",
        strong_model="large-2",
        weak_price=0.2,
        strong_price=9.0,
        split={"kind": "random", "seed": 3, "data": "demo"},
        provenance={"rows": 10},
        reference=reference,
        target="strong_gain",
    )
    return art.with_operating_point("a", OperatingPoint(0.3, "strong_share", 0.3)).with_operating_point(
        "b", OperatingPoint(0.7), default=True
    )


def test_round_trip_keeps_scorer_and_policy(tmp_path: Path) -> None:
    table = np.linspace(0, 1, 50)
    scorer = TableScorer(table, np.arange(5, dtype=np.int64), ["alpha", "", "βeta gamma"])
    art = _policy_artifact(scorer)
    back = load_scorer_router(save_scorer_router(tmp_path / "r.safetensors", art))
    assert np.array_equal(back.scorer.table, table) and back.scorer.table.dtype == np.float64
    assert back.scorer.offsets.dtype == np.int64 and back.scorer.words == ["alpha", "", "βeta gamma"]
    for field in ("calibrator", "pass_mark", "conformal", "weak_model", "strong_model", "weak_price", "strong_price"):
        assert getattr(back, field) == getattr(art, field), field
    assert dict(back.split) == dict(art.split) and back.target == "strong_gain"
    assert back.default_operating_point == "b" and back.operating_point("a") == art.operating_point("a")
    assert dict(back.reference) == dict(art.reference)
    prompts = ["x" * n for n in (0, 3, 49, 200)]
    assert np.array_equal(ScorerScoring(back).score(prompts).p_raw, ScorerScoring(art).score(prompts).p_raw)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))))
def test_texts_tensor_round_trip(texts: list[str]) -> None:
    tensor = texts_to_tensor(texts)
    assert tensor.dtype == np.uint8 and tensor_to_texts(tensor) == texts


def test_texts_with_nul_or_surrogates_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="NUL"):
        texts_to_tensor(["a\x00b"])
    with pytest.raises(InvalidInputError, match="surrogate"):
        texts_to_tensor(["ok", "\ud800"])


def test_artifact_needs_a_servable_scorer() -> None:
    class NoState:
        name = "x"

        def score(self, prompts: Sequence[str]) -> np.ndarray:
            return np.zeros(len(prompts))

    with pytest.raises(ModelLoadError, match="ServableScorer"):
        ScorerRouterArtifact(NoState())
    with pytest.raises(ModelLoadError, match="pass_mark"):
        ScorerRouterArtifact(LengthScorer(), pass_mark=2.0)


def test_unsaveable_states_are_config_errors(tmp_path: Path) -> None:
    class Local(LengthScorer):
        pass

    with pytest.raises(ConfigError, match="local"):
        save_scorer_router(tmp_path / "a.safetensors", ScorerRouterArtifact(Local()))
    bad_dtype = TableScorer(np.zeros(3, np.complex64), np.zeros(1, np.int64), [])
    with pytest.raises(ConfigError, match="dtype"):
        save_scorer_router(tmp_path / "b.safetensors", ScorerRouterArtifact(bad_dtype))
    not_json = LengthScorer(scale=math.nan)
    with pytest.raises(ConfigError, match="JSON"):
        save_scorer_router(tmp_path / "c.safetensors", ScorerRouterArtifact(not_json))
    long_config = TableScorer(np.zeros(3), np.zeros(1, np.int64), [])
    long_config.state = lambda: ScorerState({}, {"vocabulary": ["word"] * 300_000})  # type: ignore[method-assign]
    with pytest.raises(ConfigError, match="texts_to_tensor"):
        save_scorer_router(tmp_path / "d.safetensors", ScorerRouterArtifact(long_config))
    assert not list(tmp_path.iterdir())  # nothing half-written


def _rewrite_scorer_entry(path: Path, **changes: object) -> None:
    file = read_safetensors(path)
    meta = dict(file.metadata or {})
    entry = json.loads(meta["scorer"])
    entry.update(changes)
    meta["scorer"] = json.dumps(entry)
    write_safetensors(path, {}, meta)


def test_load_errors_name_the_file_and_the_class(tmp_path: Path) -> None:
    path = save_scorer_router(tmp_path / "r.safetensors", ScorerRouterArtifact(LengthScorer()))
    _rewrite_scorer_entry(path, **{"class": "no_such_module_xyz:Scorer"})
    with pytest.raises(ModelLoadError, match=r"r\.safetensors.*no_such_module_xyz:Scorer.*cannot be imported"):
        load_scorer_router(path)
    _rewrite_scorer_entry(path, **{"class": "json:dumps"})
    with pytest.raises(ModelLoadError, match="not a class with a from_state"):
        load_scorer_router(path)
    broken = save_scorer_router(tmp_path / "b.safetensors", ScorerRouterArtifact(BrokenStateScorer()))
    with pytest.raises(ModelLoadError, match="from_state failed: ValueError: cannot rebuild"):
        load_scorer_router(broken)
    table = TableScorer(np.zeros(4), np.zeros(2, np.int64), ["a"])
    declared = save_scorer_router(tmp_path / "t.safetensors", ScorerRouterArtifact(table))
    _rewrite_scorer_entry(declared, tensors={"table": ["F64", [5]]})
    with pytest.raises(ModelLoadError, match="tensors"):
        load_scorer_router(declared)


def test_a_prompt_router_file_is_not_a_scorer_router(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "x.safetensors", {}, {"format": "tinydancer-prompt-router-v1"})
    with pytest.raises(ModelLoadError, match="expected 'tinydancer-scorer-router-v1'"):
        load_scorer_router(path)


def _reference(p_raw: np.ndarray, calibrator: Calibrator, threshold: float, q: float | None) -> dict[str, np.ndarray]:
    """The decisions in float64 numpy, as the module docstrings define them."""
    z = np.clip(p_raw, 1e-7, 1 - 1e-7)
    p = 1 / (1 + np.exp(-(calibrator.a * np.log(z / (1 - z)) + calibrator.b)))
    use = p >= threshold
    out = {"p_strong": p, "use_strong": use, "confidence": np.where(use, p, 1 - p)}
    if q is None:
        out["uncertainty"] = np.clip(1 - 2 * np.abs(p - 0.5), 0, 1)
    else:
        in_weak, in_strong = p <= q, 1 - p <= q
        out.update(in_set_weak=in_weak, in_set_strong=in_strong, uncertainty=(in_weak == in_strong).astype(float))
    return out


@pytest.mark.parametrize("conformal", [None, ConformalSpec(0.7, 0.1)])
def test_decisions_match_a_numpy_reference(conformal: ConformalSpec | None) -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 1000, 5000)  # more than one chunk of BATCH_BUCKETS[-1]
    prompts = ["x" * int(n) for n in lengths]
    calibrator = Calibrator("platt", a=1.3, b=-0.2)
    art = ScorerRouterArtifact(LengthScorer(1000.0), calibrator=calibrator, conformal=conformal)
    scores = ScorerScoring(art).score(prompts, threshold=0.45)
    expected = _reference(lengths / 1000.0, calibrator, 0.45, None if conformal is None else conformal.q)
    assert np.allclose(scores.p_raw, lengths / 1000.0, atol=1e-7)
    assert np.allclose(scores.p_strong, expected["p_strong"], atol=2e-6)
    near = np.abs(expected["p_strong"] - 0.45) < 1e-5  # float32 rounding may flip these
    assert np.array_equal(scores.use_strong[~near], expected["use_strong"][~near])
    assert np.allclose(scores.confidence, expected["confidence"], atol=2e-6)
    if conformal is not None:
        edge = (np.abs(expected["p_strong"] - conformal.q) < 1e-5) | (
            np.abs(1 - expected["p_strong"] - conformal.q) < 1e-5
        )
        assert np.array_equal(scores.in_set_weak[~edge], expected["in_set_weak"][~edge])
        assert np.array_equal(scores.uncertainty[~edge], expected["uncertainty"][~edge])
    else:
        assert np.allclose(scores.uncertainty, expected["uncertainty"], atol=4e-6)
        assert not scores.in_set_weak.any() and not scores.in_set_strong.any()


def test_uncertainty_modes_a_scorer_router_can_give() -> None:
    art = ScorerRouterArtifact(LengthScorer())
    assert ScorerScoring(art).uncertainty == "original"
    assert ScorerScoring(ScorerRouterArtifact(LengthScorer(), conformal=ConformalSpec(0.5, 0.1))).uncertainty == (
        "conformal"
    )
    for mode, match in (("mutual_information", "ensemble"), ("conformal", "no conformal"), ("bogus", "expected")):
        with pytest.raises(ConfigError, match=match):
            ScorerScoring(art, uncertainty=mode)


@pytest.mark.parametrize(
    ("output", "match"),
    [(np.zeros(3), r"shape \(2,\)"), (np.array([0.1, np.nan]), "finite"), (np.array([0.1, 1.5]), r"\[0, 1\]")],
)
def test_malformed_scorer_output_is_an_invalid_input_error(output: np.ndarray, match: str) -> None:
    class Bad(LengthScorer):
        def score(self, prompts: Sequence[str]) -> np.ndarray:
            return output

    with pytest.raises(InvalidInputError, match=match):
        ScorerScoring(ScorerRouterArtifact(Bad())).score(["a", "b"], threshold=0.5)


def test_nan_threshold_and_empty_batches() -> None:
    scoring = ScorerScoring(ScorerRouterArtifact(LengthScorer()))
    with pytest.raises(InvalidInputError, match="NaN"):
        scoring.score(["a"], threshold=math.nan)
    assert scoring.score([], threshold=0.5).p_strong.shape == (0,)


def test_save_router_and_serving_scorer_dispatch_on_the_family(tmp_path: Path) -> None:
    art = ScorerRouterArtifact(LengthScorer())
    assert load_scorer_router(save_router(tmp_path / "r.safetensors", art)).scorer.scale == 1000.0
    assert isinstance(serving_scorer(art), ScorerScoring)


def test_a_file_too_large_for_a_loader_is_refused_at_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tinydancer.model.scorer_router as module

    monkeypatch.setattr(module, "MAX_FILE_BYTES", 10_000)  # the loader's limit is 256 MiB; a small one for the test
    big = TableScorer(np.zeros(2_000), np.zeros(1, np.int64), [])
    with pytest.raises(ConfigError, match="over the 10,000 a loader reads"):
        save_scorer_router(tmp_path / "big.safetensors", ScorerRouterArtifact(big))
    assert not list(tmp_path.iterdir())
