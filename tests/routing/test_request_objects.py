"""Requests built from Candidate objects and from arrays: same columns, same values, same errors (issue 16)."""

from __future__ import annotations

import dataclasses
import pickle
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from tinydancer.errors import InvalidInputError
from tinydancer.routing import Candidate, RoutingRequest
from tinydancer.routing.packing import (
    _embedding_rows,
    _flat_plain,
    _metadata_column,
    _validate_in_full,
    metadata_match,
    pack_request,
    validate_json_object,
)

NOW = 1_700_000_000.0
D = 4


def both(
    rows: Any,
    ids: list[Any] | None = None,
    created_at: list[Any] | None = None,
    access_count: list[Any] | None = None,
    success_rate: list[Any] | None = None,
    metadata: list[Any] | None = None,
    query_metadata: Any = None,
) -> tuple[RoutingRequest, RoutingRequest]:
    """The same candidates as a Candidate-object request and as a from_arrays request."""
    n = len(rows)
    ids = [f"c{i}" for i in range(n)] if ids is None else ids
    cands = [
        Candidate(
            id=ids[i],
            embedding=rows[i],
            metadata=None if metadata is None else metadata[i],
            created_at=None if created_at is None else created_at[i],
            access_count=0 if access_count is None else access_count[i],
            success_rate=0.0 if success_rate is None else success_rate[i],
        )
        for i in range(n)
    ]
    objects = RoutingRequest(query_embedding=np.ones(D), candidates=cands, metadata=query_metadata)
    arrays = RoutingRequest.from_arrays(
        np.ones(D),
        rows,
        ids=ids,
        created_at=created_at,
        access_count=access_count,
        success_rate=success_rate,
        metadata=query_metadata,
        candidate_metadata=metadata,
    )
    return objects, arrays


GOOD = [np.ones(D), np.arange(D, dtype=np.float32)]
NESTED_TOO_DEEP: dict[str, Any] = {}
_node = NESTED_TOO_DEEP
for _ in range(70):
    _node["k"] = {}
    _node = _node["k"]

BAD: list[tuple[str, dict[str, Any]]] = [
    ("dim mismatch, every row", {"rows": np.ones((2, 3))}),
    ("dim mismatch, one row", {"rows": [np.ones(D), np.ones(3)]}),
    ("2-D row", {"rows": [np.ones(D), np.ones((2, 2))]}),
    ("scalar rows", {"rows": np.ones(2)}),
    ("string row", {"rows": [np.ones(D), "abcd"]}),
    ("string matrix", {"rows": np.full((2, D), "x")}),
    ("complex rows", {"rows": np.ones((2, D), complex)}),
    ("object row", {"rows": [np.ones(D), [1, 2, object(), 4]]}),
    ("nan row", {"rows": [np.ones(D), [1.0, np.nan, 0, 0]]}),
    ("inf row", {"rows": np.array([[1.0, 0, 0, 0], [np.inf, 0, 0, 0]])}),
    ("beyond float32", {"rows": [np.ones(D), np.full(D, 1e39)]}),
    ("norm too large", {"rows": [np.ones(D), np.full(D, 1e19, np.float32)]}),
    ("duplicate ids", {"rows": GOOD, "ids": ["a", "a"]}),
    ("non-str id", {"rows": GOOD, "ids": ["a", 3]}),
    ("nan created_at", {"rows": GOOD, "created_at": [NOW, float("nan")]}),
    ("string created_at", {"rows": GOOD, "created_at": [NOW, "yesterday"]}),
    ("negative access_count", {"rows": GOOD, "access_count": [1, -1]}),
    ("fractional access_count", {"rows": GOOD, "access_count": [1.5, 1]}),
    ("None access_count", {"rows": GOOD, "access_count": [1, None]}),
    ("success_rate above 1", {"rows": GOOD, "success_rate": [0.5, 1.2]}),
    ("nan success_rate", {"rows": GOOD, "success_rate": [float("nan"), 0.5]}),
    ("metadata nan", {"rows": GOOD, "metadata": [None, {"x": float("nan")}]}),
    ("metadata numpy inf", {"rows": GOOD, "metadata": [{"x": np.float32("inf")}, None]}),
    ("metadata set", {"rows": GOOD, "metadata": [{"x": {1}}, None]}),
    ("metadata int key", {"rows": GOOD, "metadata": [{"a": 1}, {1: "x"}]}),
    ("metadata list", {"rows": GOOD, "metadata": [{"a": 1}, [1, 2]]}),
    ("metadata array", {"rows": GOOD, "metadata": [np.array([1, 2]), None]}),  # never compared with None
    ("metadata too deep", {"rows": GOOD, "metadata": [NESTED_TOO_DEEP, None]}),
    ("metadata int beyond float64", {"rows": GOOD, "metadata": [{"n": 10**400}, None]}),
    ("query metadata bad", {"rows": GOOD, "query_metadata": {"x": float("inf")}}),
]


