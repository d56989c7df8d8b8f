"""Candidate's fields in C (tinydancer/routing/_candidate.c) and their pure-Python twin: one contract (issue 16).

Every test here and in test_request_objects.py runs against the compiled fields in this process and against the
pure-Python twin in a subprocess (``TINYDANCER_PURE_PYTHON=1``, as an install without a C compiler).
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import inspect
import os
import pickle
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests._requires import missing
from tinydancer.errors import InvalidInputError
from tinydancer.routing import Candidate, RoutingRequest
from tinydancer.routing import requests as requests_module
from tinydancer.routing._candidate_fallback import CandidateFields as PythonFields
from tinydancer.routing.candidate_core import COMPILED, CandidateFields, candidate_columns, copy_float32_rows
from tinydancer.routing.packing import pack_request
from tinydancer.routing.requests import CandidateColumns

REPO = Path(__file__).resolve().parents[2]
PURE_PYTHON = bool(os.environ.get("TINYDANCER_PURE_PYTHON"))
FIELDS = ("id", "embedding", "metadata", "created_at", "access_count", "success_rate")


def test_the_expected_implementation_is_in_use() -> None:
    base = Candidate.__mro__[1]
    assert COMPILED is (base is not PythonFields)
    if PURE_PYTHON:
        assert base is PythonFields
    else:
        if base is PythonFields:
            missing("the C extension tinydancer.routing._candidate", "make system-deps && make -B .venv/.installed")
        assert base.__module__ == "tinydancer.routing._candidate"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("a", [1.0]), {}),
        (("a", [1.0], {"k": 1}, 5.0, 2, 0.5), {}),
        ((), {"id": "a", "embedding": [1.0], "success_rate": 0.5, "metadata": {"k": 1}}),
        (("a",), {"embedding": np.ones(3), "access_count": 7}),
    ],
)
def test_positional_keyword_and_default_arguments_bind_like_the_signature(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    bound = inspect.signature(Candidate).bind(*args, **kwargs)
    bound.apply_defaults()
    candidate = Candidate(*args, **kwargs)
    assert tuple(bound.arguments) == FIELDS
    given = inspect.signature(Candidate).bind(*args, **kwargs).arguments
    for name, value in bound.arguments.items():
        stored = getattr(candidate, name)
        assert stored is value if name in given else (stored == value and type(stored) is type(value))


def test_the_defaults_are_the_dataclass_defaults() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(Candidate)}
    candidate = Candidate("a", 1)
    assert defaults == {
        "id": dataclasses.MISSING, "embedding": dataclasses.MISSING, "metadata": None, "created_at": None,
        "access_count": 0, "success_rate": 0.0,
    }  # fmt: skip
    for name in FIELDS[2:]:
        assert getattr(candidate, name) == defaults[name]
        assert type(getattr(candidate, name)) is type(defaults[name])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Candidate("a"), "embedding"),
        (lambda: Candidate(embedding=[1.0]), "id"),
        (lambda: Candidate("a", 1, colour="red"), "colour"),
        (lambda: Candidate("a", 1, id="b"), "multiple values"),
        (lambda: Candidate(*range(7)), "7"),
        (lambda: Candidate("a", 1, **{3: 4}), "strings"),  # type: ignore[misc]
    ],
)
def test_bad_calls_raise_type_error_naming_the_problem(call: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call()


def test_fields_cannot_be_assigned_or_deleted() -> None:
    candidate = Candidate("a", [1.0])
    for name in FIELDS:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(candidate, name, 1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(candidate, name)
    assert candidate.id == "a" and candidate.embedding == [1.0]


def test_equality_hash_repr_copy_and_pickle_are_the_dataclass_ones() -> None:
    a = Candidate("a", (1.0, 2.0), None, 5.0, 2, 0.5)
    assert a == Candidate("a", (1.0, 2.0), None, 5.0, 2, 0.5) and a != Candidate("a", (1.0, 2.0))
    assert hash(a) == hash(Candidate("a", (1.0, 2.0), None, 5.0, 2, 0.5))
    assert (
        repr(a)
        == "Candidate(id='a', embedding=(1.0, 2.0), metadata=None, created_at=5.0, access_count=2, success_rate=0.5)"
    )
    for clone in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a)), dataclasses.replace(a)):
        assert clone == a and type(clone) is Candidate
    assert dataclasses.astuple(a) == ("a", (1.0, 2.0), None, 5.0, 2, 0.5)
    assert dataclasses.replace(a, access_count=3).access_count == 3
    with pytest.raises(TypeError, match="unhashable"):
        hash(Candidate("a", [1.0]))


class Labelled(Candidate):
    """A subclass with its own __init__ and an attribute of its own (module level: pickle finds it)."""

    def __init__(self, id: str, embedding: Any, label: str) -> None:
        super().__init__(id, embedding, success_rate=0.25)
        object.__setattr__(self, "label", label)


def test_a_subclass_with_its_own_init_pickles_and_copies_whole() -> None:
    original = Labelled("a", [1.0], label="x")
    for clone in (pickle.loads(pickle.dumps(original)), copy.copy(original), copy.deepcopy(original)):
        assert type(clone) is Labelled and clone == original
        assert clone.success_rate == 0.25 and clone.label == "x"  # type: ignore[attr-defined]


def test_a_subclass_with_its_own_init_is_built_through_it() -> None:
    calls = []

    class Tagged(Candidate):
        def __init__(self, id: str, embedding: Any, tag: str = "x") -> None:
            calls.append(tag)
            super().__init__(id, embedding, access_count=len(tag))

    t = Tagged("a", [1.0], tag="abc")
    assert calls == ["abc"] and t.access_count == 3 and isinstance(t, Candidate)
    req = RoutingRequest(np.ones(1), [t, Candidate("b", [2.0])])
    assert req.columns().access_count == [3, 0]


def test_fields_are_released_with_the_candidate_and_cycles_are_collected() -> None:
    class Embedding(list[float]):
        pass

    embedding = Embedding([1.0])
    alive = weakref.ref(embedding)
    candidate = Candidate("a", embedding, metadata={})
    del embedding
    assert alive() is not None
    del candidate
    assert alive() is None

    embedding = Embedding([1.0])
    alive = weakref.ref(embedding)
    metadata: dict[str, Any] = {}
    cyclic = Candidate("a", embedding, metadata=metadata)
    metadata["self"] = cyclic  # a cycle through the C fields: only the collector can free it
    del embedding, metadata, cyclic
    gc.collect()
    assert alive() is None


def test_requests_still_read_the_fields_in_columns() -> None:
    cands = [Candidate(f"c{i}", np.full(3, i, np.float32), access_count=i) for i in range(4)]
    columns = RoutingRequest(np.ones(3), cands).columns()
    assert columns.ids == ("c0", "c1", "c2", "c3") and columns.access_count == [0, 1, 2, 3]
    assert requests_module._CANDIDATE_FIELDS(cands[2])[4] == 2


@pytest.mark.skipif(PURE_PYTHON, reason="this is the subprocess's parent")
def test_the_candidate_tests_pass_with_the_pure_python_fields() -> None:
    env = {**os.environ, "TINYDANCER_PURE_PYTHON": "1"}
    files = ["tests/routing/test_candidate_fields.py", "tests/routing/test_request_objects.py"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:nbval", "-q", *files],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout


def test_columns_name_the_first_item_that_is_not_a_usable_candidate() -> None:
    good = Candidate("a", np.ones(2))
    with pytest.raises(InvalidInputError, match=r"candidates\[1\]: expected a Candidate, got tuple"):
        RoutingRequest(np.ones(2), [good, ("b", np.ones(2))]).columns()  # type: ignore[list-item]
    bare = Candidate.__new__(Candidate)  # no __init__: no fields
    with pytest.raises(InvalidInputError, match=r"candidates\[1\]: a Candidate whose fields were never set"):
        RoutingRequest(np.ones(2), (good, bare)).columns()
    assert RoutingRequest(np.ones(2), [good]).columns().ids == ("a",)  # the request still works


ROWS: list[tuple[str, Any]] = [
    ("float32 arrays", [np.arange(4, dtype=np.float32) + i for i in range(3)]),
    ("float64 arrays", [np.arange(4, dtype=np.float64) / 3 + i for i in range(3)]),
    ("mixed float32 and list", [np.ones(4, np.float32), [1.0, 2.0, 3.0, 4.0], np.zeros(4, np.float32)]),
    ("strided float32 views", list(np.arange(24, dtype=np.float32).reshape(3, 8)[:, ::2])),
    ("big-endian float32", [np.arange(4, dtype=">f4") + i for i in range(3)]),
    ("float32 memoryviews", [memoryview(np.arange(4, dtype=np.float32) + i) for i in range(3)]),
    ("float16 arrays", [np.arange(4, dtype=np.float16) + i for i in range(3)]),
    ("tuple of float32 arrays", tuple(np.arange(4, dtype=np.float32) * i for i in range(3))),
]


@pytest.mark.parametrize("rows", [r for _, r in ROWS], ids=[name for name, _ in ROWS])
def test_stacked_rows_equal_numpys_stacking_whatever_the_rows(rows: Any) -> None:
    n, dim = len(rows), 4
    objects = RoutingRequest(np.ones(dim), [Candidate(f"c{i}", rows[i]) for i in range(n)])
    packed = pack_request(objects, 0.0).embeddings
    expected = np.array([np.asarray(r) for r in rows]).astype(np.float32)
    assert packed.dtype == np.float32 and packed.shape == (n, dim)
    assert np.array_equal(packed, expected)


@pytest.mark.parametrize(
    ("rows", "copied"),
    [
        ([np.full(3, i, np.float32) for i in range(4)], True),
        ([np.full(3, 1, np.float32), np.full(3, 1, np.float64)], False),
        ([np.full(3, 1, np.float32), np.ones((1, 3), np.float32)], False),
        ([np.full(3, 1, np.float32), np.ones(2, np.float32)], False),
        ([np.full(3, 1, np.float32), "abc"], False),
        ([np.full(3, 1, np.float32), b"abcdefghijkl"], False),
        ([np.full(3, 1, np.float32), np.ones(6, np.float32)[::2]], False),
    ],
)
def test_copy_float32_rows_copies_only_contiguous_float32_rows_of_the_right_length(rows: Any, copied: bool) -> None:
    out = np.full((len(rows), 3), -1, np.float32)
    assert copy_float32_rows(rows, out) is (copied and COMPILED)
    if copied and COMPILED:
        assert np.array_equal(out, np.array(rows))
    if COMPILED:
        with pytest.raises(ValueError, match=r"\[N, D\] float32"):
            copy_float32_rows(rows, np.zeros((len(rows) + 1, 3), np.float32))
        with pytest.raises(ValueError, match=r"\[N, D\] float32"):
            copy_float32_rows(rows, np.zeros((len(rows), 3), np.float64))
        assert copy_float32_rows(iter(rows), out) is False  # only lists and tuples


def _values(columns: Any) -> tuple[Any, ...]:
    """A columns object's fields (CandidateColumns compares by identity)."""
    return tuple(getattr(columns, field.name) for field in dataclasses.fields(columns))


