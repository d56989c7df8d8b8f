"""The small-request paths (issue 16, item 2) give exactly what the general paths give."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinydancer.model.original import CompatModelConfig, init_compat_params
from tinydancer.routing.kernel import ONE_BUFFER_MAX_BUCKET, DeviceModel, _pad_rows, bucket_size, run_route_kernel
from tinydancer.routing.packing import F32_MAX, SMALL_BATCH, _columns_ok, _small_table

MODEL = DeviceModel.from_params(init_compat_params(CompatModelConfig(), 4), CompatModelConfig())


def vectorised_table(now_s: float, created: np.ndarray, access: np.ndarray, success: np.ndarray) -> np.ndarray:
    """pack_request's table for more than SMALL_BATCH candidates (metadata column 0)."""
    table = np.empty((len(created), 4), np.float32)
    table[:, 0] = np.maximum(np.minimum(now_s - created, F32_MAX), -F32_MAX)
    table[:, 1] = np.minimum(access, F32_MAX)
    table[:, 2] = success
    table[:, 3] = 0.0
    return table


def test_small_table_equals_the_vectorised_one_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    now = 1_700_000_000.0
    created = np.trunc(np.concatenate([now - rng.uniform(-1e6, 1e9, 5), [-1e300, 1e300, now]]))
    access = np.concatenate([rng.integers(0, 10**6, 5).astype(float), [1e300, 0.0, 3.0]])
    success = np.concatenate([rng.uniform(0, 1, 5), [0.0, 1.0, 0.1]])
    small = _small_table(now, created.tolist(), access.tolist(), success.tolist(), [0.0] * len(created))
    np.testing.assert_array_equal(small, vectorised_table(now, created, access, success))
    assert _small_table(now, [], [], [], []).shape == (0, 4)


@pytest.mark.parametrize(
    ("created", "access", "success"),
    [
        (1.0, 2.0, 0.5),
        (math.nan, 2.0, 0.5),
        (math.inf, 2.0, 0.5),
        (1.0, -1.0, 0.5),
        (1.0, 2.5, 0.5),
        (1.0, math.inf, 0.5),
        (1.0, math.nan, 0.5),
        (1.0, 2.0, 1.5),
        (1.0, 2.0, -0.1),
        (1.0, 2.0, math.nan),
    ],
)
def test_small_column_checks_agree_with_the_vectorised_ones(created: float, access: float, success: float) -> None:
    def columns(n: int) -> tuple[np.ndarray, ...]:
        return np.full(n, created), np.full(n, access), np.full(n, success)

    assert _columns_ok(*columns(1)) == _columns_ok(*columns(SMALL_BATCH + 1))


@pytest.mark.parametrize("n", [1, 5, 10, ONE_BUFFER_MAX_BUCKET, ONE_BUFFER_MAX_BUCKET + 1])
def test_one_buffer_kernel_call_equals_separate_embeddings(n: int) -> None:
    rng = np.random.default_rng(n)
    dim = 24
    query = rng.normal(size=dim).astype(np.float32)
    embeddings = rng.normal(size=(n, dim)).astype(np.float32)
    columns = np.stack([rng.uniform(0, 5000, n), rng.integers(0, 99, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n)], 1)
    got = run_route_kernel(MODEL, query, embeddings, columns.astype(np.float32), 0.6, 0.9)
    size = bucket_size(n)
    small = np.zeros(dim + 2 + 4 * size, np.float32)
    small[:dim], small[dim : dim + 2] = query, (0.6, 0.9)
    small[dim + 2 : dim + 2 + 4 * n] = columns.astype(np.float32).reshape(-1)
    padded = np.zeros((size, dim), np.float32)
    padded[:n] = embeddings
    reference = np.asarray(MODEL.kernel(MODEL.flat, padded, small))[:, :n]
    np.testing.assert_array_equal(got.confidence, reference[0])
    np.testing.assert_array_equal(got.uncertainty, reference[1])
    np.testing.assert_array_equal(got.use_lightweight, reference[2] > 0.5)


def test_pad_rows_reads_a_leading_buffer_in_place() -> None:
    buffer = np.zeros((8, 3), np.float32)
    rows = buffer[:5]
    assert _pad_rows(rows, 8) is buffer
    assert _pad_rows(buffer[1:6], 8) is not buffer  # not the buffer's leading rows: copied, zero-padded
    copied = _pad_rows(np.ones((5, 3), np.float32), 8)
    assert copied.shape == (8, 3) and copied[5:].sum() == 0
