"""Features against a float64 numpy implementation of the original's formulas (reference §1).

The metadata feature compares JSON values as the original does, whatever Python type they arrive in
(numpy scalars from pandas, tuples, str/int/float subclasses).
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests._routers import NOW, strong_model
from tinydancer import Candidate, InvalidInputError, Router, RouterConfig, RoutingRequest
from tinydancer.model.candidate_features import candidate_features, cosine_similarity, frequency, recency
from tinydancer.routing.packing import json_equal, pack_request, validate_json_object


def reference_cosine(q: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Element-wise sums only: OpenBLAS's small dot kernels can raise a spurious FE_INVALID (numpy #24067)."""
    q64, e64 = q.astype(np.float64), e.astype(np.float64)
    out = []
    for row in e64:
        nq, nc = math.sqrt(np.sum(q64 * q64)), math.sqrt(np.sum(row * row))
        if nq == 0 and nc == 0:
            out.append(1.0)
        elif nq == 0 or nc == 0:
            out.append(0.0)
        else:
            out.append(float(np.sum(q64 * row)) / (nq * nc))
    return np.array(out)


def test_cosine_of_the_input_that_raised_a_spurious_blas_warning() -> None:
    """CI once failed here: numpy's matmul (OpenBLAS) flagged FE_INVALID on these finite inputs, once."""
    query = np.array([1e-5, -16.107458, -69.836098, 0.0, -45.246571], np.float32)
    embeddings = np.array(
        [[-0.0, 57.717213, 1.1754944e-38, 15.716953, 0.0], [18.599182, -93.020576, -45.626564, -15.078398, -0.0]],
        np.float32,
    )
    for _ in range(200):
        got = np.asarray(cosine_similarity(query, embeddings))
    np.testing.assert_allclose(got, reference_cosine(query, embeddings), atol=2e-6)


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


# --------------------------------------------------------------------------- metadata feature

#: Request metadata and candidate metadata with the JSON-type traps (2.0 != 2, 1 != true).
QUERY_META: dict[str, Any] = {"lang": "en", "tier": 2, "score": 0.5, "flag": True, "tags": ["a", 1, {"k": None}]}
CANDIDATE_META: tuple[dict[str, Any] | None, ...] = (
    dict(QUERY_META),
    {"lang": "en"},
    {"tier": 2, "flag": True},
    {"score": 0.5, "extra": "x"},
    {"tags": ["a", 1, {"k": None}]},
    {"lang": "fr", "tier": 2.0},
    {"flag": 1, "score": 1},
    {"tags": ["a", True, {"k": None}]},
    None,
    {},
)
#: Share of QUERY_META's 5 keys each candidate matches.
EXPECTED_MATCH = [1.0, 0.2, 0.4, 0.2, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0]


def numpy_valued(value: Any, floats: type = np.float64) -> Any:
    """The same JSON as numpy scalars (what pandas hands out), arrays as tuples, keys as np.str_."""
    if isinstance(value, dict):
        return {np.str_(k): numpy_valued(v, floats) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(numpy_valued(v, floats) for v in value)
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, int):
        return np.int64(value)
    if isinstance(value, float):
        return floats(value)
    if isinstance(value, str):
        return np.str_(value)
    return value


