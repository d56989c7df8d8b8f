"""Host-side request validation and packing into the arrays the jitted route kernel takes.

Everything a request can get wrong is found here, with a typed error that says what was expected,
before any model work; the work is vectorised over candidates except for metadata (one plain loop, with JSON
serialisation only for nested or non-plain values). ``Candidate`` objects and arrays take the same checks.

Examples:
    >>> import numpy as np
    >>> from tinydancer.routing.requests import RoutingRequest
    >>> req = RoutingRequest.from_arrays(np.ones(3), np.ones((2, 3)), created_at=[100, 250])
    >>> packed = pack_request(req, now_s=200)
    >>> packed.age_s.tolist(), packed.embeddings.dtype.name
    ([100.0, -50.0], 'float32')
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numba
import numpy as np

from tinydancer.errors import InvalidInputError
from tinydancer.model.candidate_features import candidate_features
from tinydancer.routing.candidate_core import copy_float32_rows
from tinydancer.routing.host_kernel import ALL_ROWS
from tinydancer.routing.kernel import HOST_MAX_CANDIDATES
from tinydancer.routing.requests import CandidateColumns, RoutingRequest, StoredRows


class PackedRequest(NamedTuple):
    """A validated request as arrays. N candidates, D dimensions."""

    ids: tuple[str, ...]
    query: np.ndarray  # [D] float32
    embeddings: np.ndarray  # [N, D] float32; with `rows`, a candidate store's matrix [M, D], read in place
    columns: np.ndarray  # [N, 4] float32: age_s, access_count, success_rate, metadata_match per row
    #: [N] intp, candidate i's row of `embeddings` (``pack_request(..., in_place=True)`` of stored candidates,
    #: valid while the store's lock is held); empty (:data:`ALL_ROWS`): candidate i is row i.
    rows: np.ndarray = ALL_ROWS

    @property
    def age_s(self) -> np.ndarray:
        """[N] float32, now - created_at (negative = future)."""
        return self.columns[:, 0]

    @property
    def access_count(self) -> np.ndarray:
        """[N] float32."""
        return self.columns[:, 1]

    @property
    def success_rate(self) -> np.ndarray:
        """[N] float32."""
        return self.columns[:, 2]

    @property
    def metadata_match(self) -> np.ndarray:
        """[N] float32, share of the request's metadata keys the candidate matches."""
        return self.columns[:, 3]


#: Largest float32; host values beyond it would overflow when packed for the kernel.
F32_MAX = float(np.finfo(np.float32).max)
#: Largest squared L2 norm of an embedding: keeps the kernel's float32 norms and dot products finite.
MAX_SQUARED_NORM = F32_MAX / 4
#: Deepest nesting accepted in request and candidate metadata (deeper input would exhaust the stack).
MAX_JSON_DEPTH = 64


def _float_array(name: str, value: Any, dtype: type = np.float32) -> np.ndarray:
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name}: expected numbers, got {type(value).__name__} ({exc})") from exc
    if raw.dtype == dtype:
        return raw
    kind = raw.dtype.kind
    if kind not in "biuf":  # strings, objects, complex: never coerced silently
        raise InvalidInputError(f"{name}: expected numbers, got {type(value).__name__} of dtype {raw.dtype}")
    if kind == "f" and raw.dtype.itemsize > np.dtype(dtype).itemsize:
        with np.errstate(over="ignore"):  # overflow becomes inf, rejected by the checks that follow
            return raw.astype(dtype)
    return raw.astype(dtype)  # integers and wider targets cannot overflow


@numba.njit(cache=True, fastmath={"reassoc"})
def _squares(values: np.ndarray) -> float:  # pragma: no cover - compiled
    """Sum of x^2 in float64 over a [D] float32 vector (reassociated, so it vectorises)."""
    total = 0.0
    for i in range(values.shape[0]):  # indexed, not iterated: only this form vectorises
        v = np.float64(values[i])
        total += v * v
    return total


@numba.njit(cache=True)
def _bad_norms(query: np.ndarray, embeddings: np.ndarray) -> int:  # pragma: no cover - compiled
    """0 when the query [D] and every embedding row [N, D] (float32) are finite with squared L2 norms (float64)
    within MAX_SQUARED_NORM; 1 when the query is not; 2 when a row is not. One native call for both: NaN and
    infinity make a sum NaN or infinite, failing its one comparison."""
    if not _squares(query) <= MAX_SQUARED_NORM:
        return 1
    for i in range(embeddings.shape[0]):
        if not _squares(embeddings[i]) <= MAX_SQUARED_NORM:
            return 2
    return 0


