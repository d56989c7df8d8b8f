"""Batch scoring (tinydancer.routing.batch) against the route kernel and a plain numpy model, across chunk edges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinydancer.errors import InvalidInputError
from tinydancer.model.candidate_features import candidate_features
from tinydancer.model.original import CompatModelConfig, compat_forward, init_compat_params
from tinydancer.routing.batch import (
    aligned_empty,
    embedding_chunk_rows,
    embeddings_kernel,
    features_kernel,
    score_embeddings,
    score_features,
)
from tinydancer.routing.kernel import DeviceModel, run_route_kernel

CONFIG = CompatModelConfig(nu=1.3, zeta=0.7)
PARAMS = init_compat_params(CONFIG, seed=5)
MODEL = DeviceModel.from_params(PARAMS, CONFIG)


def numpy_model(x: np.ndarray) -> np.ndarray:
    """The original's cell in float64 numpy (independent of the JAX code)."""
    p = {k: np.asarray(v, np.float64) for k, v in PARAMS._asdict().items()}
    update = 1 / (1 + np.exp(-CONFIG.nu * (x @ p["w_update"].T + p["b_update"])))
    candidate = np.tanh(CONFIG.zeta * (x @ p["w_candidate"].T + p["b_candidate"]))
    logit = ((1 - update) * candidate) @ p["w_output"].T + p["b_output"]
    out: np.ndarray = 1 / (1 + np.exp(-logit[:, 0]))
    return out


@settings(max_examples=12, deadline=None)
@given(n=st.integers(0, 40), chunk=st.sampled_from([3, 8, 64]), seed=st.integers(0, 2**16))
def test_score_features_matches_numpy_at_every_chunking(n: int, chunk: int, seed: int) -> None:
    x = np.random.default_rng(seed).uniform(-2, 2, size=(n, 5)).astype(np.float32)
    got = score_features(MODEL, x, chunk_size=chunk)
    assert got.shape == (n,) and got.dtype == np.float32
    np.testing.assert_allclose(got, numpy_model(x.astype(np.float64)), atol=2e-6)


@pytest.mark.parametrize(("n", "chunk"), [(1, None), (7, 4), (13, None)])  # few shapes: each one compiles
def test_score_embeddings_equals_the_route_kernel(n: int, chunk: int | None) -> None:
    rng = np.random.default_rng(n)
    query = rng.normal(size=12).astype(np.float32)
    embeddings = rng.normal(size=(n, 12)).astype(np.float32)
    columns = np.stack(
        [rng.uniform(-100, 5000, n), rng.integers(0, 20000, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n)], 1
    ).astype(np.float32)
    expected = run_route_kernel(MODEL, query, embeddings, columns, 0.85, 0.15)[0]
    got = score_embeddings(MODEL, query, embeddings, columns, chunk_size=chunk)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    x = np.asarray(candidate_features(query, embeddings, *columns.T), np.float64)
    np.testing.assert_allclose(got, numpy_model(x), atol=2e-6)


def test_default_columns_are_zero_and_last_partial_chunk_is_right() -> None:
    rng = np.random.default_rng(0)
    query, embeddings = rng.normal(size=6).astype(np.float32), rng.normal(size=(10, 6)).astype(np.float32)
    zeros = np.zeros((10, 4), np.float32)
    np.testing.assert_array_equal(
        score_embeddings(MODEL, query, embeddings, chunk_size=4), score_embeddings(MODEL, query, embeddings, zeros)
    )
    x = rng.uniform(size=(10, 5)).astype(np.float32)
    tail = np.asarray(compat_forward(PARAMS, x[8:], 1.3, 0.7))
    np.testing.assert_allclose(score_features(MODEL, x, chunk_size=4)[8:], tail, atol=1e-6)


def test_compiles_once_per_call_shape() -> None:
    x = np.random.default_rng(1).uniform(size=(300, 5)).astype(np.float32)
    score_features(MODEL, x, chunk_size=128)
    before = features_kernel(MODEL.config)._cache_size()
    for n in (300, 257, 129, 200):  # all run in 128-row calls
        score_features(MODEL, x[:n], chunk_size=128)
    assert features_kernel(MODEL.config)._cache_size() == before
    e = np.ones((70, 8), np.float32)
    score_embeddings(MODEL, np.ones(8, np.float32), e, chunk_size=32)
    before = embeddings_kernel(MODEL.config)._cache_size()
    score_embeddings(MODEL, np.ones(8, np.float32), e[:65], chunk_size=32)
    assert embeddings_kernel(MODEL.config)._cache_size() == before


@pytest.mark.parametrize("n", [64, 100])
def test_aligned_and_numpy_embeddings_score_the_same(n: int) -> None:
    """64-byte aligned input is read in place, numpy's own (16-byte aligned) is staged: same scores."""
    rng = np.random.default_rng(n)
    query = rng.normal(size=16).astype(np.float32)
    plain = aligned_empty((n * 16 + 4,))[4:].reshape(n, 16)  # 16 bytes off, like numpy's own arrays
    plain[...] = rng.normal(size=(n, 16))
    aligned = aligned_empty(plain.shape)
    aligned[...] = plain
    assert aligned.ctypes.data % 64 == 0 and plain.ctypes.data % 64 != 0
    columns = rng.uniform(size=(n, 4)).astype(np.float32)
    expected = run_route_kernel(MODEL, query, plain, columns, 0.85, 0.15)[0]
    for embeddings in (plain, aligned):
        np.testing.assert_allclose(
            score_embeddings(MODEL, query, embeddings, columns, chunk_size=32), expected, atol=1e-6
        )


def test_embedding_chunk_rows_is_a_power_of_two_of_about_twelve_mib() -> None:
    for dim in (1, 8, 384, 1000, 4096, 100_000):
        rows = embedding_chunk_rows(dim)
        assert rows >= 64 and rows & (rows - 1) == 0
        assert rows == 64 or rows * dim * 4 <= 12 * 1024 * 1024 < 2 * rows * dim * 4


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: score_features(MODEL, np.ones((3, 4), np.float32)), r"expected shape \[N, 5\], got \(3, 4\)"),
        (lambda: score_features(MODEL, np.ones((3, 5), np.float32), chunk_size=0), "chunk_size"),
        (lambda: score_embeddings(MODEL, np.ones(3), np.ones((2, 4))), r"got \(3,\) and \(2, 4\)"),
        (lambda: score_embeddings(MODEL, np.ones(3), np.ones((2, 3)), np.ones((2, 3))), r"expected shape \(2, 4\)"),
    ],
)
def test_bad_shapes_say_expected_and_got(call: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        call()  # type: ignore[operator]