def test_candidate_columns_reads_lists_and_tuples_of_the_class_only() -> None:
    cands = [Candidate(f"c{i}", [float(i)], created_at=i, access_count=i) for i in range(3)]
    for container in (cands, tuple(cands)):
        columns = candidate_columns(container, Candidate, CandidateColumns)
        assert type(columns) is CandidateColumns and len(columns) == 3
        assert columns.ids == ("c0", "c1", "c2") and columns.embeddings == ([0.0], [1.0], [2.0])
        assert columns.created_at == [0, 1, 2] and columns.access_count == [0, 1, 2]
        assert columns.success_rate == [0.0] * 3 and columns.metadata is None
    with_metadata = [*cands, Candidate("c3", [3.0], metadata={"k": 1})]
    columns = candidate_columns(with_metadata, Candidate, CandidateColumns)
    assert columns is not None and columns.metadata == (None, None, None, {"k": 1})
    assert candidate_columns(iter(cands), Candidate, CandidateColumns) is None
    assert candidate_columns([*cands, "c3"], Candidate, CandidateColumns) is None
    assert candidate_columns(None, Candidate, CandidateColumns) is None
    assert _values(candidate_columns([], Candidate, CandidateColumns)) == ((), (), [], [], [], None)
    if COMPILED:
        with pytest.raises(TypeError, match="subclass CandidateFields"):
            candidate_columns(cands, int, CandidateColumns)  # type: ignore[arg-type]