#: No embedding rows / no query, for :func:`_bad_norms` when only the other is checked.
_NO_ROWS = np.empty((0, 0), np.float32)
_NO_QUERY = np.empty(0, np.float32)


def _too_large(rows: np.ndarray) -> np.ndarray:
    """[..., D] finite float32 -> [...] bool: squared L2 norm above MAX_SQUARED_NORM (float64 check)."""
    squared: np.ndarray = np.square(rows, dtype=np.float64).sum(axis=-1)
    return squared > MAX_SQUARED_NORM


def _first_bad(mask: np.ndarray, ids: tuple[str, ...]) -> str:
    index = int(np.flatnonzero(mask)[0])
    return f"candidate {ids[index]!r} (index {index})"


def validate_json_object(name: str, value: Any) -> dict[str, Any] | None:
    """Check that ``value`` is None or a JSON object (str keys, JSON values, finite numbers).

    Values that serialise to JSON are taken as the JSON they give: numpy scalars (``np.str_``,
    ``np.bool_``, ``np.integer``, ``np.floating``, what pandas hands out), subclasses of str, int and
    float, tuples (JSON arrays) and dict subclasses. The result then holds only plain ``dict``, ``list``,
    ``str``, ``int``, ``float``, ``bool`` and ``None``, so :func:`json_equal` compares it the way the
    original compares the serialised JSON. Input that is plain already is not walked twice.

    Examples:
        >>> validate_json_object("metadata", {"lang": "en"})
        {'lang': 'en'}
        >>> validate_json_object("metadata", {"lang": np.str_("en"), "n": np.int64(3), "ok": np.bool_(True)})
        {'lang': 'en', 'n': 3, 'ok': True}
        >>> validate_json_object("metadata", [1, 2])
        Traceback (most recent call last):
        ...
        tinydancer.errors.InvalidInputError: metadata: expected a JSON object (dict with str keys) or None, got list
    """
    if value is None:
        return None
    if _flat_plain(value):  # the common case (a request's own metadata, say), proven valid in one loop
        return dict(value)
    return _validate_in_full(name, value)


