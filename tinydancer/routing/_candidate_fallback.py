"""The pure-Python twin of ``tinydancer.routing._candidate`` (the C fields of a Candidate).

Used where the extension was not built (no C compiler at install time): the same signature, defaults and
errors' types, at the cost of a Python ``__init__`` per candidate (``benchmarks/candidate_parts.py`` times both).
"""

from __future__ import annotations

from operator import attrgetter
from types import MemberDescriptorType
from typing import Any, TypeVar

_Columns = TypeVar("_Columns")


class CandidateFields:
    """The six fields of a Candidate, in the instance's dict."""

    def __init__(
        self,
        id: Any,
        embedding: Any,
        metadata: Any = None,
        created_at: Any = None,
        access_count: Any = 0,
        success_rate: Any = 0.0,
    ) -> None:
        # A frozen dataclass's __setattr__ refuses; stores into the instance's own dict do not call it.
        fields = self.__dict__
        fields["id"] = id
        fields["embedding"] = embedding
        fields["metadata"] = metadata
        fields["created_at"] = created_at
        fields["access_count"] = access_count
        fields["success_rate"] = success_rate


def install_vectorcall(cls: type[CandidateFields]) -> None:
    """Nothing to install: calls of a pure-Python class go through its ``__init__``."""


def candidate_columns(candidates: Any, cls: type[CandidateFields], columns_cls: type[_Columns]) -> _Columns | None:
    """The fields of ``candidates`` (a list or tuple of ``cls`` instances) as one ``columns_cls`` instance whose
    ``ids`` and ``embeddings`` are tuples, ``created_at``, ``access_count`` and ``success_rate`` lists and
    ``metadata`` a tuple, or None when every candidate's metadata is None; None if ``candidates`` is another
    container or holds anything else. ``columns_cls`` keeps the six in ``__slots__`` members, written by name
    without calling its ``__init__`` (as the compiled version does)."""
    if not _is_columns_class(columns_cls):
        raise TypeError(
            "candidate_columns: columns_cls must be a class with a __slots__ member for each of "
            f"{', '.join(_COLUMN_NAMES)}; got {columns_cls!r}"
        )
    if type(candidates) not in (list, tuple):
        return None
    if not {cls}.issuperset(map(type, candidates)) and not all(isinstance(c, cls) for c in candidates):
        return None
    values: tuple[Any, ...] = ((), (), [], [], [], None)
    if candidates:
        try:
            ids, embeddings, metadata, created_at, access, success = zip(*map(_FIELDS, candidates), strict=True)
        except AttributeError:  # an instance made by __new__ alone
            return None
        no_meta = all(m is None for m in metadata)
        values = (ids, embeddings, list(created_at), list(access), list(success), None if no_meta else metadata)
    columns = object.__new__(columns_cls)
    for name, value in zip(_COLUMN_NAMES, values, strict=True):
        object.__setattr__(columns, name, value)
    return columns


_COLUMN_NAMES = ("ids", "embeddings", "created_at", "access_count", "success_rate", "metadata")


def _is_columns_class(columns_cls: Any) -> bool:
    """Whether ``columns_cls`` is a class with a writable ``__slots__`` member for each column."""
    if not isinstance(columns_cls, type):
        return False
    members = [vars(columns_cls).get(name) for name in _COLUMN_NAMES]
    return all(isinstance(m, MemberDescriptorType) for m in members)


def copy_float32_rows(rows: Any, out: Any) -> bool:
    """Always False: the caller's own numpy stacking does the job (the compiled version copies float32 rows)."""
    return False


_FIELDS = attrgetter("id", "embedding", "metadata", "created_at", "access_count", "success_rate")
