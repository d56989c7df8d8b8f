"""Request and response types of the router (names of the guide and the original).

A request holds its candidates either as :class:`Candidate` objects or, when built with
:meth:`RoutingRequest.from_arrays`, as columns, so large requests pay no per-object Python cost.

Examples:
    >>> import numpy as np
    >>> req = RoutingRequest.from_arrays(np.ones(4), np.ones((3, 4)), ids=["a", "b", "c"])
    >>> len(req), req.candidates[1].id
    (3, 'b')
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tinydancer.errors import InvalidInputError
from tinydancer.routing.candidate_core import CandidateFields, candidate_columns, install_vectorcall

if TYPE_CHECKING:
    from tinydancer.routing.candidate_store import CandidateStore

JsonObject = Mapping[str, Any]
_SEQUENCES = (list, tuple)  # the usual candidate containers, recognised without an ABC check


@dataclass(frozen=True, init=False)
class Candidate(CandidateFields):
    """One routing candidate.

    A frozen dataclass built in one C call (its fields live in C: ``tinydancer/routing/_candidate.c``, or in the
    instance dict where no compiler built that), because a request built the guide's way makes one per candidate.

    Attributes:
        id: unique within a request.
        embedding: vector of the same length as the query, shape [D].
        metadata: JSON object compared key by key with the request's metadata.
        created_at: Unix seconds (fractions are truncated, as the original does); None = created now.
        access_count: non-negative integer.
        success_rate: in [0, 1].

    Examples:
        >>> Candidate("a", [1.0, 0.0], access_count=3)
        Candidate(id='a', embedding=[1.0, 0.0], metadata=None, created_at=None, access_count=3, success_rate=0.0)
    """

    __slots__ = ()

    id: str
    embedding: Any
    metadata: JsonObject | None = None
    created_at: float | None = None
    access_count: int = 0
    success_rate: float = 0.0

    # Pickle and copy: the fields (and a subclass's own attributes), restored without calling a subclass's __init__.
    def __getstate__(self) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        return _CANDIDATE_FIELDS(self), getattr(self, "__dict__", None)

    def __setstate__(self, state: tuple[tuple[Any, ...], dict[str, Any] | None]) -> None:
        values, extra = state
        CandidateFields.__init__(self, *values)
        if extra:
            self.__dict__.update(extra)


def _serve_fields_from_core(cls: type[CandidateFields]) -> None:
    """Drop the class attributes ``@dataclass`` sets for defaults: they would hide the base's fields (the defaults
    stay in ``dataclasses.fields``), then let calls of ``cls`` take the C fast path where there is one."""
    for field in fields(cls):  # type: ignore[arg-type]
        if field.name in vars(cls):
            delattr(cls, field.name)
    install_vectorcall(cls)


_serve_fields_from_core(Candidate)


@dataclass(eq=False, slots=True)
class CandidateColumns:
    """Candidates as columns: ids [N], embeddings [N, D], created_at/access_count/success_rate [N].

    Read-only by convention: slots without ``frozen`` build faster, and every request builds one.
    """

    ids: tuple[Any, ...]
    embeddings: Any
    created_at: Any
    access_count: Any
    success_rate: Any
    metadata: tuple[Any, ...] | None = None

    def __len__(self) -> int:
        return len(self.ids)


class StoredRows(NamedTuple):
    """A consistent copy of some rows of a :class:`~tinydancer.routing.candidate_store.CandidateStore`.

    Taken under the store's lock, so it never mixes two states of the store. N rows, D dimensions.
    """

    ids: tuple[str, ...]
    embeddings: np.ndarray  # [N, D] float32, each row L2-normalised (zero rows stay zero); see `rows`
    columns: np.ndarray  # [N, 3] float64: created_at (NaN = created now), access_count, success_rate
    metadata: tuple[Any, ...] | None  # N validated plain JSON objects (or None); None when no row has any
    rows: np.ndarray | None = None  # [N] intp: candidate i is embeddings[rows[i]] (the store's matrix, in place)


class StoreSelection(NamedTuple):
    """Which stored candidates a request routes: the store and the ids (None = every stored candidate)."""

    store: CandidateStore
    candidate_ids: tuple[Any, ...] | None


class RoutingRequest:
    """A query embedding and the candidates to score for it.

    Attributes:
        query_embedding: shape [D].
        candidates: the candidates (materialised on first access for requests built from arrays).
        metadata: optional JSON object.
    """

    __slots__ = ("_candidates", "_columns", "_selection", "metadata", "query_embedding")

    def __init__(
        self,
        query_embedding: Any,
        candidates: Sequence[Candidate] = (),
        metadata: JsonObject | None = None,
    ) -> None:
        self.query_embedding = query_embedding
        self.metadata = metadata
        not_a_sequence = type(candidates) not in _SEQUENCES and not isinstance(candidates, Sequence)
        if not_a_sequence and isinstance(candidates, Iterable):
            candidates = tuple(candidates)  # a generator is read once, here
        self._candidates: Sequence[Candidate] | None = candidates
        self._columns: CandidateColumns | None = None
        self._selection: StoreSelection | None = None

    @classmethod
    def from_arrays(
        cls,
        query: Any,
        embeddings: Any,
        *,
        ids: Sequence[str] | None = None,
        created_at: Any = None,
        access_count: Any = None,
        success_rate: Any = None,
        metadata: JsonObject | None = None,
        candidate_metadata: Sequence[JsonObject | None] | None = None,
    ) -> RoutingRequest:
        """Build a request from arrays without creating one object per candidate.

        Args:
            query: shape [D].
            embeddings: shape [N, D] (an array, or a list of N rows: converted and checked when routed, like
                the embeddings of ``Candidate`` objects, with the same errors).
            ids: N unique strings; default "0", "1", ...
            created_at: Unix seconds, shape [N]; default None = every candidate created now.
            access_count: shape [N]; default 0.
            success_rate: shape [N]; default 0.
            metadata: the request's JSON object.
            candidate_metadata: N JSON objects (or None).

        Returns:
            A request; validation happens when it is routed (so errors are counted).

        Examples:
            >>> import numpy as np
            >>> RoutingRequest.from_arrays(np.ones(2), np.ones((5, 2))).candidates[4].id
            '4'
        """
        emb = _as_column(embeddings)
        n = (emb.shape[0] if emb.ndim >= 1 else 0) if isinstance(emb, np.ndarray) else len(emb)
        request = cls(query, metadata=metadata)
        request._candidates = None
        request._columns = CandidateColumns(  # positional: a request is built per call
            tuple(str(i) for i in range(n)) if ids is None else tuple(ids),
            emb,
            None if created_at is None else _as_column(created_at),
            np.zeros(n) if access_count is None else _as_column(access_count),
            np.zeros(n) if success_rate is None else _as_column(success_rate),
            None if candidate_metadata is None else tuple(candidate_metadata),
        )
        return request

    @classmethod
    def from_store(
        cls,
        store: CandidateStore,
        query: Any,
        candidate_ids: Iterable[str] | None = None,
        *,
        metadata: JsonObject | None = None,
    ) -> RoutingRequest:
        """A request for candidates kept in a :class:`~tinydancer.routing.candidate_store.CandidateStore`.

        Nothing is copied here: when the request is routed, the router reads the rows it needs under the
        store's lock, one consistent state of the store (in place, up to 1,024 candidates served by the
        compiled host route; copied otherwise). Their embeddings were normalised and their columns validated
        once, at insert, and inserts, updates and deletes may run concurrently.

        Args:
            store: the store holding the candidates.
            query: shape [D], D = ``store.dim``.
            candidate_ids: ids of stored candidates, unique; None = every candidate stored when routed.
            metadata: the request's JSON object (matched against each candidate's stored metadata).

        Returns:
            A request; unknown or duplicate ids, like any bad input, are ``InvalidInputError`` when it is
            routed (so they are counted).

        Raises:
            InvalidInputError: ``candidate_ids`` is a single str (a sequence of ids is expected).

        Examples:
            >>> import numpy as np
            >>> from tinydancer.routing.candidate_store import CandidateStore
            >>> store = CandidateStore(dim=2)
            >>> store.upsert_many(["a", "b"], np.array([[3.0, 4.0], [0.0, 2.0]]))
            >>> request = RoutingRequest.from_store(store, np.ones(2), ["b"])
            >>> len(request), request.candidates[0].embedding.tolist()
            (1, [0.0, 1.0])
        """
        if isinstance(candidate_ids, str):
            raise InvalidInputError(f"candidate_ids: expected a sequence of ids, got one str ({candidate_ids!r})")
        request = cls(query, metadata=metadata)
        request._candidates = None
        ids = None if candidate_ids is None else tuple(candidate_ids)
        request._selection = StoreSelection(store, ids)
        return request

    @property
    def store_selection(self) -> StoreSelection | None:
        """The store and ids of a request made by :meth:`from_store`, else None."""
        return self._selection

    @property
    def candidates(self) -> Sequence[Candidate]:
        """The candidates as objects (for a store request, a snapshot of the store taken now)."""
        if self._candidates is None and self._selection is not None:
            return _materialise(self.columns())
        if self._candidates is None and self._columns is not None:
            self._candidates = _materialise(self._columns)
        if not isinstance(self._candidates, Sequence):
            raise InvalidInputError(
                f"candidates: expected a sequence of Candidate, got {type(self._candidates).__name__}"
            )
        return self._candidates

    def __len__(self) -> int:
        if self._columns is not None:
            return len(self._columns)
        if self._selection is not None:
            ids = self._selection.candidate_ids
            return len(self._selection.store) if ids is None else len(ids)
        return len(self._candidates) if isinstance(self._candidates, Sequence) else 0

    def __repr__(self) -> str:
        return f"RoutingRequest(<{len(self)} candidates>, metadata={self.metadata!r})"

    def columns(self) -> CandidateColumns:
        """The candidates as columns (no copies for requests built from arrays; a snapshot for store requests)."""
        if self._columns is not None:
            return self._columns
        # Candidate objects' fields read into columns in one pass (candidate_core), then validated and converted as
        # a whole by pack_request, exactly like those of from_arrays; created_at, access_count and success_rate come
        # as lists, as the guide's callers give from_arrays (errors name the column's type). None: not a list or
        # tuple of Candidates with their fields.
        columns = candidate_columns(self._candidates, Candidate, CandidateColumns)
        return self._other_columns() if columns is None else columns

    def _other_columns(self) -> CandidateColumns:
        """:meth:`columns` of a store request, of candidates in another sequence, or naming what is not a Candidate."""
        if self._selection is not None:
            rows = self._selection.store.snapshot(self._selection.candidate_ids)
            created = rows.columns[:, 0]
            return CandidateColumns(
                ids=rows.ids,
                embeddings=rows.embeddings,
                created_at=[None if math.isnan(c) else c for c in created.tolist()],
                access_count=rows.columns[:, 1],
                success_rate=rows.columns[:, 2],
                metadata=rows.metadata,
            )
        cands = tuple(self.candidates)  # the property's checks
        columns = candidate_columns(cands, Candidate, CandidateColumns)
        if columns is not None:
            return columns
        for i, cand in enumerate(cands):  # name the first item that is not a Candidate with its fields
            if not isinstance(cand, Candidate):
                raise InvalidInputError(f"candidates[{i}]: expected a Candidate, got {type(cand).__name__}")
            if not all(hasattr(cand, name) for name in _FIELD_NAMES):
                raise InvalidInputError(f"candidates[{i}]: a Candidate whose fields were never set (__new__ alone)")
        raise AssertionError("candidate_columns refused a sequence of Candidates")  # pragma: no cover


_FIELD_NAMES = ("id", "embedding", "metadata", "created_at", "access_count", "success_rate")
_CANDIDATE_FIELDS = attrgetter(*_FIELD_NAMES)


def _as_column(value: Any) -> Any:
    """Arrays, lists and tuples as given (converted when packed, like Candidate fields); anything else as an array."""
    return value if isinstance(value, _COLUMN_TYPES) else np.asarray(value)


_COLUMN_TYPES = (np.ndarray, list, tuple)  # a tuple: isinstance checks it faster than a union


def _materialise(columns: CandidateColumns) -> tuple[Candidate, ...]:
    meta = columns.metadata or (None,) * len(columns)
    return tuple(
        Candidate(
            id=columns.ids[i],
            embedding=columns.embeddings[i],
            metadata=meta[i],
            created_at=None if columns.created_at is None else columns.created_at[i],
            access_count=columns.access_count[i],
            success_rate=columns.success_rate[i],
        )
        for i in range(len(columns))
    )


class RoutingDecision(NamedTuple):
    """The router's decision for one candidate."""

    candidate_id: str
    confidence: float
    use_lightweight: bool
    uncertainty: float