def _validate_in_full(name: str, value: Any) -> dict[str, Any]:
    """:func:`validate_json_object` of a value that is not None, without the flat-dict shortcut."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"{name}: expected a JSON object (dict with str keys) or None, got {type(value).__name__}"
        )
    try:
        # Rules out cycles, NaN / infinity (numpy ones too) and values with no JSON form.
        json.dumps(value, allow_nan=False, default=_json_default)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInputError(f"{name}: not a JSON object ({type(exc).__name__}: {exc})") from exc
    if _check_nesting(name, value):
        return dict(value)
    plain: dict[str, Any] = _to_plain(value)
    return plain


#: Exact types of JSON leaves as :func:`json.loads` gives them; anything else is normalised first.
_PLAIN_LEAVES = frozenset({str, int, float, bool, type(None)})
#: The plain leaves Python's ``==`` compares exactly as serde_json does (int needs its range rule).
_PLAIN_SCALARS = _PLAIN_LEAVES - {int}
#: Exact types :func:`json_equal` compares without normalising.
_PLAIN_TYPES = _PLAIN_LEAVES | {dict, list}


def _check_nesting(name: str, value: Mapping[str, Any]) -> bool:
    """Iteratively checks depth <= MAX_JSON_DEPTH and string keys at every level (value is acyclic).

    One pass over the nodes, containers only on the stack (plain leaves cost one set lookup).

    Returns:
        True when every container is a plain dict or list and every key and leaf has a plain JSON
        type (see ``_PLAIN_LEAVES``); False when something must be normalised by ``_to_plain``.
    """
    plain = type(value) is dict
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            if not all(type(k) is str for k in node):
                if not all(isinstance(k, str) for k in node):
                    raise InvalidInputError(f"{name}: JSON object keys must be strings")
                plain = False
            children = node.values()
        else:
            children = node
        if depth >= MAX_JSON_DEPTH and len(children):  # the children would sit at depth + 1
            raise InvalidInputError(f"{name}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        for child in children:
            kind = type(child)
            if kind in _PLAIN_SCALARS:
                continue
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is int:
                if not -(2**63) <= child < 2**64:
                    _check_float_range(name, child)
            elif isinstance(child, Mapping | list | tuple):
                plain = False
                stack.append((child, depth + 1))
            else:
                plain = False
                if isinstance(child, int) and not -(2**63) <= child < 2**64:
                    _check_float_range(name, child)
    return plain


def _check_float_range(name: str, value: int) -> None:
    """serde_json reads an integer beyond i64/u64 as a float64 and rejects one beyond its range."""
    try:
        float(value)
    except OverflowError:
        raise InvalidInputError(
            f"{name}: expected JSON numbers within float64 range (|x| < 1.8e308), "
            f"got an integer of {value.bit_length()} bits"
        ) from None


def _json_leaf(value: Any) -> Any:
    """A scalar as the plain Python value of the JSON it serialises to; anything else unchanged.

    ``np.bool_`` -> bool, ``np.integer`` and int subclasses -> int, ``np.floating`` and float subclasses
    -> float (NaN and infinity stay, for the caller to reject), ``np.str_`` and str subclasses -> str.
    Subclasses convert through the base type, the way :mod:`json` serialises them (an overridden
    ``__str__`` or ``__int__`` is not called).
    """
    if type(value) in _PLAIN_LEAVES:  # bool included: it is an int subclass, but JSON true/false
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int):  # an int subclass (IntEnum, ...); bool is final and returned above
        return int.__int__(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float):  # np.float64 included
        return float.__float__(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _json_default(value: Any) -> Any:
    """``default`` hook of :func:`json.dumps`: numpy scalars with a JSON form, else the usual TypeError."""
    if isinstance(value, np.bool_ | np.integer | np.floating):
        return _json_leaf(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _to_plain(value: Any) -> Any:
    """A validated JSON value (acyclic, depth <= MAX_JSON_DEPTH) rebuilt from plain dict/list/str/int/float/bool."""
    if isinstance(value, Mapping):
        return {str.__str__(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    return _json_leaf(value)


def json_equal(a: Any, b: Any) -> bool:
    """JSON value equality as the original (serde_json) sees it: 1 != 1.0 != true.

    Numbers are compared as serde_json parses them (integers in [-2**63, 2**64) stay integers, larger
    ones become floats). Values that serialise to the same JSON compare equal whatever their Python
    type: numpy scalars, str/int/float subclasses, tuples against lists. Plain JSON values (what
    :func:`validate_json_object` returns) take the fast path: no normalisation.

    Examples:
        >>> json_equal({"a": [1]}, {"a": [1]}), json_equal(1, 1.0), json_equal(True, 1), json_equal(2**64, 2.0**64)
        (True, False, False, True)
        >>> json_equal(np.str_("en"), "en"), json_equal(np.int64(1), 1), json_equal(np.bool_(True), 1)
        (True, True, False)
    """
    kind, other = type(a), type(b)
    if kind is other:
        if kind in _PLAIN_SCALARS:
            return bool(a == b)
        if kind is dict:
            return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
        if kind is list:
            return len(a) == len(b) and all(map(json_equal, a, b))
        if kind is int:
            return a == b or _serde_numbers_equal(a, b)  # unequal integers: both beyond u64/i64 may still match
    elif kind in _PLAIN_TYPES and other in _PLAIN_TYPES:
        # Different plain types are different JSON, except an integer beyond u64/i64 against a float.
        int_and_float = (kind is int and other is float) or (kind is float and other is int)
        return int_and_float and _serde_numbers_equal(a, b)
    return _json_equal_normalised(a, b)


def _serde_numbers_equal(a: int | float, b: int | float) -> bool:
    a, b = _as_serde_number(a), _as_serde_number(b)
    return type(a) is type(b) and a == b


def _json_equal_normalised(a: Any, b: Any) -> bool:
    """json_equal's slow path: a value that is not of a plain JSON type (numpy, subclasses, tuples)."""
    a, b = _json_shallow(a), _json_shallow(b)
    if type(a) in _PLAIN_TYPES and type(b) in _PLAIN_TYPES:
        return json_equal(a, b)
    return type(a) is type(b) and bool(a == b)  # no JSON form (a set, an object): Python equality, as before


