"""A thread-safe store of routing candidates: embeddings normalised once at insert, columns beside them.

Candidates usually come from an index that already holds their embeddings. The store keeps them the way a
route needs them, so a request names candidates by id (:meth:`RoutingRequest.from_store
<tinydancer.routing.requests.RoutingRequest.from_store>`) and a similarity search over all of them is one
matrix-vector product:

* embeddings L2-normalised at insert (zero vectors stay zero) in one preallocated, 64-byte aligned,
  C-contiguous float32 matrix [capacity, D], grown by doubling; rows ``[0, len)`` are the candidates;
* beside it the original norms [capacity] and a float64 table [capacity, 3] of created_at (NaN = "created
  now", like ``Candidate(created_at=None)``), access_count and success_rate, plus ids and metadata lists and
  an id -> row dict;
* every value validated at insert by the same checks (and errors) as a routed request, so a route from the
  store checks nothing per candidate;
* deletes move the last row into the hole (swap with last), so rows stay dense;
* every read and write holds one ``threading.RLock`` (:attr:`CandidateStore.lock`): a route reads the rows it
  needs under the lock (one consistent state of the store), in place when the compiled host route serves it
  (the Router holds the lock from packing to the end of inference) and copied otherwise, and
  :meth:`CandidateStore.similarity` reads the matrix in place under it.

Examples:
    >>> import numpy as np
    >>> store = CandidateStore(dim=3)
    >>> store.insert("a", [3.0, 4.0, 0.0], access_count=2)
    >>> store.upsert_many(["b", "c"], np.eye(3)[:2], success_rate=[0.5, 1.0])
    >>> len(store), store.ids
    (3, ('a', 'b', 'c'))
    >>> [round(s, 3) for s in store.similarity(np.array([1.0, 0.0, 0.0])).tolist()]
    [0.6, 1.0, 0.0]
    >>> store.delete("a")
    >>> store.ids
    ('c', 'b')
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import numba
import numpy as np

from tinydancer.errors import InvalidInputError
from tinydancer.routing.batch import aligned_empty
from tinydancer.routing.kernel import bucket_size
from tinydancer.routing.packing import check_candidate_columns, check_query, validate_json_object
from tinydancer.routing.requests import Candidate, CandidateColumns, StoredRows

#: Rows allocated by a new store unless told otherwise; the matrix doubles when full.
DEFAULT_CAPACITY = 1024
#: Marks a field that :meth:`CandidateStore.update` leaves as it is.
_KEEP: Any = object()


class CandidateStore:
    """Candidates kept for routing by id: normalised embeddings and their columns, thread-safe.

    Args:
        dim: embedding dimension D of every candidate (and of the queries routed against them).
        capacity: rows to allocate up front (the matrix doubles when it is full).

    Raises:
        InvalidInputError: ``dim`` or ``capacity`` is not a positive integer.

    Examples:
        >>> store = CandidateStore(dim=2, capacity=1)
        >>> store.upsert_many(["x", "y", "z"], [[1, 0], [0, 1], [1, 1]])
        >>> store.capacity, [round(v, 4) for v in store.get("z").embedding.tolist()]
        (4, [0.7071, 0.7071])
    """

    def __init__(self, dim: int, capacity: int = DEFAULT_CAPACITY) -> None:
        for name, value in (("dim", dim), ("capacity", capacity)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"{name}: expected a positive integer, got {value!r}")
        self._dim = int(dim)
        self._lock = threading.RLock()
        self._size = 0
        self._version = 0
        self._embeddings = aligned_empty((int(capacity), self._dim))
        self._norms = np.empty(int(capacity), np.float32)
        self._columns = np.empty((int(capacity), 3), np.float64)
        self._ids: list[str] = []
        self._metadata: list[dict[str, Any] | None] = []
        self._with_metadata = 0  # rows whose metadata is not None: snapshots skip the column when 0
        self._rows: dict[str, int] = {}

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return self._dim

    @property
    def capacity(self) -> int:
        """Rows allocated (at least ``len(self)``)."""
        return int(self._embeddings.shape[0])

    @property
    def version(self) -> int:
        """Incremented by every change; equal versions mean an unchanged store."""
        return self._version

    @property
    def lock(self) -> threading.RLock:
        """The lock every read and write holds (re-entrant): hold it to read in place across several steps."""
        return self._lock

    @property
    def ids(self) -> tuple[str, ...]:
        """Stored ids in row order (deletes move the last row into the hole)."""
        with self._lock:
            return tuple(self._ids)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, candidate_id: object) -> bool:
        return isinstance(candidate_id, str) and candidate_id in self._rows

    def __repr__(self) -> str:
        return f"CandidateStore(dim={self._dim}, candidates={self._size}, capacity={self.capacity})"

    # ---- writes ------------------------------------------------------------------------------------------

    def insert(
        self,
        candidate_id: str,
        embedding: Any,
        *,
        metadata: Mapping[str, Any] | None = None,
        created_at: float | None = None,
        access_count: int = 0,
        success_rate: float = 0.0,
    ) -> None:
        """Add one new candidate (the fields of :class:`~tinydancer.routing.requests.Candidate`).

        Raises:
            InvalidInputError: the id is stored already, or a value is invalid (the routed request's error).

        Examples:
            >>> store = CandidateStore(dim=2)
            >>> store.insert("a", [1.0, 1.0], created_at=1_700_000_000)
            >>> store.insert("a", [1.0, 1.0])
            Traceback (most recent call last):
            ...
            tinydancer.errors.InvalidInputError: candidate 'a' is stored already: use upsert or update to change it
        """
        with self._lock:
            if isinstance(candidate_id, str) and candidate_id in self._rows:
                raise InvalidInputError(
                    f"candidate {candidate_id!r} is stored already: use upsert or update to change it"
                )
            self.upsert(candidate_id, embedding, metadata=metadata, created_at=created_at,
                        access_count=access_count, success_rate=success_rate)  # fmt: skip

    def upsert(
        self,
        candidate_id: str,
        embedding: Any,
        *,
        metadata: Mapping[str, Any] | None = None,
        created_at: float | None = None,
        access_count: int = 0,
        success_rate: float = 0.0,
    ) -> None:
        """Add one candidate, or replace every field of the stored one with that id.

        Examples:
            >>> store = CandidateStore(dim=2)
            >>> store.upsert("a", [1.0, 0.0]); store.upsert("a", [0.0, 2.0], access_count=4)
            >>> len(store), store.get("a").access_count
            (1, 4)
        """
        self.upsert_many(
            [candidate_id], [embedding], created_at=[created_at], access_count=[access_count],
            success_rate=[success_rate], candidate_metadata=[metadata],
        )  # fmt: skip

    def upsert_many(
        self,
        candidate_ids: Sequence[str],
        embeddings: Any,
        *,
        created_at: Any = None,
        access_count: Any = None,
        success_rate: Any = None,
        candidate_metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add or replace N candidates at once, all or none (validated vectorised, before anything changes).

        Args:
            candidate_ids: N unique strings.
            embeddings: shape [N, D] (an array or N rows).
            created_at: Unix seconds, shape [N] (None entries or None: "created now" at every route).
            access_count: shape [N], non-negative integers; default 0.
            success_rate: shape [N], in [0, 1]; default 0.
            candidate_metadata: N JSON objects or None.

        Raises:
            InvalidInputError: the same error a routed request with these candidates gets.

        Examples:
            >>> store = CandidateStore(dim=2)
            >>> store.upsert_many(["a", "b"], np.ones((2, 3)))
            Traceback (most recent call last):
            ...
            tinydancer.errors.InvalidInputError: Vector dimension mismatch: the store has 2, candidate 'a' has 3
        """
        if isinstance(candidate_ids, str):
            raise InvalidInputError("candidate_ids: expected a sequence of ids, got one str (upsert() takes one)")
        ids = tuple(candidate_ids)
        unit, norms, table, metadata = self._validated(ids, embeddings, created_at, access_count, success_rate,
                                                       candidate_metadata)  # fmt: skip
        with self._lock:
            rows = self._rows
            new = [cid for cid in ids if cid not in rows]
            self._reserve(self._size + len(new))
            for cid in new:
                rows[cid] = len(self._ids)  # the next free row
                self._ids.append(cid)
                self._metadata.append(None)
            self._size += len(new)
            where = np.fromiter(map(rows.__getitem__, ids), np.intp, len(ids))
            self._embeddings[where] = unit
            self._norms[where] = norms
            self._columns[where] = table
            for row, meta in zip(where.tolist(), metadata, strict=True):
                self._with_metadata += (meta is not None) - (self._metadata[row] is not None)
                self._metadata[row] = meta
            self._version += 1

    def update(
        self,
        candidate_id: str,
        *,
        embedding: Any = _KEEP,
        metadata: Mapping[str, Any] | None = _KEEP,
        created_at: float | None = _KEEP,
        access_count: int = _KEEP,
        success_rate: float = _KEEP,
    ) -> None:
        """Change some fields of a stored candidate (the others stay); e.g. count an access.

        Raises:
            InvalidInputError: unknown id, or an invalid value (nothing changes).

        Examples:
            >>> store = CandidateStore(dim=2)
            >>> store.insert("a", [1.0, 0.0], success_rate=0.5)
            >>> store.update("a", access_count=7)
            >>> store.get("a").access_count, store.get("a").success_rate
            (7, 0.5)
        """
        with self._lock:
            current = self.get(candidate_id)
            row = self._rows[candidate_id]
            unit, norm = current.embedding, self._norms[row]
            self.upsert(
                candidate_id,
                unit if embedding is _KEEP else embedding,
                metadata=current.metadata if metadata is _KEEP else metadata,
                created_at=current.created_at if created_at is _KEEP else created_at,
                access_count=current.access_count if access_count is _KEEP else access_count,
                success_rate=current.success_rate if success_rate is _KEEP else success_rate,
            )
            if embedding is _KEEP:  # the stored unit vector and norm stay bit for bit
                self._embeddings[row], self._norms[row] = unit, norm

    def delete(self, candidate_id: str) -> None:
        """Remove one candidate (the last row moves into its place).

        Raises:
            InvalidInputError: unknown id.

        Examples:
            >>> store = CandidateStore(dim=1)
            >>> store.upsert_many(["a", "b", "c"], [[1], [2], [3]])
            >>> store.delete("a"); store.ids
            ('c', 'b')
        """
        self.delete_many([candidate_id])

    def delete_many(self, candidate_ids: Iterable[str]) -> None:
        """Remove candidates, all or none (an unknown or repeated id changes nothing and raises).

        Examples:
            >>> store = CandidateStore(dim=1)
            >>> store.upsert_many(["a", "b"], [[1], [2]])
            >>> store.delete_many(["a", "zz"])
            Traceback (most recent call last):
            ...
            tinydancer.errors.InvalidInputError: unknown candidate id 'zz' (index 1): not in the store
            >>> len(store)
            2
        """
        with self._lock:
            rows = self._lookup(tuple(candidate_ids))
            for row in sorted(rows.tolist(), reverse=True):  # highest first: a moved row is never one to delete
                last = self._size - 1
                gone = self._ids[row]
                self._with_metadata -= self._metadata[row] is not None
                if row != last:
                    moved = self._ids[last]
                    self._embeddings[row] = self._embeddings[last]
                    self._norms[row] = self._norms[last]
                    self._columns[row] = self._columns[last]
                    self._ids[row], self._metadata[row] = moved, self._metadata[last]
                    self._rows[moved] = row
                self._ids.pop()
                self._metadata.pop()
                del self._rows[gone]
                self._size = last
            self._version += 1

    def clear(self) -> None:
        """Remove every candidate (the allocation stays)."""
        with self._lock:
            self._ids.clear()
            self._metadata.clear()
            self._rows.clear()
            self._size = self._with_metadata = 0
            self._version += 1

    # ---- reads -------------------------------------------------------------------------------------------

    def get(self, candidate_id: str) -> Candidate:
        """One stored candidate, its embedding normalised (a copy).

        Raises:
            InvalidInputError: unknown id.
        """
        with self._lock:
            row = int(self._lookup((candidate_id,))[0])
            created, access, success = self._columns[row].tolist()
            return Candidate(
                id=candidate_id,
                embedding=self._embeddings[row].copy(),
                metadata=self._metadata[row],
                created_at=None if created != created else created,
                access_count=int(access),
                success_rate=success,
            )

    def snapshot(
        self, candidate_ids: Sequence[str] | None = None, *, padded: bool = False, in_place: bool = False
    ) -> StoredRows:
        """A consistent copy of the rows of ``candidate_ids`` (None: every stored candidate), under the lock.

        Args:
            candidate_ids: N unique stored ids, in the order wanted.
            padded: the embeddings are then the leading N rows of a zero-filled [bucket_size(N), D] buffer,
                which the route kernel reads whole instead of copying them into one (``kernel.bucket_size``).
            in_place: the embeddings are then not copied: the store's own matrix rows [0, N) (every candidate),
                or its whole matrix with ``rows`` naming candidate i's row. Valid only while the caller holds
                :attr:`lock` (a write may change or move rows once it is released); ``padded`` is ignored.

        Returns:
            ids, embeddings [N, D] float32 (normalised), columns [N, 3] float64, metadata (None when no row has any),
            and with ``in_place`` and ids, ``rows`` [N] intp.

        Raises:
            InvalidInputError: an unknown, repeated or non-str id (naming it).

        Examples:
            >>> store = CandidateStore(dim=2)
            >>> store.upsert_many(["a", "b"], [[0, 5], [1, 0]], access_count=[1, 2])
            >>> rows = store.snapshot(["b", "a"])
            >>> rows.ids, rows.embeddings.tolist(), rows.columns[:, 1].tolist()
            (('b', 'a'), [[1.0, 0.0], [0.0, 1.0]], [2.0, 1.0])
            >>> with store.lock:
            ...     rows = store.snapshot(["b", "a"], in_place=True)
            ...     rows.rows.tolist(), rows.embeddings[rows.rows].tolist()
            ([1, 0], [[1.0, 0.0], [0.0, 1.0]])
        """
        with self._lock:
            if candidate_ids is None:
                n = self._size
                if in_place:
                    embeddings = self._embeddings[:n]
                else:
                    embeddings = _rows_buffer(n, self._dim, padded)
                    embeddings[...] = self._embeddings[:n]
                metadata = tuple(self._metadata) if self._with_metadata else None
                return StoredRows(tuple(self._ids), embeddings, self._columns[:n].copy(), metadata)
            ids = candidate_ids if isinstance(candidate_ids, tuple) else tuple(candidate_ids)
            rows = self._lookup(ids)
            meta = None
            if self._with_metadata:
                stored = self._metadata
                meta = tuple([stored[r] for r in rows.tolist()])
            columns = self._columns.take(rows, axis=0)
            if in_place and len(rows):  # (no ids: an empty copy, as rows=[] would mean "every row")
                return StoredRows(ids, self._embeddings, columns, meta, rows)
            embeddings = _rows_buffer(len(ids), self._dim, padded)
            # mode="clip": the rows are valid, and numpy buffers `out` for the default mode="raise" (a 2nd copy)
            self._embeddings.take(rows, axis=0, out=embeddings, mode="clip")
            return StoredRows(ids, embeddings, columns, meta)

    def similarity(self, query: Any, candidate_ids: Sequence[str] | None = None) -> np.ndarray:
        """Cosine similarity of ``query`` with stored candidates: one matrix-vector product, no norms recomputed.

        Every stored candidate (in row order, see :attr:`ids`) is read in place, under the lock; selected ones
        are gathered first. Zero vectors follow the route kernel's rule: zero vs zero 1.0, zero vs other 0.0.

        Args:
            query: shape [D].
            candidate_ids: stored ids (N of them); None = every stored candidate.

        Returns:
            shape [N] float32, in [-1, 1].

        Raises:
            InvalidInputError: a bad query (the routed request's error) or an unknown id.

        Examples:
            >>> store = CandidateStore(dim=2)
            >>> store.upsert_many(["a", "b", "c"], [[2, 0], [1, 1], [0, 0]])
            >>> [round(s, 4) for s in store.similarity([5.0, 0.0]).tolist()]
            [1.0, 0.7071, 0.0]
            >>> [round(s, 4) for s in store.similarity([1, 1], ["c", "b"]).tolist()]
            [0.0, 1.0]
        """
        q = check_query(query)
        if q.shape[0] != self._dim:
            raise InvalidInputError(f"Vector dimension mismatch: query has {q.shape[0]}, candidates have {self._dim}")
        norm = math.sqrt(float(q @ q))
        unit = q / np.float32(norm) if norm > 0 else q
        with self._lock:
            if candidate_ids is None:
                n = self._size
                out = np.empty(n, np.float32)
                np.matmul(self._embeddings[:n], unit, out=out)  # rows [0, n) are contiguous: read in place
                zero_rows = self._norms[:n] == 0 if norm == 0 else None
            else:
                rows = self._lookup(tuple(candidate_ids))
                out = self._embeddings.take(rows, axis=0) @ unit
                zero_rows = self._norms[rows] == 0 if norm == 0 else None
        if zero_rows is not None:  # a zero query: 1.0 against zero vectors, else 0.0 (the dot products are 0)
            out = zero_rows.astype(np.float32)
        return out

    # ---- internals ---------------------------------------------------------------------------------------

    def _lookup(self, ids: tuple[Any, ...]) -> np.ndarray:
        """Rows of ``ids`` [N] intp; unknown, repeated or non-str ids raise, naming the first."""
        try:  # one C-level call for the lookups (itemgetter of one key returns the value, not a tuple)
            found = itemgetter(*ids)(self._rows) if len(ids) > 1 else map(self._rows.__getitem__, ids)
            rows = np.fromiter(found, np.intp, len(ids))
        except (KeyError, TypeError):
            for i, cid in enumerate(ids):
                if not isinstance(cid, str):
                    raise InvalidInputError(
                        f"candidate id at index {i}: expected str, got {type(cid).__name__}"
                    ) from None
                if cid not in self._rows:
                    raise InvalidInputError(f"unknown candidate id {cid!r} (index {i}): not in the store") from None
            raise
        n = len(ids)
        # A bitmap of the store's rows is cheaper than a set of the ids unless the store is much larger.
        if n > 1 and (_repeats_a_row(rows, self._size) if self._size <= 32 * n else len(set(ids)) != n):
            seen: set[str] = set()
            dup = next(c for c in ids if c in seen or seen.add(c))  # type: ignore[func-returns-value]
            raise InvalidInputError(f"duplicate candidate id {dup!r}: ids must be unique within a request")
        return rows

    def _reserve(self, rows: int) -> None:
        """Grow the arrays (doubling) to hold ``rows`` rows; call with the lock held."""
        capacity = self.capacity
        if rows <= capacity:
            return
        while capacity < rows:
            capacity *= 2
        n = self._size
        embeddings = aligned_empty((capacity, self._dim))
        embeddings[:n] = self._embeddings[:n]
        norms, columns = np.empty(capacity, np.float32), np.empty((capacity, 3), np.float64)
        norms[:n], columns[:n] = self._norms[:n], self._columns[:n]
        self._embeddings, self._norms, self._columns = embeddings, norms, columns

    def _validated(
        self,
        ids: tuple[Any, ...],
        embeddings: Any,
        created_at: Any,
        access_count: Any,
        success_rate: Any,
        candidate_metadata: Sequence[Mapping[str, Any] | None] | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any] | None]]:
        """Rows checked as a routed request's candidates: (unit embeddings, norms, [N, 3] table, metadata)."""
        n = len(ids)
        now_marks: list[bool] | None = None  # None entries mean "created now": checked as a placeholder 0
        created: Any
        if created_at is None:
            now_marks, created = [True] * n, np.zeros(n)
        elif isinstance(created_at, np.ndarray):
            created = created_at
        else:
            values = list(created_at)
            now_marks, created = [v is None for v in values], [0 if v is None else v for v in values]
        columns = CandidateColumns(
            ids=ids,
            embeddings=embeddings if isinstance(embeddings, np.ndarray | list | tuple) else np.asarray(embeddings),
            created_at=created,
            access_count=np.zeros(n) if access_count is None else access_count,
            success_rate=np.zeros(n) if success_rate is None else success_rate,
        )
        try:
            matrix, created64, access, success = check_candidate_columns(columns, self._dim, now_s=0.0)
        except InvalidInputError as exc:  # the request's wording names the query; here the store sets D
            prefix = f"Vector dimension mismatch: query has {self._dim},"
            if str(exc).startswith(prefix):
                raise InvalidInputError(
                    str(exc).replace(prefix, f"Vector dimension mismatch: the store has {self._dim},", 1)
                ) from None
            raise
        if now_marks is not None and any(now_marks):
            created64 = created64.copy()
            created64[np.asarray(now_marks, bool)] = np.nan
        if candidate_metadata is None:
            metadata: list[dict[str, Any] | None] = [None] * n
        else:
            metas = list(candidate_metadata)
            if len(metas) != n:
                raise InvalidInputError(
                    f"candidate_metadata: expected {n} entries (one per candidate), got {len(metas)}"
                )
            metadata = [
                validate_json_object(f"candidate {cid!r} metadata", m) for cid, m in zip(ids, metas, strict=True)
            ]
        norms = np.sqrt(np.square(matrix, dtype=np.float64).sum(axis=1)).astype(np.float32)
        safe = np.where(norms > 0, norms, np.float32(1.0))
        unit = (matrix / safe[:, None]).astype(np.float32, copy=False)
        return unit, norms, np.stack([created64, access, success], axis=1), metadata


@numba.njit(cache=True)
def _repeats_a_row(rows: np.ndarray, size: int) -> bool:  # pragma: no cover - compiled
    """Whether ``rows`` (each in [0, size)) names a row twice: one pass over a bitmap, no set of ids."""
    seen = np.zeros(size, np.bool_)
    for row in rows:
        if seen[row]:
            return True
        seen[row] = True
    return False


def _rows_buffer(n: int, dim: int, padded: bool) -> np.ndarray:
    """[n, D] float32 to copy rows into; with ``padded``, the leading rows of a zeroed [bucket_size(n), D] buffer."""
    if not padded:
        return np.empty((n, dim), np.float32)
    return np.zeros((bucket_size(n), dim), np.float32)[:n]