def str_and_float64(value: Any) -> Any:
    """Only np.str_ and np.float64 (subclasses of str and float, which the JSON encoder takes as they are)."""
    if isinstance(value, dict):
        return {k: str_and_float64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [str_and_float64(v) for v in value]
    if isinstance(value, str):
        return np.str_(value)
    if isinstance(value, float):
        return np.float64(value)
    return value


def plain(value: Any) -> Any:
    return value


def metadata_request(query_convert: Callable[[Any], Any], candidate_convert: Callable[[Any], Any]) -> RoutingRequest:
    rng = np.random.default_rng(7)
    query = rng.normal(size=8)
    n = len(CANDIDATE_META)
    # Similar embeddings and equal columns: confidences are close, so the metadata feature decides the order.
    embeddings = query + rng.normal(scale=0.3, size=(n, 8))
    return RoutingRequest(
        query,
        [
            Candidate(f"c{i}", embeddings[i], metadata=candidate_convert(meta), created_at=NOW - 60, access_count=5,
                      success_rate=0.5)
            for i, meta in enumerate(CANDIDATE_META)
        ],
        metadata=query_convert(QUERY_META),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("query_convert", "candidate_convert"),
    [
        (numpy_valued, numpy_valued),
        (numpy_valued, plain),
        (plain, numpy_valued),
        (lambda v: numpy_valued(v, np.float32), lambda v: numpy_valued(v, np.float32)),
        (str_and_float64, plain),  # always accepted, but once silently matched nothing
    ],
    ids=["both-numpy", "numpy-query", "numpy-candidates", "float32", "str-float64"],
)
def test_numpy_metadata_routes_like_plain_json(
    tmp_path: Path, query_convert: Callable[[Any], Any], candidate_convert: Callable[[Any], Any]
) -> None:
    """np.str_ / np.int64 / np.bool_ / np.float64 metadata gives exactly the plain-JSON confidences."""
    router = Router(RouterConfig(model_path=str(strong_model(tmp_path / "m.safetensors"))))
    packed = pack_request(metadata_request(query_convert, candidate_convert), now_s=NOW)
    np.testing.assert_array_equal(packed.metadata_match, np.float32(EXPECTED_MATCH))
    want = router.route(metadata_request(plain, plain), now=NOW)
    got = router.route(metadata_request(query_convert, candidate_convert), now=NOW)
    blind = router.route(metadata_request(lambda v: None, plain), now=NOW)
    assert got.candidate_ids == want.candidate_ids
    np.testing.assert_array_equal(got.confidence, want.confidence)
    np.testing.assert_array_equal(got.uncertainty, want.uncertainty)
    # The feature really moves the scores: without request metadata the matched candidates score otherwise.
    by_id = dict(zip(blind.candidate_ids, blind.confidence, strict=True))
    assert got.confidence[got.candidate_ids.index("c0")] != by_id["c0"]


class Tier(enum.IntEnum):
    GOLD = 1


class Lang(enum.StrEnum):
    EN = "en"


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ({"tier": np.int64(1)}, {"tier": 1}),
        ({"n": np.uint64(2**64 - 1), "m": np.int8(-3)}, {"n": 2**64 - 1, "m": -3}),
        ({"ok": np.bool_(True), "no": np.bool_(False)}, {"ok": True, "no": False}),
        ({"x": np.float32(0.5), "y": np.float64(2.0), "z": np.float16(1.0)}, {"x": 0.5, "y": 2.0, "z": 1.0}),
        ({np.str_("lang"): np.str_("en")}, {"lang": "en"}),
        ({"tier": Tier.GOLD, "lang": Lang.EN}, {"tier": 1, "lang": "en"}),
        ({"a": (np.int64(1), [np.str_("b")]), "o": OrderedDict(k=np.bool_(True))}, {"a": [1, ["b"]], "o": {"k": True}}),
        (OrderedDict(lang="en"), {"lang": "en"}),
        (
            {"lang": np.str_("en"), "flag": True, "n": 1, "x": 0.5, "none": None},
            {"lang": "en", "flag": True, "n": 1, "x": 0.5, "none": None},
        ),
    ],
)
def test_numpy_and_subclass_metadata_is_taken_as_its_json(raw: dict[str, Any], want: dict[str, Any]) -> None:
    """np.int64 (what pandas gives) and friends are accepted, and come back as plain JSON values."""
    got = validate_json_object("metadata", raw)
    assert got == want

    def types(value: Any) -> Any:
        if isinstance(value, dict):
            return dict, {k: (type(k), types(v)) for k, v in value.items()}
        if isinstance(value, list):
            return list, [types(v) for v in value]
        return type(value)

    assert types(got) == types(want)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"x": np.float32("nan")}, "Out of range float"),
        ({"x": np.float64("inf")}, "Out of range float"),
        ({"x": [np.float16("-inf")]}, "Out of range float"),
        ({"x": np.longdouble("1e400")}, "Out of range float"),
        ({"x": np.complex64(1)}, "complex64 is not JSON serializable"),
        ({"x": np.datetime64("2024-01-01")}, "datetime64 is not JSON serializable"),
        ({"x": np.array([1, 2])}, "ndarray is not JSON serializable"),
        ({"x": {np.int64(1): "a"}}, "keys must be"),
    ],
)
def test_numpy_values_without_a_json_form_are_rejected(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError, match="not a JSON object") as info:
        validate_json_object("metadata", raw)
    assert fragment in str(info.value)


class Huge(enum.IntEnum):
    BEYOND_FLOAT64 = 2**1024


@pytest.mark.parametrize(
    "raw",
    [{"x": 10**400}, {"x": [1, {"y": -(2**1024)}]}, {"x": Huge.BEYOND_FLOAT64}],
    ids=["int", "nested-negative", "int-subclass"],
)
def test_integers_beyond_float64_are_rejected(raw: dict[str, Any]) -> None:
    """serde_json reads such a number as a float64 and fails ("number out of range"); once an OverflowError here."""
    with pytest.raises(InvalidInputError, match=r"expected JSON numbers within float64 range .* integer of \d+ bits"):
        validate_json_object("metadata", raw)


def test_largest_integers_below_float64_overflow_are_kept() -> None:
    big = 2**1024 - 2**970 - 1  # rounds down to the largest float64: serde_json reads it as that float
    meta = validate_json_object("metadata", {"x": big})
    assert meta == {"x": big}
    assert json_equal(big, float(big)) and json_equal(2**64, 2.0**64) and not json_equal(2**64 - 1, 2.0**64)


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (np.str_("en"), "en", True),
        (np.str_("en"), np.str_("fr"), False),
        (np.int64(1), 1, True),
        (np.uint8(1), np.int64(1), True),
        (np.int64(1), 1.0, False),
        (np.int64(1), np.float64(1.0), False),
        (np.float64(1.5), 1.5, True),
        (np.float32(0.5), 0.5, True),
        (np.float32(0.1), 0.1, False),  # float32's 0.1 is another JSON number than float64's
        (np.bool_(True), True, True),
        (np.bool_(True), 1, False),
        (np.bool_(True), np.int64(1), False),
        (np.bool_(False), 0.0, False),
        (np.uint64(2**64 - 1), 2**64 - 1, True),
        (np.uint64(2**64 - 1), float(2**64), False),  # u64 max stays an integer in serde_json
        (2**64, float(2**64), True),
        (Tier.GOLD, 1, True),
        (Tier.GOLD, True, False),
        (Lang.EN, "en", True),
        ((1, "a"), [1, "a"], True),
        ((1, "a"), [1, "a", None], False),
        ({"a": (np.int64(1), np.str_("x"))}, {"a": [1, "x"]}, True),
        (OrderedDict(a=1, b=2), {"b": 2, "a": 1}, True),
        ({"a": np.float64(2.0)}, {"a": 2}, False),
        (None, np.str_(""), False),
        (1, 1.0, False),
        (True, 1, False),
        ([1, [2]], [1, [2]], True),
    ],
)
def test_json_equal_compares_the_serialised_json(a: Any, b: Any, equal: bool) -> None:
    assert json_equal(a, b) is equal
    assert json_equal(b, a) is equal