def _json_shallow(value: Any) -> Any:
    """One level of ``_to_plain``: dict subclasses -> dict, tuples and list subclasses -> list, scalars -> plain."""
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list | tuple):
        return list(value)
    return _json_leaf(value)


def _as_serde_number(value: Any) -> Any:
    # serde_json keeps integers in [-2**63, 2**64) as integers and parses larger ones as floats.
    if type(value) is int and not -(2**63) <= value < 2**64:
        try:
            return float(value)
        except OverflowError:  # beyond float64: validation rejects these; compare them as integers
            return value
    return value


def metadata_match(query_meta: dict[str, Any] | None, candidate_meta: dict[str, Any] | None) -> float:
    """Share of the query's metadata keys whose value the candidate has too; 0 when either is empty.

    Examples:
        >>> metadata_match({"lang": "en", "tier": 1}, {"lang": "en", "tier": 2})
        0.5
    """
    if not query_meta or not candidate_meta:
        return 0.0
    hits = sum(1 for k, v in query_meta.items() if k in candidate_meta and json_equal(v, candidate_meta[k]))
    return hits / len(query_meta)


_I64_MIN, _U64_END = -(2**63), 2**64
_MISSING = object()


def _flat_plain(value: Any) -> bool:
    """True proves ``value`` a valid JSON object that :func:`validate_json_object` would return unchanged.

    The common case in one loop, with no serialisation: a plain dict of str keys to plain scalars
    (str, bool, None, finite float, int within i64/u64). False means "validate in full" (nested
    values, numpy scalars, subclasses, and every invalid input, whose error the full check raises).

    Examples:
        >>> _flat_plain({"lang": "en", "tier": 1}), _flat_plain({"x": float("nan")}), _flat_plain({"n": [1]})
        (True, False, False)
    """
    if type(value) is not dict:
        return False
    for key, item in value.items():
        kind = type(item)
        if type(key) is not str:
            return False
        if kind is str or kind is bool or item is None:
            continue
        if kind is float:
            if item - item == 0.0:  # NaN and infinities give NaN
                continue
            return False
        if kind is not int or not _I64_MIN <= item < _U64_END:
            return False
    return True


def _metadata_column(query_meta: dict[str, Any] | None, metas: Sequence[Any], ids: tuple[str, ...]) -> list[float]:
    """Every candidate's metadata validated (first bad one raises) and its :func:`metadata_match` share.

    Plain flat candidate metadata (see :func:`_flat_plain`) is matched key by key without serialisation;
    the rest goes through :func:`validate_json_object`. Same values and errors as calling
    ``metadata_match(query_meta, validate_json_object(name, meta))`` per candidate.

    Examples:
        >>> _metadata_column({"lang": "en", "tier": 1}, [{"lang": "en"}, None, {"tier": np.int64(1)}], ("a", "b", "c"))
        [0.5, 0.0, 0.5]
    """
    if len(metas) != len(ids):
        raise InvalidInputError(
            f"candidate_metadata: expected {len(ids)} entries (one per candidate), got {len(metas)}"
        )
    items = tuple(query_meta.items()) if query_meta else ()
    count = len(items)
    out: list[float] = []
    append = out.append
    for cid, meta in zip(ids, metas, strict=True):
        if meta is None:
            append(0.0)
            continue
        flat = _flat_plain(meta)
        if not flat:
            meta = _validate_in_full(f"candidate {cid!r} metadata", meta)
        if not items or not meta:
            append(0.0)
            continue
        hits = 0
        for key, want in items:
            got = meta.get(key, _MISSING)
            if got is _MISSING:
                continue
            # A flat value is a plain scalar (an int within i64/u64): against a value of its own type,
            # == is json_equal. Everything else (other types, nested values) goes through json_equal.
            if flat and type(want) is type(got):
                hits += want == got
            elif json_equal(want, got):
                hits += 1
        append(hits / count)
    return out