@dataclasses.dataclass
class _ColumnsInADict:  # the right names, but no __slots__
    ids: Any
    embeddings: Any
    created_at: Any
    access_count: Any
    success_rate: Any
    metadata: Any


@dataclasses.dataclass(slots=True)
class _ColumnsWithoutMetadata:
    ids: Any
    embeddings: Any
    created_at: Any
    access_count: Any
    success_rate: Any


@dataclasses.dataclass(slots=True)
class _OtherColumns:  # any slots class with the six names will do; instances get the columns, __init__ is not needed
    metadata: Any
    ids: Any
    embeddings: Any
    created_at: Any
    access_count: Any
    success_rate: Any


def test_candidate_columns_writes_any_class_with_the_six_slots_and_refuses_others() -> None:
    cands = [Candidate("a", [1.0], metadata={"k": 1}), Candidate("b", [2.0])]
    other = candidate_columns(cands, Candidate, _OtherColumns)
    assert other == _OtherColumns(({"k": 1}, None), ("a", "b"), ([1.0], [2.0]), [None, None], [0, 0], [0.0, 0.0])
    again = candidate_columns(cands, Candidate, CandidateColumns)  # switching back and forth between classes
    assert again is not None and again.ids == ("a", "b") and again.metadata == ({"k": 1}, None)
    for bad in (_ColumnsInADict, _ColumnsWithoutMetadata, CandidateFields, int):
        with pytest.raises(TypeError, match="__slots__ member for each of ids, embeddings"):
            candidate_columns(cands, Candidate, bad)  # type: ignore[arg-type]
    assert _values(candidate_columns(cands, Candidate, CandidateColumns)) == _values(again)  # nothing changed


