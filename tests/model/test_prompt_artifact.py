"""The prompt-router artifact: what is saved loads back, legacy checkpoints load, every bad part is named."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from tests._prompt_routers import copy_of, trained, tuned
from tinydancer.errors import ModelLoadError
from tinydancer.model.compression import QuantizedFastGRNNParams
from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
from tinydancer.model.fastgrnn_file import FORMAT as FASTGRNN_FORMAT
from tinydancer.model.fastgrnn_file import PROMPT_ROUTER_FORMAT, load_fastgrnn, save_fastgrnn
from tinydancer.model.prompt_artifact import (
    ConformalSpec,
    OperatingPoint,
    PromptRouterArtifact,
    is_prompt_router_file,
    load_prompt_router,
    prompt_router_from_file,
    save_prompt_router,
)
from tinydancer.model.safetensors_file import read_safetensors
from tinydancer.model.text_features import FeaturizerConfig, NormStats, featurizer_metadata

REQUIRED = ("calibrator", "pass_mark", "models", "operating_points", "default_operating_point")


def leaves(params: Any) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(params)]


def assert_same(a: PromptRouterArtifact, b: PromptRouterArtifact) -> None:
    """Every field equal; parameters bit for bit."""
    assert type(a.params) is type(b.params)
    left, right = leaves(a.params), leaves(b.params)
    assert len(left) == len(right)
    for x, y in zip(left, right, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.norm.mean, b.norm.mean)
    np.testing.assert_array_equal(a.norm.std, b.norm.std)
    for name in ("model_config", "featurizer", "calibrator", "pass_mark", "conformal", "weak_model", "strong_model",
                 "weak_price", "strong_price", "default_operating_point", "members", "quantized"):  # fmt: skip
        assert getattr(a, name) == getattr(b, name), name
    assert dict(a.operating_points) == dict(b.operating_points)
    assert dict(a.split) == dict(b.split) and dict(a.provenance) == dict(b.provenance)


def with_points(artifact: PromptRouterArtifact) -> PromptRouterArtifact:
    art = artifact.with_operating_point(
        "never", OperatingPoint(math.inf, "fixed", source={"note": "by hand"}), default=False
    )
    art = art.with_operating_point(
        "guard", OperatingPoint(0.25, "weak_error", 0.2, 0.1, reached={"strong_share": 0.4, "weak_error": 0.18})
    )
    art = art.with_operating_point("always", OperatingPoint(-math.inf, "strong_share", 1.0), default=True)
    return art


@pytest.mark.parametrize(
    ("options", "members", "quantized"),
    [({}, 1, False), ({"quantize": True}, 1, True), ({"ensemble": 2}, 2, False)],
    ids=["float32", "int8", "ensemble"],
)
def test_round_trip(options: dict[str, Any], members: int, quantized: bool, tmp_path: Path) -> None:
    original = load_prompt_router(trained(**options))
    assert original.members == members and original.quantized is quantized
    assert isinstance(original.params, QuantizedFastGRNNParams) is quantized
    assert original.split["kind"] == "random" and original.provenance["rows"] == 14037
    art = with_points(original)
    path = save_prompt_router(tmp_path / "a.safetensors", art)
    back = load_prompt_router(path)
    assert_same(art, back)
    assert back.default_operating_point == "always"
    assert back.operating_point().threshold == -math.inf
    assert back.operating_point("never").threshold == math.inf
    assert back.operating_points["never"].source == {"note": "by hand"}
    assert back.operating_points["guard"] == OperatingPoint(
        0.25, "weak_error", 0.2, 0.1, reached={"strong_share": 0.4, "weak_error": 0.18}
    )
    # saving what was loaded writes the same artifact again
    again = load_prompt_router(save_prompt_router(tmp_path / "b.safetensors", back))
    assert_same(back, again)


def test_a_tuned_artifact_keeps_calibration_conformal_and_points(tmp_path: Path) -> None:
    art = load_prompt_router(tuned())
    assert art.calibrator.kind == "temperature" and art.conformal is not None
    assert set(art.operating_points) == {"share50", "quality95", "werr"} and art.default_operating_point == "quality95"
    back = load_prompt_router(save_prompt_router(tmp_path / "t.safetensors", art))
    assert_same(art, back)
    assert back.resolve_operating_point() == ("quality95", art.operating_points["quality95"])


def test_implicit_operating_point_without_any() -> None:
    art = load_prompt_router(trained())
    assert art.operating_points == {} and art.default_operating_point is None
    name, point = art.resolve_operating_point()
    assert (name, point.threshold) == ("p0.5", 0.5)


def small(dim: int = 64) -> tuple[Any, FastGRNNConfig, FeaturizerConfig, NormStats]:
    cfg = FastGRNNConfig(input_dim=dim, hidden_dim=4)
    stats = NormStats(np.linspace(-1, 1, dim).astype(np.float32), np.full(dim, 2.0, np.float32))
    return init_fastgrnn_params(cfg, 3), cfg, FeaturizerConfig(kind="wordllama_tokens", dim=dim, max_tokens=8), stats


def test_legacy_fastgrnn_checkpoint_with_a_featurizer_loads(tmp_path: Path) -> None:
    params, cfg, feat, stats = small()
    path = save_fastgrnn(tmp_path / "legacy.safetensors", params, cfg, metadata=featurizer_metadata(feat, stats))
    assert is_prompt_router_file(read_safetensors(path))
    art = load_prompt_router(path)
    assert art.featurizer == feat and art.model_config == cfg
    np.testing.assert_array_equal(art.norm.mean, stats.mean)
    for x, y in zip(leaves(art.params), leaves(params), strict=True):
        np.testing.assert_array_equal(x, y)
    assert art.calibrator.kind == "none" and art.conformal is None and art.pass_mark == 0.5
    assert (art.weak_model, art.strong_model) == ("weak", "strong")
    assert art.operating_points == {} and art.default_operating_point is None
    assert art.resolve_operating_point()[0] == "p0.5"


def test_legacy_checkpoint_keeps_the_entries_it_has(tmp_path: Path) -> None:
    params, cfg, feat, stats = small()
    meta = {**featurizer_metadata(feat, stats), "calibrator": json.dumps({"kind": "platt", "a": 2.0, "b": -1.0}),
            "pass_mark": "0.7"}  # fmt: skip
    art = load_prompt_router(save_fastgrnn(tmp_path / "legacy.safetensors", params, cfg, metadata=meta))
    assert (art.calibrator.kind, art.calibrator.a, art.calibrator.b, art.pass_mark) == ("platt", 2.0, -1.0, 0.7)


def test_legacy_checkpoint_without_norm_stats_is_refused(tmp_path: Path) -> None:
    params, cfg, feat, _ = small()
    path = save_fastgrnn(tmp_path / "legacy.safetensors", params, cfg, metadata=featurizer_metadata(feat, None))
    with pytest.raises(ModelLoadError, match="norm_stats"):
        load_prompt_router(path)


def test_candidate_feature_fastgrnn_is_refused_with_route_named(tmp_path: Path) -> None:
    cfg = FastGRNNConfig(input_dim=5, hidden_dim=4)
    path = save_fastgrnn(tmp_path / "candidates.safetensors", init_fastgrnn_params(cfg), cfg)
    assert not is_prompt_router_file(read_safetensors(path))
    with pytest.raises(ModelLoadError, match=r"route\(\)") as info:
        load_prompt_router(path)
    assert "candidate" in str(info.value) and str(path) in str(info.value)


def rewrite(path: Path, change: Any, file_format: str = PROMPT_ROUTER_FORMAT) -> Path:
    """Rewrite an artifact's metadata with ``change(meta)`` (tensors unchanged)."""
    params, cfg, meta = load_fastgrnn(path)
    change(meta)
    return save_fastgrnn(path, params, cfg, meta, file_format=file_format)


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    return copy_of(tuned(), tmp_path)


