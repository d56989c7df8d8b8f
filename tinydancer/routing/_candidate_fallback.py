"""The pure-Python twin of ``tinydancer.routing._candidate`` (the C fields of a Candidate).

Used where the extension was not built (no C compiler at install time): the same signature, defaults and
errors' types, at the cost of a Python ``__init__`` per candidate (``benchmarks/candidate_parts.py`` times both).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any


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


def candidate_columns(candidates: Any, cls: type[CandidateFields]) -> tuple[Any, ...] | None:
    """The fields of ``candidates`` (a list or tuple of ``cls`` instances) as columns in ``CandidateColumns``'
    order: (ids, embeddings) tuples, (created_at, access_count, success_rate) lists and the metadata tuple, or None
    when every candidate's metadata is None; None if ``candidates`` is another container or holds anything else."""
    if type(candidates) not in (list, tuple):
        return None
    if not {cls}.issuperset(map(type, candidates)) and not all(isinstance(c, cls) for c in candidates):
        return None
    if not candidates:
        return (), (), [], [], [], None
    try:
        ids, embeddings, metadata, created_at, access, success = zip(*map(_FIELDS, candidates), strict=True)
    except AttributeError:  # an instance made by __new__ alone
        return None
    no_metadata = all(m is None for m in metadata)
    return ids, embeddings, list(created_at), list(access), list(success), None if no_metadata else metadata


def copy_float32_rows(rows: Any, out: Any) -> bool:
    """Always False: the caller's own numpy stacking does the job (the compiled version copies float32 rows)."""
    return False


_FIELDS = attrgetter("id", "embedding", "metadata", "created_at", "access_count", "success_rate")