def _check_columns(
    columns: CandidateColumns, dim: int, now_s: float, query: np.ndarray = _NO_QUERY
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings [N, D], the three columns [N] float64 (created_at not truncated) and the kernel's [N, 4] table.

    ``query`` (shape and dtype checked, :func:`_query_vector`) has its norm checked in the same compiled pass
    as the embeddings; a bad one raises its own error.
    """
    ids = columns.ids
    n = len(ids)
    for i, cid in enumerate(ids):
        if not isinstance(cid, str):
            raise InvalidInputError(f"candidate id at index {i}: expected str, got {type(cid).__name__}")
    if len(set(ids)) != n:
        seen: set[str] = set()
        dup = next(c for c in ids if c in seen or seen.add(c))  # type: ignore[func-returns-value]
        raise InvalidInputError(f"duplicate candidate id {dup!r}: ids must be unique within a request")
    embeddings = _embedding_matrix(columns.embeddings, ids, dim)
    if _bad_norms(query, embeddings):
        if (query_error := _query_values_error(query)) is not None:
            raise query_error
        bad = ~np.isfinite(embeddings).all(axis=1)
        if bad.any():
            raise InvalidInputError(
                f"{_first_bad(bad, ids)}: embedding holds NaN or infinite values (or values beyond float32 range)"
            )
        bad = _too_large(embeddings)
        if bad.any():
            raise InvalidInputError(
                f"{_first_bad(bad, ids)}: embedding too large: squared L2 norm above {MAX_SQUARED_NORM:.3g} "
                "would overflow float32 in the cosine similarity"
            )
    raw_created = columns.created_at
    if raw_created is None:
        raw_created = np.full(n, now_s)
    elif not isinstance(raw_created, np.ndarray):
        raw_created = [now_s if v is None else v for v in raw_created]
    stacked = _stacked_lists(raw_created, columns.access_count, columns.success_rate, n)
    if stacked is not None:
        access, success = stacked[1], stacked[2]
        created = stacked[0]
    else:
        created = _float_array("created_at", raw_created, np.float64)
        access = _float_array("access_count", columns.access_count, np.float64)
        success = _float_array("success_rate", columns.success_rate, np.float64)
        for name, col in (("created_at", created), ("access_count", access), ("success_rate", success)):
            if col.shape != (n,):
                raise InvalidInputError(f"{name}: expected shape ({n},), got {col.shape}")
    table, ok = _column_table(created, access, success, now_s)
    if ok:
        return embeddings, created, access, success, table
    for name, col in (("created_at", created), ("access_count", access), ("success_rate", success)):
        bad = ~np.isfinite(col)
        if bad.any():
            raise InvalidInputError(f"{_first_bad(bad, ids)}: {name} must be finite, got {col[bad][0]}")
    bad = (access < 0) | (access != np.floor(access))
    if bad.any():
        raise InvalidInputError(
            f"{_first_bad(bad, ids)}: access_count must be a non-negative integer, got {access[bad][0]}"
        )
    bad = (success < 0) | (success > 1)
    if bad.any():
        raise InvalidInputError(f"{_first_bad(bad, ids)}: success_rate must be in [0, 1], got {success[bad][0]}")
    raise AssertionError("_column_table rejected columns no check names")  # pragma: no cover - unreachable


def _stacked_lists(created: Any, access: Any, success: Any, n: int) -> np.ndarray | None:
    """The three columns as one [3, N] float64 array when all are lists or tuples of N real numbers, else None.

    One numpy conversion instead of three (what ``Candidate`` objects and lists give, ~1 us each). Anything
    else (arrays, strings, ragged or nested lists) returns None: the column-by-column path converts it, or
    names what is wrong, so the errors stay the same.
    """
    if not (type(created) in _SEQUENCES and type(access) in _SEQUENCES and type(success) in _SEQUENCES):
        return None
    try:
        stacked = np.array((created, access, success))
    except (TypeError, ValueError, OverflowError):
        return None
    if stacked.shape != (3, n) or stacked.dtype.kind not in "biuf":
        return None
    return stacked if stacked.dtype == np.float64 else stacked.astype(np.float64)


_SEQUENCES = (list, tuple)
_FLOAT32 = np.dtype(np.float32)  # compared as a dtype: cheaper than against the scalar type
#: Largest magnitude below which every integer converts to float64 exactly (no double rounding via float64).
_EXACT_F64_INT = float(2**53)


def _embedding_matrix(raw: Any, ids: tuple[str, ...], dim: int) -> np.ndarray:
    """The candidates' embeddings as one validated [N, D] float32 matrix (values not yet checked).

    ``raw`` is an [N, D] array or a sequence of N rows (what ``Candidate`` objects and lists give). Rows are
    stacked in one numpy call; any input that does not stack into a numeric [N, D] matrix is examined row by
    row, so both kinds of input get the same error for the same bad row, naming the first one.
    """
    n = len(ids)
    if isinstance(raw, np.ndarray):
        if n == 0 or raw.ndim == 0 or raw.shape[0] != n:  # nothing row-wise to name
            embeddings = _float_array("embeddings", raw)
            if embeddings.ndim != 2 or embeddings.shape[1] != dim:
                got = embeddings.shape[1] if embeddings.ndim == 2 else f"shape {embeddings.shape}"
                raise InvalidInputError(f"Vector dimension mismatch: query has {dim}, candidates have {got}")
            return embeddings
        if raw.ndim == 2 and raw.shape[1] == dim and raw.dtype.kind in "biuf":
            return _float_array("embeddings", raw)
        return _embedding_rows(list(raw), ids, dim)  # raises for the first row (every row is alike)
    if n == 0:
        return np.zeros((0, dim), np.float32)
    first = raw[0] if isinstance(raw, _SEQUENCES) else None
    if isinstance(first, np.ndarray) and first.dtype == _FLOAT32:
        if n == 1 and first.shape == (dim,):
            return first[None]  # one float32 row as it comes: a [1, D] view, nothing to stack
        stacked = np.empty((n, dim), np.float32)
        if copy_float32_rows(raw, stacked):  # every row a float32 [D] array: copied in C, no per-row inspection
            return stacked
    try:
        stacked = np.array(raw)  # one pass over the rows; ragged rows raise ValueError
    except (TypeError, ValueError):
        return _embedding_rows(raw, ids, dim)
    if stacked.shape != (n, dim) or stacked.dtype.kind not in "biuf":
        return _embedding_rows(raw, ids, dim)
    embeddings = _float_array("embeddings", stacked)
    # Rows of integers beyond 2**53 stacked with float rows went through float64: convert them row by row.
    if stacked.dtype == np.float64 and not float(np.maximum.reduce(np.abs(embeddings), None)) < _EXACT_F64_INT:
        return _embedding_rows(raw, ids, dim)
    return embeddings


def _embedding_rows(raw: Any, ids: tuple[str, ...], dim: int) -> np.ndarray:
    """Row-by-row conversion of N embeddings: the first bad row raises, naming its candidate."""
    rows = []
    for cid, emb in zip(ids, raw, strict=True):
        row = _float_array(f"candidate {cid!r} embedding", emb)
        if row.ndim != 1 or row.shape[0] != dim:
            got = row.shape[0] if row.ndim == 1 else f"shape {row.shape}"
            raise InvalidInputError(f"Vector dimension mismatch: query has {dim}, candidate {cid!r} has {got}")
        rows.append(row)
    return np.stack(rows) if rows else np.zeros((0, dim), np.float32)


@numba.njit(cache=True)
def _column_table(
    created: np.ndarray, access: np.ndarray, success: np.ndarray, now_s: float, nan_created_is_now: bool = False
) -> tuple[np.ndarray, bool]:  # pragma: no cover - compiled
    """The kernel's [N, 4] float32 column table (age, access count, success rate, metadata match 0) and whether
    the [N] float64 columns are valid: created_at finite, access counts non-negative integers, rates in [0, 1].

    One compiled pass for any N. Ages are float64 ``now_s - created`` clamped to the float32 range (beyond it
    recency is 0, or 1 for the future, either way) and counts clamped above (frequency saturates long before),
    then rounded to float32 once, as numpy's assignment rounds. NaN fails every comparison, so it is invalid
    (except a created_at of NaN with ``nan_created_is_now``, a stored row's "created now": age 0).
    False means the detailed search must find (and name) the offending value.
    """
    n = created.shape[0]
    table = np.zeros((n, 4), np.float32)
    top = F32_MAX
    ok = True
    for i in range(n):
        c, a, r = np.trunc(created[i]), access[i], success[i]  # the original reads whole seconds
        if nan_created_is_now and c != c:
            c = now_s
        ok = ok and -np.inf < c < np.inf and 0.0 <= a < np.inf and a == np.floor(a) and 0.0 <= r <= 1.0
        table[i, 0] = max(min(now_s - c, top), -top)
        table[i, 1] = min(a, top)
        table[i, 2] = r
    return table, ok


def floor_unix_seconds(value: Any) -> float:
    """``now`` of a route call as whole Unix seconds (the original's resolution), validated.

    Raises:
        InvalidInputError: not a finite real number.

    Examples:
        >>> floor_unix_seconds(1_700_000_000.7)
        1700000000.0
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInputError(f"now: expected finite Unix seconds (a real number), got {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds):
        raise InvalidInputError(f"now: expected finite Unix seconds, got {value!r}")
    return float(math.floor(seconds))


def check_query(value: Any) -> np.ndarray:
    """A query embedding validated and as float32: non-empty, 1-D, finite, squared norm within float32 range.

    Args:
        value: shape [D], any numeric array-like.

    Returns:
        shape [D], float32 (``value`` itself when it already is one).

    Raises:
        InvalidInputError: not a non-empty numeric vector, NaN or infinite values, or too large a norm.

    Examples:
        >>> check_query([3, 4]).tolist()
        [3.0, 4.0]
        >>> check_query([[1.0]])
        Traceback (most recent call last):
        ...
        tinydancer.errors.InvalidInputError: query_embedding: expected a non-empty 1-D vector, got shape (1, 1)
    """
    query = _query_vector(value)
    if _bad_norms(query, _NO_ROWS) and (error := _query_values_error(query)) is not None:
        raise error
    return query


def _query_vector(value: Any) -> np.ndarray:
    """A query embedding as a non-empty 1-D float32 vector (its values not yet checked)."""
    query = _float_array("query_embedding", value)
    if query.ndim != 1 or query.size == 0:
        raise InvalidInputError(f"query_embedding: expected a non-empty 1-D vector, got shape {query.shape}")
    return query


def _query_values_error(query: np.ndarray) -> InvalidInputError | None:
    """What is wrong with a query vector's values (NaN or infinity, too large a norm), or None."""
    if not np.isfinite(query).all():
        return InvalidInputError("query_embedding holds NaN or infinite values (or values beyond float32 range)")
    if _too_large(query):
        return InvalidInputError(
            f"query_embedding too large: squared L2 norm above {MAX_SQUARED_NORM:.3g} would overflow float32"
        )
    return None


def check_candidate_columns(
    columns: CandidateColumns, dim: int, now_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every check :func:`pack_request` makes on candidates, with its errors: ids, embeddings, the three columns.

    Args:
        columns: N candidates as columns (``created_at`` entries None = ``now_s``).
        dim: the embedding dimension D they must have.
        now_s: Unix seconds that replace a None ``created_at``.

    Returns:
        embeddings [N, D] float32, created_at [N] float64 (truncated to whole seconds), access_count [N]
        float64, success_rate [N] float64 (metadata is not checked here).

    Raises:
        InvalidInputError: naming the first offending candidate.

    Examples:
        >>> from tinydancer.routing.requests import CandidateColumns
        >>> cols = CandidateColumns(("a",), np.ones((1, 2)), [None], np.zeros(1), np.ones(1))
        >>> [a.tolist() for a in check_candidate_columns(cols, 2, now_s=5.0)]
        [[[1.0, 1.0]], [5.0], [0.0], [1.0]]
    """
    embeddings, created, access, success, _ = _check_columns(columns, dim, now_s)
    return embeddings, np.trunc(created), access, success  # the original reads timestamps as whole seconds


def pack_request(request: RoutingRequest, now_s: float, *, in_place: bool = False) -> PackedRequest:
    """Validate a request and pack it into arrays for the route kernel.

    Args:
        request: the routing request.
        now_s: the current time in Unix seconds (ages are ``now_s - created_at``).
        in_place: for stored candidates (:meth:`RoutingRequest.from_store`) of at most ``HOST_MAX_CANDIDATES``,
            the packed embeddings are the store's own matrix and ``rows`` (no copy): the caller must hold the
            store's lock until it has read them (the Router does, from packing to the end of inference).

    Returns:
        The packed request.

    Raises:
        InvalidInputError: with the offending candidate and what was expected.
    """
    if not isinstance(request, RoutingRequest):
        raise InvalidInputError(f"expected a RoutingRequest, got {type(request).__name__}")
    query = _query_vector(request.query_embedding)  # its values are checked with the embeddings'
    try:
        return _pack_checked(request, query, now_s, in_place)
    except InvalidInputError:
        if (query_error := _query_values_error(query)) is not None:
            raise query_error from None  # a bad query is named first, before anything else in the request
        raise


def _pack_checked(request: RoutingRequest, query: np.ndarray, now_s: float, in_place: bool) -> PackedRequest:
    """:func:`pack_request` after the query's shape: its values are checked in the embeddings' compiled pass."""
    now_s = floor_unix_seconds(now_s) if not isinstance(now_s, float) else now_s
    if not math.isfinite(now_s):
        raise InvalidInputError(f"now: expected finite Unix seconds, got {now_s}")
    metadata = request.metadata
    query_meta = None if metadata is None else validate_json_object("request metadata", metadata)
    selection = request.store_selection
    if selection is not None:
        if _bad_norms(query, _NO_ROWS) and (query_error := _query_values_error(query)) is not None:
            raise query_error
        # Up to the host route's limit it may read the store's rows in place; above it the jitted kernel reads a
        # padded copy in place.
        wanted = selection.candidate_ids  # None: every stored candidate
        padded = (len(selection.store) if wanted is None else len(wanted)) > HOST_MAX_CANDIDATES
        rows = selection.store.snapshot(wanted, padded=padded, in_place=in_place and not padded)
        return pack_stored_rows(rows, query, query_meta, now_s)
    columns = request.columns()
    embeddings, _, _, _, table = _check_columns(columns, query.shape[0], now_s, query)
    if columns.metadata is not None:
        table[:, 3] = _metadata_column(query_meta, columns.metadata, columns.ids)
    return PackedRequest(ids=columns.ids, query=query, embeddings=embeddings, columns=table)


def pack_stored_rows(
    rows: StoredRows, query: np.ndarray, query_meta: dict[str, Any] | None, now_s: float
) -> PackedRequest:
    """Pack a snapshot of stored candidates (validated at insert) for the route kernel: no per-request checks.

    Args:
        rows: the snapshot (:meth:`tinydancer.routing.candidate_store.CandidateStore.snapshot`).
        query: a validated query (:func:`check_query`), shape [D].
        query_meta: the request's validated metadata (:func:`validate_json_object`).
        now_s: Unix seconds, finite (a stored created_at of NaN means "created now": age 0).

    Returns:
        The packed request, the same arrays :func:`pack_request` gives for the same candidates as arrays
        (embeddings normalised: the cosine similarity is unchanged).

    Raises:
        InvalidInputError: the query's dimension is not the store's.

    Examples:
        >>> from tinydancer.routing.requests import StoredRows
        >>> rows = StoredRows(("a",), np.ones((1, 2), np.float32), np.array([[np.nan, 3.0, 0.5]]), None)
        >>> pack_stored_rows(rows, np.ones(2, np.float32), None, now_s=10.0).columns.tolist()
        [[0.0, 3.0, 0.5, 0.0]]
    """
    dim = rows.embeddings.shape[1]
    if query.shape[0] != dim:
        raise InvalidInputError(f"Vector dimension mismatch: query has {query.shape[0]}, candidates have {dim}")
    columns = rows.columns  # [N, 3] float64, validated at insert; a created_at of NaN means "created now"
    table, _ = _column_table(columns[:, 0], columns[:, 1], columns[:, 2], now_s, True)
    # Stored metadata is validated plain JSON already: only a request with metadata needs the matching loop.
    if query_meta and rows.metadata is not None:
        table[:, 3] = _metadata_column(query_meta, rows.metadata, rows.ids)
    in_place = ALL_ROWS if rows.rows is None else rows.rows
    return PackedRequest(ids=rows.ids, query=query, embeddings=rows.embeddings, columns=table, rows=in_place)


def request_features(packed: PackedRequest) -> np.ndarray:
    """Model inputs of a validated, packed request (what the route kernel computes), shape [N, 5].

    Examples:
        >>> from tinydancer.routing.requests import RoutingRequest
        >>> req = RoutingRequest.from_arrays(np.ones(2), np.ones((3, 2)), created_at=[0, 0, 0])
        >>> request_features(pack_request(req, now_s=0)).shape
        (3, 5)
    """
    embeddings = packed.embeddings.take(packed.rows, axis=0) if len(packed.rows) else packed.embeddings
    x = candidate_features(
        packed.query, embeddings, packed.age_s, packed.access_count, packed.success_rate, packed.metadata_match
    )
    return np.asarray(x)