def test_the_shared_artifact_has_every_required_entry(artifact: Path) -> None:
    meta = load_fastgrnn(artifact)[2]
    assert set(REQUIRED) | {"featurizer", "norm_stats", "conformal", "split", "provenance"} <= set(meta)
    assert read_safetensors(artifact).metadata["format"] == PROMPT_ROUTER_FORMAT  # type: ignore[index]


@pytest.mark.parametrize("key", REQUIRED)
def test_each_missing_required_entry_is_named(artifact: Path, key: str) -> None:
    rewrite(artifact, lambda meta: meta.pop(key))
    with pytest.raises(ModelLoadError, match=f"has no '{key}' entry") as info:
        load_prompt_router(artifact)
    assert str(artifact) in str(info.value)


@pytest.mark.parametrize("key", ["conformal", "split", "provenance"])
def test_optional_entries_may_be_missing(artifact: Path, key: str) -> None:
    rewrite(artifact, lambda meta: meta.pop(key))
    art = load_prompt_router(artifact)
    assert {"conformal": art.conformal is None, "split": not art.split, "provenance": not art.provenance}[key]


@pytest.mark.parametrize("key", [*REQUIRED, "conformal", "split", "provenance"])
def test_invalid_json_is_named(artifact: Path, key: str) -> None:
    rewrite(artifact, lambda meta: meta.update({key: "{not json"}))
    with pytest.raises(ModelLoadError, match=f"invalid '{key}' entry: expected JSON"):
        load_prompt_router(artifact)