@pytest.mark.parametrize("kwargs", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_same_bad_input_same_error_both_ways(kwargs: dict[str, Any]) -> None:
    objects, arrays = both(**kwargs)
    with pytest.raises(InvalidInputError) as from_objects:
        pack_request(objects, NOW)
    with pytest.raises(InvalidInputError) as from_arrays:
        pack_request(arrays, NOW)
    assert type(from_objects.value) is type(from_arrays.value)
    assert str(from_objects.value) == str(from_arrays.value)


def _one(kwargs: dict[str, Any], index: int) -> dict[str, Any]:
    """The request of ``kwargs`` cut down to its candidate ``index`` (query metadata kept)."""
    return {k: v if k == "query_metadata" else v[index : index + 1] for k, v in kwargs.items()}


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("kwargs", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_one_candidate_requests_have_the_same_outcome_both_ways(kwargs: dict[str, Any], index: int) -> None:
    """A one-candidate object request reads its fields directly (no comprehensions): same error or same packing."""
    objects, arrays = both(**_one(kwargs, index))
    try:
        packed = pack_request(arrays, NOW)
    except InvalidInputError as expected:
        with pytest.raises(InvalidInputError) as got:
            pack_request(objects, NOW)
        assert str(got.value) == str(expected)
    else:
        mine = pack_request(objects, NOW)
        assert mine.ids == packed.ids and np.array_equal(mine.columns, packed.columns)
        assert np.array_equal(mine.embeddings, packed.embeddings)


def test_candidates_in_any_sequence_pack_like_a_list() -> None:
    class Candidates(Sequence[Candidate]):
        def __init__(self, items: list[Candidate]) -> None:
            self.items = items

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, i: Any) -> Any:
            return self.items[i]

    for n in (1, 3):
        as_list = both(rows=[np.arange(D) + i for i in range(n)], access_count=list(range(n)))[0]
        custom = RoutingRequest(as_list.query_embedding, Candidates(list(as_list.candidates)))
        a, b = pack_request(custom, NOW), pack_request(as_list, NOW)
        assert a.ids == b.ids and np.array_equal(a.columns, b.columns) and np.array_equal(a.embeddings, b.embeddings)
    with pytest.raises(InvalidInputError, match="expected a sequence of Candidate"):
        pack_request(RoutingRequest(np.ones(D), 5), NOW)  # type: ignore[arg-type]


def test_bad_row_error_names_the_first_bad_candidate() -> None:
    objects, _ = both([np.ones(D), np.ones(3), np.ones(2)])
    with pytest.raises(InvalidInputError, match=r"^Vector dimension mismatch: query has 4, candidate 'c1' has 3$"):
        pack_request(objects, NOW)
    objects, _ = both([np.ones(D), "abcd"])
    with pytest.raises(InvalidInputError, match=r"candidate 'c1' embedding: expected numbers, got str of dtype <U4"):
        pack_request(objects, NOW)


def test_candidate_metadata_of_wrong_length_is_a_typed_error() -> None:
    req = RoutingRequest.from_arrays(np.ones(D), np.ones((2, D)), candidate_metadata=[None])
    with pytest.raises(InvalidInputError, match=r"candidate_metadata: expected 2 entries \(one per candidate\), got 1"):
        pack_request(req, NOW)


META_VALUES: list[Any] = [
    "en", "de", "", 1, 2, 0, -1, 1.0, 2.5, -0.0, True, False, None, 2**63, 2**64, -(2**63) - 1, 2**70, 2.0**70,
    1e300, [1, 2], [1.0, 2], (1, 2), {"a": 1}, {"a": [1]}, OrderedDict(a=1), np.str_("en"), np.int64(1),
    np.uint64(2**64 - 1), np.float32(2.5), np.float64(1.0), np.bool_(True), [np.int8(1), 2],
]  # fmt: skip


def random_metadata(rng: np.random.Generator, n: int) -> list[Any]:
    keys = ["lang", "tier", "x", "y"]
    out: list[Any] = []
    for _ in range(n):
        if rng.random() < 0.1:
            out.append(None)
            continue
        picked = rng.choice(len(keys), size=int(rng.integers(0, len(keys) + 1)), replace=False)
        out.append({keys[k]: META_VALUES[int(rng.integers(len(META_VALUES)))] for k in picked})
    return out


@pytest.mark.parametrize("seed", range(6))
def test_metadata_column_equals_per_candidate_validate_and_match(seed: int) -> None:
    rng = np.random.default_rng(seed)
    query = validate_json_object("request metadata", random_metadata(rng, 1)[0])
    metas = random_metadata(rng, 300)
    ids = tuple(f"c{i}" for i in range(len(metas)))
    expected = [metadata_match(query, validate_json_object("m", m)) for m in metas]
    got = _metadata_column(query, metas, ids)
    assert got == expected
    assert [type(v) for v in got] == [float] * len(metas)
    assert any(0 < v < 1 for v in expected) or not query  # the data exercise partial matches


def test_flat_plain_accepts_only_what_validation_returns_unchanged() -> None:
    for value in META_VALUES:
        meta = {"k": value, "j": "x"}
        if _flat_plain(meta):
            checked = _validate_in_full("m", meta)  # what validate_json_object did before its flat shortcut
            assert checked == meta and checked is not None
            assert all(type(checked[k]) is type(meta[k]) for k in meta)
    assert _flat_plain({"a": "x", "b": 1, "c": 2.5, "d": True, "e": None, "f": 2**64 - 1})
    rejected: list[Any] = [
        {"a": float("nan")}, {"a": float("inf")}, {"a": 2**64}, {"a": -(2**63) - 1}, {"a": np.int64(1)},
        {"a": [1]}, {"a": {}}, {1: "x"}, OrderedDict(a=1), [("a", 1)], {"a": np.str_("x")},
    ]  # fmt: skip
    assert not any(_flat_plain(m) for m in rejected)


def test_objects_and_arrays_pack_to_identical_columns() -> None:
    rng = np.random.default_rng(0)
    n = 50
    rows: list[Any] = [rng.normal(size=D) for _ in range(n)]
    rows[3] = rows[3].astype(np.float32)  # mixed row dtypes stack through float64, exactly
    rows[4] = [1, 2, 3, 4]
    kwargs: dict[str, Any] = {
        "rows": rows,
        "created_at": [None if i % 7 == 0 else NOW - i * 10.5 for i in range(n)],
        "access_count": [int(v) for v in rng.integers(0, 1000, n)],
        "success_rate": rng.uniform(0, 1, n).tolist(),
        "metadata": random_metadata(rng, n),
        "query_metadata": {"lang": "en", "tier": 1, "x": [1, 2]},
    }
    objects, arrays = both(**kwargs)
    a, b = pack_request(objects, NOW), pack_request(arrays, NOW)
    assert a.ids == b.ids
    assert np.array_equal(a.query, b.query)
    assert np.array_equal(a.embeddings, b.embeddings) and a.embeddings.dtype == np.float32
    assert np.array_equal(a.columns, b.columns)
    # the stacked conversion equals the row-by-row conversion
    assert np.array_equal(a.embeddings, _embedding_rows(rows, a.ids, D))
    assert a.age_s[0] == 0.0 and a.age_s[1] == 11.0  # None = created now; NOW - 10.5 truncates to NOW - 11
    matrix = RoutingRequest.from_arrays(np.ones(D), np.stack([np.asarray(r, np.float64) for r in rows]))
    assert np.array_equal(pack_request(matrix, NOW).embeddings, a.embeddings)


@pytest.mark.parametrize("row", [np.arange(D, dtype=np.float32), np.arange(D, dtype=np.float64), list(range(D))])
def test_one_candidate_packs_alike_whatever_its_row(row: Any) -> None:
    """One float32 row is read as a [1, D] view (no stacking); every other row converts; the values agree."""
    objects, arrays = both(rows=[row], created_at=[NOW], access_count=[3], success_rate=[0.5])
    a, b = pack_request(objects, NOW), pack_request(arrays, NOW)
    assert a.embeddings.shape == (1, D) and a.embeddings.dtype == np.float32
    assert np.array_equal(a.embeddings, b.embeddings) and np.array_equal(a.columns, b.columns)
    if isinstance(row, np.ndarray) and row.dtype == np.float32:
        assert np.shares_memory(a.embeddings, row)  # the view: nothing was copied
    bad = np.full(D, np.nan, np.float32)  # the view takes the same checks as a stacked row
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        pack_request(both(rows=[bad], created_at=[NOW], access_count=[0], success_rate=[0.0])[0], NOW)


def test_huge_integer_rows_stacked_with_float_rows_convert_like_single_rows() -> None:
    big = [2**62 + 2**39 + 1, 1, 2, 3]  # int64 -> float64 -> float32 rounds twice; int64 -> float32 once
    rows = [big, [0.5, 0.0, 0.0, 0.0]]
    objects, _ = both([np.array(big, np.int64), np.array(rows[1])])
    packed = pack_request(objects, NOW)
    assert packed.embeddings[0, 0] == np.array(big, np.int64).astype(np.float32)[0]


def test_empty_requests_pack_alike() -> None:
    objects = RoutingRequest(np.ones(D), [])
    arrays = RoutingRequest.from_arrays(np.ones(D), np.zeros((0, D)))
    a, b = pack_request(objects, NOW), pack_request(arrays, NOW)
    assert a.embeddings.shape == b.embeddings.shape == (0, D)
    assert a.columns.shape == b.columns.shape == (0, 4)


def test_candidate_is_still_a_frozen_dataclass() -> None:
    c = Candidate("a", [1.0], metadata={"k": 1}, created_at=5, access_count=2, success_rate=0.5)
    assert c == Candidate(id="a", embedding=[1.0], metadata={"k": 1}, created_at=5, access_count=2, success_rate=0.5)
    assert [f.name for f in dataclasses.fields(c)] == [
        "id", "embedding", "metadata", "created_at", "access_count", "success_rate",
    ]  # fmt: skip
    assert Candidate("a", 1) == Candidate("a", 1, None, None, 0, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.id = "b"  # type: ignore[misc]
    assert dataclasses.replace(c, id="b").id == "b" and dataclasses.replace(c, id="b").access_count == 2
    assert pickle.loads(pickle.dumps(c)) == c
    assert dataclasses.asdict(c)["success_rate"] == 0.5
    with pytest.raises(TypeError):
        Candidate("a")  # type: ignore[call-arg]