class _ShiftedColumns:  # one more slot, sorted first: every column at another offset than CandidateColumns'
    __slots__ = ("a_first", "access_count", "created_at", "embeddings", "ids", "metadata", "success_rate")


def test_a_finaliser_that_switches_the_columns_class_mid_call_changes_nothing() -> None:
    """The garbage collector may run a finaliser inside the allocations of candidate_columns; one that calls it with
    another columns class (another slot layout) must not make the call in progress write to the wrong slots."""
    cands = [Candidate("a", [1.0], metadata={"k": 1}, created_at=5, access_count=2, success_rate=0.5)]
    names = ("ids", "embeddings", "created_at", "access_count", "success_rate", "metadata")
    expected = (("a",), ([1.0],), [5], [2], [0.5], ({"k": 1},))
    inside: list[Any] = []

    class SwitchesLayout:
        def __init__(self) -> None:
            self.cycle = self

        def __del__(self) -> None:
            inside.append(candidate_columns(cands, Candidate, _ShiftedColumns))

    candidate_columns(cands, Candidate, CandidateColumns)  # CandidateColumns' layout is the current one
    threshold = gc.get_threshold()
    gc.collect()
    try:
        SwitchesLayout()  # unreachable cycle: collected (and finalised) at the next collection
        gc.set_threshold(1)  # ... which the call's first allocation starts
        columns = candidate_columns(cands, Candidate, CandidateColumns)
        finalised_during_the_call = len(inside) == 1
    finally:
        gc.set_threshold(*threshold)
    assert finalised_during_the_call
    assert tuple(getattr(inside[0], name) for name in names) == expected
    assert _values(columns) == expected