def edit_json(key: str, edit: Any) -> Any:
    def change(meta: dict[str, str]) -> None:
        value = json.loads(meta[key])
        meta[key] = json.dumps(edit(value))

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (edit_json("featurizer", lambda f: {**f, "dim": 128}), "featuriser dim 128 does not match"),
        (edit_json("norm_stats", lambda s: {"mean": s["mean"][:-1], "std": s["std"][:-1]}), "norm_stats"),
        (edit_json("norm_stats", lambda s: {**s, "std": [0.0] * len(s["std"])}), "positive standard deviations"),
        (edit_json("default_operating_point", lambda _: "nope"), "default_operating_point 'nope'"),
        (edit_json("operating_points", lambda p: {**p, "bad name!": p["share50"]}), "operating point name"),
        (edit_json("operating_points", lambda p: {**p, "x" * 65: p["share50"]}), "operating point name"),
        (edit_json("operating_points", lambda p: {"share50": {**p["share50"], "threshold": "nan"}}), "threshold"),
        (edit_json("operating_points", lambda p: {"share50": {**p["share50"], "target": "speed"}}), "target"),
        (edit_json("operating_points", lambda p: {"share50": {"target": "fixed"}}), "threshold"),
        (edit_json("operating_points", lambda p: ["share50"]), "invalid part"),
        (edit_json("calibrator", lambda c: {**c, "kind": "magic"}), "calibrator kind"),
        (edit_json("calibrator", lambda c: {"kind": "isotonic", "xs": [0.1, 0.2], "ys": [0.5]}), "isotonic"),
        (edit_json("pass_mark", lambda _: 0.0), "pass_mark"),
        (edit_json("pass_mark", lambda _: "high"), "invalid part"),
        (edit_json("conformal", lambda c: {**c, "q": 1.5}), "conformal q"),
        (edit_json("conformal", lambda c: {"q": c["q"]}), "alpha"),
        (edit_json("models", lambda m: {**m, "weak": ""}), "weak model name"),
        (edit_json("models", lambda m: {**m, "strong": "s" * 201}), "strong model name"),
        (edit_json("models", lambda m: {**m, "weak_price": -1.0}), "weak_price"),
        (edit_json("models", lambda m: [1, 2]), "invalid part"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_inconsistent_parts_are_named(artifact: Path, change: Any, message: str) -> None:
    rewrite(artifact, change)
    with pytest.raises(ModelLoadError, match=message) as info:
        load_prompt_router(artifact)
    assert str(artifact) in str(info.value)


def test_errors_of_a_file_read_whole_name_the_file(artifact: Path) -> None:
    rewrite(artifact, lambda meta: meta.pop("models"))
    file = read_safetensors(artifact, "prompt router")
    with pytest.raises(ModelLoadError, match=r"^prompt router '.*' has no 'models' entry"):
        prompt_router_from_file(file)


def test_another_format_is_refused(tmp_path: Path) -> None:
    params, cfg, feat, stats = small()
    path = save_fastgrnn(
        tmp_path / "other.safetensors", params, cfg, featurizer_metadata(feat, stats), file_format="something-v9"
    )
    assert not is_prompt_router_file(read_safetensors(path))
    with pytest.raises(ModelLoadError):
        load_prompt_router(path)


def test_missing_file_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError):
        load_prompt_router(tmp_path / "absent.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError):
        load_prompt_router(tmp_path / "junk.safetensors")


def test_constructor_checks() -> None:
    params, cfg, feat, stats = small()
    with pytest.raises(ModelLoadError, match="does not match"):
        PromptRouterArtifact(params, cfg, FeaturizerConfig(dim=128), stats)
    art = PromptRouterArtifact(params, cfg, feat, stats, conformal=ConformalSpec(0.7, 0.1))
    with pytest.raises(ModelLoadError, match="default_operating_point"):
        PromptRouterArtifact(params, cfg, feat, stats, default_operating_point="x")
    from tinydancer.errors import ConfigError

    with pytest.raises(ConfigError):
        art.with_operating_point("no spaces", OperatingPoint(0.5))
    with pytest.raises(ConfigError):
        art.resolve_operating_point("absent")
    assert art.conformal == (0.7, 0.1) and art.conformal.q == 0.7


def test_legacy_format_with_prompt_metadata_still_loads_by_format(artifact: Path) -> None:
    """A tinydancer-fastgrnn-v1 file with the new entries too: a featuriser makes it a prompt router."""
    rewrite(artifact, lambda meta: None, file_format=FASTGRNN_FORMAT)
    art = load_prompt_router(artifact)
    assert art.default_operating_point == "quality95" and art.conformal is not None
