"""Model files: round trip, and every kind of bad file gives a ModelLoadError naming the problem."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from tinydancer import CompatModelConfig, ModelLoadError, load_compat_model, save_compat_model
from tinydancer.model import init_compat_params
from tinydancer.model.original_file import COMPAT_FORMAT


def write_raw(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None) -> Path:
    save_file(tensors, str(path), metadata=metadata)
    return path


def good_tensors(cfg: CompatModelConfig) -> dict[str, np.ndarray]:
    return dict(init_compat_params(cfg, 0)._asdict())


def meta(cfg: CompatModelConfig, fmt: str = COMPAT_FORMAT) -> dict[str, str]:
    config = {
        "input_dim": cfg.input_dim,
        "hidden_dim": cfg.hidden_dim,
        "output_dim": cfg.output_dim,
        "nu": cfg.nu,
        "zeta": cfg.zeta,
        "rank": cfg.rank,
    }
    return {"config": json.dumps(config), "format": fmt}


def test_round_trip_exact(tmp_path: Path) -> None:
    cfg = CompatModelConfig(hidden_dim=12, nu=0.7, zeta=1.3)
    params = init_compat_params(cfg, 5)
    save_compat_model(tmp_path / "m.safetensors", params, cfg)
    loaded, loaded_cfg = load_compat_model(tmp_path / "m.safetensors")
    assert loaded_cfg == cfg
    assert all(np.array_equal(a, b) and b.dtype == np.float32 for a, b in zip(params, loaded, strict=True))


def test_written_layout_is_the_originals(tmp_path: Path) -> None:
    cfg = CompatModelConfig()
    save_compat_model(tmp_path / "m.safetensors", init_compat_params(cfg, 0), cfg)
    raw = (tmp_path / "m.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header["__metadata__"]["format"] == "ruvector-tiny-dancer-fastgrnn-v1"
    assert json.loads(header["__metadata__"]["config"]) == {
        "input_dim": 5,
        "hidden_dim": 8,
        "output_dim": 1,
        "nu": 1.0,
        "zeta": 1.0,
        "rank": 4,
    }
    assert {k for k in header if k != "__metadata__"} == set(cfg.tensor_shapes())
    assert all(header[k]["dtype"] == "F32" for k in cfg.tensor_shapes())


CFG = CompatModelConfig()


def _missing(p: Path) -> Path:
    return p / "absent.safetensors"


def _truncated(p: Path) -> Path:
    f = write_raw(p / "t.safetensors", good_tensors(CFG), meta(CFG))
    f.write_bytes(f.read_bytes()[:-17])
    return f


def _random_bytes(p: Path) -> Path:
    f = p / "r.safetensors"
    f.write_bytes(np.random.default_rng(0).bytes(500))
    return f


def _tiny(p: Path) -> Path:
    f = p / "tiny.safetensors"
    f.write_bytes(b"\x01\x02")
    return f


def _huge_header(p: Path) -> Path:
    f = p / "h.safetensors"
    f.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    return f


def _wrong_format(p: Path) -> Path:
    return write_raw(p / "f.safetensors", good_tensors(CFG), meta(CFG, "something-else-v2"))


def _no_metadata(p: Path) -> Path:
    return write_raw(p / "n.safetensors", good_tensors(CFG), None)


def _wrong_shape(p: Path) -> Path:
    t = good_tensors(CFG)
    t["w_update"] = np.zeros((8, 6), np.float32)
    return write_raw(p / "s.safetensors", t, meta(CFG))


def _wrong_dtype(p: Path) -> Path:
    t = good_tensors(CFG)
    t["b_output"] = t["b_output"].astype(np.float64)
    return write_raw(p / "d.safetensors", t, meta(CFG))


def _non_finite(p: Path) -> Path:
    t = good_tensors(CFG)
    t["w_output"][0, 3] = np.nan
    return write_raw(p / "nan.safetensors", t, meta(CFG))


def _missing_tensor(p: Path) -> Path:
    t = good_tensors(CFG)
    del t["w_recurrent"]
    return write_raw(p / "mt.safetensors", t, meta(CFG))


def _bad_config(p: Path) -> Path:
    return write_raw(p / "c.safetensors", good_tensors(CFG), {"config": "{not json", "format": COMPAT_FORMAT})


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (_missing, "not found"),
        (_truncated, "not valid safetensors"),
        (_random_bytes, "not safetensors"),
        (_tiny, "truncated"),
        (_huge_header, "header"),
        (_wrong_format, "expected 'ruvector-tiny-dancer-fastgrnn-v1'"),
        (_no_metadata, "__metadata__"),
        (_wrong_shape, "'w_update'"),
        (_wrong_dtype, "'b_output'"),
        (_non_finite, "NaN"),
        (_missing_tensor, "expected exactly"),
        (_bad_config, "invalid config"),
    ],
)
def test_bad_files_raise_typed_errors(tmp_path: Path, make: object, fragment: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ModelLoadError, match=fragment) as info:
        load_compat_model(path)
    assert isinstance(info.value, ValueError)


def test_save_refuses_bad_tensors(tmp_path: Path) -> None:
    params = init_compat_params(CFG, 0)._replace(b_output=np.array([np.inf], np.float32))
    with pytest.raises(ModelLoadError, match="NaN or infinite"):
        save_compat_model(tmp_path / "x.safetensors", params, CFG)
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_config_numbers_too_large_for_a_float(tmp_path: Path) -> None:
    bad = json.dumps({"input_dim": 5, "hidden_dim": 8, "output_dim": 1, "nu": 10**400, "zeta": 1.0, "rank": 4})
    path = write_raw(tmp_path / "big.safetensors", good_tensors(CFG), {"config": bad, "format": COMPAT_FORMAT})
    with pytest.raises(ModelLoadError, match="invalid config"):
        load_compat_model(path)
