"""Features against a float64 numpy implementation of the original's formulas (reference §1)."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tinydancer.features import candidate_features, cosine_similarity, frequency, recency


def reference_cosine(q: np.ndarray, e: np.ndarray) -> np.ndarray:
    q64, e64 = q.astype(np.float64), e.astype(np.float64)
    out = []
    for row in e64:
        nq, nc = np.linalg.norm(q64), np.linalg.norm(row)
        if nq == 0 and nc == 0:
            out.append(1.0)
        elif nq == 0 or nc == 0:
            out.append(0.0)
        else:
            out.append(float(q64 @ row / (nq * nc)))
    return np.array(out)


floats = st.floats(-100, 100, allow_nan=False, width=32)


@given(
    hnp.arrays(np.float32, st.integers(1, 16).map(lambda d: (3, d)), elements=floats),
)
def test_cosine_matches_reference(block: np.ndarray) -> None:
    query, embeddings = block[0], block[1:]
    got = np.asarray(cosine_similarity(query, embeddings))
    np.testing.assert_allclose(got, reference_cosine(query, embeddings), atol=2e-6)
    assert np.all(got <= 1 + 1e-6) and np.all(got >= -1 - 1e-6)


def test_cosine_zero_vector_rules() -> None:
    zero, one = np.zeros(4, np.float32), np.ones(4, np.float32)
    assert np.asarray(cosine_similarity(zero, np.stack([zero, one]))).tolist() == [1.0, 0.0]
    assert np.asarray(cosine_similarity(one, np.stack([zero, -one]))).tolist() == [0.0, -1.0]


@given(st.floats(-1e9, 1e9, allow_nan=False))
def test_recency_matches_formula(age: float) -> None:
    got = float(recency(np.float32(age)))
    assert math.isclose(got, math.exp(-0.001 * max(0.0, float(np.float32(age)))), rel_tol=1e-5, abs_tol=1e-30)


@given(st.integers(0, 10**9))
def test_frequency_matches_formula(count: int) -> None:
    got = float(frequency(np.float32(count)))
    want = min(1.0, math.log(1 + float(np.float32(count))) / math.log(10001))
    assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-7)


def test_candidate_features_weights_and_columns() -> None:
    q = np.array([1.0, 0.0], np.float32)
    e = np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32)
    x = np.asarray(
        candidate_features(
            q,
            e,
            np.array([0.0, 693.147], np.float32),
            np.array([0.0, 10000.0], np.float32),
            np.array([1.0, 0.5], np.float32),
            np.array([1.0, 0.0], np.float32),
        )
    )
    np.testing.assert_allclose(x, [[0.4, 0.2, 0.0, 0.15, 0.1], [-0.4, 0.1, 0.15, 0.075, 0.0]], atol=1e-6)
    assert x.dtype == np.float32
