"""The model interface: both families flatten, unflatten, run forward, save and load the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from tinydancer.errors import InvalidInputError, ModelLoadError
from tinydancer.model import (
    CompatModelConfig,
    CompatParams,
    FastGRNNConfig,
    FastGRNNParams,
    ModelFamily,
    ServedFastGRNN,
    compat_forward,
    fastgrnn_predict,
    init_compat_params,
    init_fastgrnn_params,
    load_model,
)
from tinydancer.model.original import UNROLL_MAX_WEIGHTS
from tinydancer.model.safetensors_file import write_safetensors


def compat_case(seed: int) -> tuple[ModelFamily[Any], object, Callable[[np.ndarray], np.ndarray]]:
    config = CompatModelConfig(hidden_dim=6, nu=1.3, zeta=0.7)
    rng = np.random.default_rng(seed)
    params = CompatParams(*(rng.normal(0, 1.5, np.shape(t)).astype(np.float32) for t in init_compat_params(config, 0)))
    return config, params, lambda x: np.asarray(compat_forward(params, x, 1.3, 0.7))


def fastgrnn_case(seed: int, strong: bool = False, **arch: Any) -> tuple[ModelFamily[Any], object, Any]:
    spec = ServedFastGRNN(FastGRNNConfig(input_dim=5, hidden_dim=6, **arch), confidence_of_strong=strong)
    rng = np.random.default_rng(seed)
    base = init_fastgrnn_params(spec.fastgrnn, seed)
    params = FastGRNNParams(*(None if t is None else rng.normal(0, 1.5, np.shape(t)).astype(np.float32) for t in base))

    def reference(x: np.ndarray) -> np.ndarray:
        p = np.asarray(fastgrnn_predict(params, spec.fastgrnn, x))
        return 1 - p if strong else p

    return spec, params, reference


CASES = {
    "compat": lambda: compat_case(1),
    "fastgrnn": lambda: fastgrnn_case(2),
    "fastgrnn_low_rank_strong": lambda: fastgrnn_case(3, strong=True, w_rank=2, u_rank=3),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request: pytest.FixtureRequest) -> tuple[ModelFamily[Any], object, Any]:
    return CASES[request.param]()  # type: ignore[no-untyped-call]


def _leaves(params: object) -> list[np.ndarray]:
    return [np.asarray(t) for t in jax.tree_util.tree_leaves(params)]


def test_flatten_unflatten_round_trip(case: tuple[ModelFamily[Any], object, Any]) -> None:
    config, params, _ = case
    flat = config.flatten(params)
    assert flat.dtype == np.float32 and flat.shape == (config.param_count,)
    back = config.unflatten(flat)
    assert type(back) is type(params)
    assert [t is None for t in back] == [t is None for t in params]  # type: ignore[attr-defined]
    for got, want in zip(_leaves(back), _leaves(params), strict=True):
        assert got.shape == want.shape and np.array_equal(got, want)
    np.testing.assert_array_equal(config.flatten(back), flat)


def test_forward_matches_the_family_reference(case: tuple[ModelFamily[Any], object, Any]) -> None:
    config, params, reference = case
    x = np.random.default_rng(0).normal(0, 1, (33, 5)).astype(np.float32)
    flat = config.flatten(params)
    want = reference(x)
    assert want.std() > 0.01  # parameters that separate the rows
    np.testing.assert_allclose(np.asarray(config.forward(flat, x)), want, atol=1e-6)
    # Jitted with the config bound, as the route kernel does; the flat vector lives on the device.
    jitted = jax.jit(lambda f, rows: config.forward(f, rows))
    np.testing.assert_allclose(np.asarray(jitted(jax.numpy.asarray(flat), x)), want, atol=1e-6)


def test_save_then_load_gives_the_same_model(case: tuple[ModelFamily[Any], object, Any], tmp_path: Path) -> None:
    config, params, _ = case
    path = config.save(tmp_path / "m.safetensors", params)
    loaded, loaded_config = type(config).load(path)  # type: ignore[attr-defined]
    assert loaded_config == config
    np.testing.assert_array_equal(config.flatten(loaded), config.flatten(params))
    any_params, any_config = load_model(path)  # either family, by the file's format tag
    assert any_config == config and any_config.kind == config.kind
    np.testing.assert_array_equal(any_config.flatten(any_params), config.flatten(params))  # type: ignore[arg-type]


def test_wrong_shapes_say_expected_and_got(case: tuple[ModelFamily[Any], object, Any]) -> None:
    config, params, _ = case
    with pytest.raises(InvalidInputError, match=rf"flat: expected shape \({config.param_count},\), got \(3,\)"):
        config.unflatten(np.zeros(3, np.float32))
    first = params._fields[0]  # type: ignore[attr-defined]
    wrong = params._replace(**{first: np.zeros((2, 2), np.float32)})  # type: ignore[attr-defined]
    with pytest.raises(InvalidInputError, match=rf"params\.{first}: expected shape \[\d+, \d+\], got shape \[2, 2\]"):
        config.flatten(wrong)


def test_fastgrnn_flatten_rejects_a_missing_or_extra_factor() -> None:
    spec, params, _ = fastgrnn_case(4, w_rank=2)
    with pytest.raises(InvalidInputError, match=r"params\.w2: expected shape \[6, 2\], got none"):
        spec.flatten(params._replace(w2=None))  # type: ignore[attr-defined]
    full, full_params, _ = fastgrnn_case(4)
    with pytest.raises(InvalidInputError, match=r"params\.u2: expected no tensor, got shape \[6, 2\]"):
        full.flatten(full_params._replace(u2=np.zeros((6, 2), np.float32)))  # type: ignore[attr-defined]


def test_load_model_rejects_an_unknown_format(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "x.safetensors", {"w": np.zeros(2, np.float32)}, {"format": "other-v9"})
    with pytest.raises(ModelLoadError, match=r"x\.safetensors' has format 'other-v9', expected one of \["):
        load_model(path)


@pytest.mark.parametrize("hidden", [8, UNROLL_MAX_WEIGHTS // 5 + 1])
def test_one_forward_two_forms_same_result(hidden: int) -> None:
    """compat_forward(unroll=True) is elementwise for small cells, the matrix form above the limit."""
    config = CompatModelConfig(hidden_dim=hidden)
    rng = np.random.default_rng(hidden)
    params = CompatParams(*(rng.normal(0, 1, np.shape(t)).astype(np.float32) for t in init_compat_params(config, 0)))
    x = rng.normal(0, 1, (50, 5)).astype(np.float32)
    matrix, unrolled = (np.asarray(compat_forward(params, x, 1.0, 1.0, unroll=u)) for u in (False, True))
    np.testing.assert_allclose(unrolled, matrix, atol=1e-6)
    jaxpr = str(jax.make_jaxpr(lambda p, rows: compat_forward(p, rows, 1.0, 1.0, unroll=True))(params, x))
    assert ("dot_general" in jaxpr) == (hidden * 5 > UNROLL_MAX_WEIGHTS)
