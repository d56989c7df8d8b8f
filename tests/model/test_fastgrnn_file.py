"""Model files of both families: one read per load, shapes from the config, atomic saves, typed errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

import tinydancer.model.fastgrnn as fastgrnn_module
import tinydancer.model.fastgrnn_file as fastgrnn_file
from tinydancer.errors import ModelLoadError
from tinydancer.model import (
    CompatModelConfig,
    FastGRNNConfig,
    ServedFastGRNN,
    init_compat_params,
    init_fastgrnn_params,
    load_fastgrnn,
    quantize_params,
    save_fastgrnn,
)
from tinydancer.model import safetensors_file as st_file

CONFIG = FastGRNNConfig(input_dim=5, hidden_dim=4, u_rank=2)


def checkpoint(path: Path, config: FastGRNNConfig = CONFIG, seed: int = 0) -> Path:
    return save_fastgrnn(path, init_fastgrnn_params(config, seed), config, {"note": f"seed {seed}"})


def test_load_opens_the_file_once_and_builds_no_random_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = checkpoint(tmp_path / "m.safetensors")
    opened: list[str] = []
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(self))
        return real_open(self, *args, **kwargs)

    def no_init(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("loading a checkpoint must not build random parameters")

    monkeypatch.setattr(Path, "open", counting_open)
    monkeypatch.setattr(fastgrnn_module, "init_fastgrnn_params", no_init)
    monkeypatch.setattr("safetensors.numpy.load_file", no_init)  # no second read by path either
    params, config, extra = load_fastgrnn(path)
    assert opened == [str(path)]
    assert config == CONFIG and extra == {"note": "seed 0"}
    assert params.u2 is not None and params.u2.shape == (4, 2) and params.w2 is None


def test_a_file_replaced_during_load_is_seen_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The header and the tensors come from the same read: replacing the file meanwhile changes nothing."""
    path = checkpoint(tmp_path / "m.safetensors", seed=1)
    other = FastGRNNConfig(input_dim=5, hidden_dim=7)
    replacement = checkpoint(tmp_path / "other.safetensors", other, seed=2)
    real_read_tensors = fastgrnn_file.read_tensors

    def replace_then_read(file: Any, expected: Any) -> Any:
        os.replace(replacement, path)  # a hot reload's writer, between reading the header and the tensors
        return real_read_tensors(file, expected)

    monkeypatch.setattr(fastgrnn_file, "read_tensors", replace_then_read)
    params, config, extra = load_fastgrnn(path)
    assert config == CONFIG and extra == {"note": "seed 1"}
    np.testing.assert_array_equal(np.asarray(params.u1), np.asarray(init_fastgrnn_params(CONFIG, 1).u1))
    monkeypatch.undo()
    assert load_fastgrnn(path)[1] == other  # the next load sees the new file


def _save_compat(path: Path, seed: int) -> None:
    CompatModelConfig().save(path, init_compat_params(CompatModelConfig(), seed))


def _save_fastgrnn(path: Path, seed: int) -> None:
    checkpoint(path, seed=seed)


def _save_served(path: Path, seed: int) -> None:
    ServedFastGRNN(CONFIG, confidence_of_strong=True).save(path, init_fastgrnn_params(CONFIG, seed))