@dataclass(frozen=True)
class RoutingResponse:
    """Decisions for every candidate, sorted by confidence descending (ties keep input order).

    Attributes:
        candidate_ids: ids in decision order.
        confidence: shape [N], float32, in decision order.
        uncertainty: shape [N], float32.
        use_lightweight: shape [N], bool.
        inference_time_us: wall time of the whole route call.
        candidates_processed: N.
        feature_time_us: host-side feature preparation (validation, packing, metadata matching).
    """

    candidate_ids: tuple[str, ...]
    confidence: np.ndarray
    uncertainty: np.ndarray
    use_lightweight: np.ndarray
    inference_time_us: float
    candidates_processed: int
    feature_time_us: float

    def __init__(
        self,
        candidate_ids: tuple[str, ...],
        confidence: np.ndarray,
        uncertainty: np.ndarray,
        use_lightweight: np.ndarray,
        inference_time_us: float,
        candidates_processed: int,
        feature_time_us: float,
    ) -> None:
        # As Candidate: stores into the instance's dict instead of the frozen dataclass's seven
        # object.__setattr__ calls (every route makes one response).
        fields = self.__dict__
        fields["candidate_ids"] = candidate_ids
        fields["confidence"] = confidence
        fields["uncertainty"] = uncertainty
        fields["use_lightweight"] = use_lightweight
        fields["inference_time_us"] = inference_time_us
        fields["candidates_processed"] = candidates_processed
        fields["feature_time_us"] = feature_time_us

    @functools.cached_property
    def decisions(self) -> list[RoutingDecision]:
        """One :class:`RoutingDecision` per candidate, best first."""
        return [
            RoutingDecision(cid, conf, light, unc)
            for cid, conf, light, unc in zip(
                self.candidate_ids,
                self.confidence.tolist(),
                self.use_lightweight.tolist(),
                self.uncertainty.tolist(),
                strict=True,
            )
        ]

    @functools.cached_property
    def lightweight_routes(self) -> int:
        """Number of candidates routed to the lightweight model."""
        return int(np.count_nonzero(self.use_lightweight))

    @property
    def powerful_routes(self) -> int:
        """Number of candidates routed to the powerful model."""
        return self.candidates_processed - self.lightweight_routes