@pytest.mark.parametrize("save", [_save_compat, _save_fastgrnn, _save_served], ids=["compat", "fastgrnn", "served"])
def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, save: Any
) -> None:
    path = tmp_path / "m.safetensors"
    save(path, 1)
    before = path.read_bytes()
    written: list[int] = []

    def crash(fd: int) -> None:  # the new bytes are in the temporary file, not yet renamed
        written.append(os.fstat(fd).st_size)
        raise OSError("disk full")

    monkeypatch.setattr(st_file.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        save(path, 2)
    assert written and written[0] > 0  # it got as far as writing the new file
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    monkeypatch.undo()
    save(path, 2)
    assert path.read_bytes() != before and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_a_save_keeps_the_replaced_files_permissions(tmp_path: Path) -> None:
    path = checkpoint(tmp_path / "m.safetensors")
    path.chmod(0o640)
    checkpoint(path, seed=3)
    assert path.stat().st_mode & 0o777 == 0o640


def _raw(path: Path, tensors: dict[str, np.ndarray], **metadata: str) -> Path:
    meta = {"format": fastgrnn_file.FORMAT, "config": json.dumps({"input_dim": 5, "hidden_dim": 4}), **metadata}
    save_file(tensors, str(path), metadata=meta)
    return path


def _good() -> dict[str, np.ndarray]:
    params = init_fastgrnn_params(FastGRNNConfig(input_dim=5, hidden_dim=4))
    present = {name: t for name, t in params._asdict().items() if t is not None}
    return {name: np.asarray(t, np.float32).reshape(np.shape(t) or (1,)) for name, t in present.items()}


def _tiny(p: Path) -> Path:
    (p / "t.safetensors").write_bytes(b"abc")
    return p / "t.safetensors"


def _truncated(p: Path) -> Path:
    (p / "t.safetensors").write_bytes(checkpoint(p / "good.safetensors").read_bytes()[:-9])
    return p / "t.safetensors"


def _int8_without_a_scale(p: Path) -> Path:
    from safetensors.numpy import load_file

    good = save_fastgrnn(p / "q.safetensors", quantize_params(init_fastgrnn_params(CONFIG)), CONFIG)
    tensors = {k: v for k, v in load_file(str(good)).items() if k != "u1.scale"}
    metadata = st_file.read_safetensors(good).metadata
    save_file(tensors, str(good), metadata=metadata)
    return good


BAD: dict[str, tuple[Any, str]] = {
    "missing": (lambda p: p / "absent.safetensors", r"FastGRNN checkpoint not found: no such file '.*absent"),
    "tiny": (_tiny, r"is not a readable safetensors file: 3 bytes, truncated"),
    "truncated": (_truncated, "is not valid safetensors"),
    "other_format": (lambda p: _raw(p / "f.safetensors", _good(), format="x-v2"), "has format 'x-v2', expected format"),
    "bad_config": (lambda p: _raw(p / "c.safetensors", _good(), config="{"), "invalid FastGRNN config"),
    "extra_tensor": (
        lambda p: _raw(p / "e.safetensors", {**_good(), "w9": np.zeros(1, np.float32)}),
        r"has tensors \[.*'w9'.*\], expected exactly",
    ),
    "wrong_dtype": (
        lambda p: _raw(p / "d.safetensors", {**_good(), "b_z": np.zeros(4, np.float64)}),
        r"tensor 'b_z' expected shape \[4\] and dtype F32, got F64 \[4\]",
    ),
    "wrong_shape": (
        lambda p: _raw(p / "s.safetensors", {**_good(), "u1": np.zeros((4, 3), np.float32)}),
        r"tensor 'u1' expected shape \[4, 4\] and dtype F32, got F32 \[4, 3\]",
    ),
    "nan": (
        lambda p: _raw(p / "n.safetensors", {**_good(), "head_w": np.full(4, np.nan, np.float32)}),
        "tensor 'head_w' holds NaN",
    ),
    "int8_without_a_scale": (_int8_without_a_scale, r"expected exactly \[.*'u1.scale'"),
}


@pytest.mark.parametrize(("make", "fragment"), list(BAD.values()), ids=list(BAD))
def test_bad_checkpoints_raise_errors_naming_the_file(tmp_path: Path, make: Any, fragment: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ModelLoadError, match=fragment) as info:
        load_fastgrnn(path)
    assert str(path) in str(info.value)


def test_int8_checkpoint_shapes_come_from_the_config(tmp_path: Path) -> None:
    config = FastGRNNConfig(input_dim=5, hidden_dim=6, w_rank=2)
    path = save_fastgrnn(tmp_path / "q.safetensors", quantize_params(init_fastgrnn_params(config, 4)), config)
    params, loaded, _ = load_fastgrnn(path)
    assert loaded == config
    assert params.w2.values.shape == (6, 2) and params.w2.scale.shape == () and params.head_b.shape == ()
