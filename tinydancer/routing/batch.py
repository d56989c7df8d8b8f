"""Offline batch scoring: the route kernel's model over 10^5-10^7 candidates, chunked and jitted.

Two entry points share one pure, jitted core per chunk:

* :func:`score_features` from precomputed (weighted) feature rows ``x`` of shape [N, 5];
* :func:`score_embeddings` from a query and candidate embeddings [N, D] plus the candidate columns,
  computing the five features on the fly (one pass over the embeddings per chunk).

The model is the original's cell, through its one forward pass
(:func:`tinydancer.model.original.compat_forward`) in its unrolled form: the tiny matrices become
scalar-times-column sums, so XLA fuses a whole chunk into one vectorised loop instead of calling a
[N, 5] x [5, 8] matrix product. Chunks are a fixed size (the last one is padded), so each entry point
compiles once per (chunk size, embedding dimension).

Examples:
    >>> import numpy as np
    >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
    >>> from tinydancer.routing.kernel import DeviceModel
    >>> model = DeviceModel.from_params(init_compat_params(CompatModelConfig(), 0), CompatModelConfig())
    >>> p = score_features(model, np.zeros((5, 5), np.float32), chunk_size=4)
    >>> p.shape, bool(np.allclose(p, 0.5))
    ((5,), True)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import numpy as np

from tinydancer.errors import InvalidInputError
from tinydancer.model.candidate_features import candidate_features
from tinydancer.model.original import CompatModelConfig, compat_forward
from tinydancer.routing.kernel import DeviceModel

#: Feature rows per jitted call: large enough to amortise dispatch (~10 us); 1.3 MB of input.
DEFAULT_CHUNK = 65536
#: Embedding bytes per jitted call. The similarity reads a chunk twice (dot product, then norms); a
#: chunk that stays in the last-level cache makes the second read cheap, and a large one amortises
#: the dispatch: 8192 rows of 384-d (12 MiB) were fastest here (benchmarks/batch_throughput.py).
EMBEDDING_CHUNK_BYTES = 12 * 1024 * 1024
#: XLA's CPU client reads a host array in place, without a copy, when it starts on this boundary.
ALIGNMENT_BYTES = 64


def aligned_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised C-contiguous float32 array starting on a 64-byte boundary.

    Embeddings kept in such an array are scored in place by :func:`score_embeddings` (numpy's own
    arrays usually start 16 bytes off, and each chunk is then copied once more).

    Examples:
        >>> a = aligned_empty((3, 384))
        >>> a.shape, a.ctypes.data % ALIGNMENT_BYTES, a.flags.c_contiguous
        ((3, 384), 0, True)
    """
    size = math.prod(shape) * 4
    raw = np.empty(size + ALIGNMENT_BYTES, np.uint8)
    offset = -_address(raw) % ALIGNMENT_BYTES
    return raw[offset : offset + size].view(np.float32).reshape(shape)


def _address(array: np.ndarray) -> int:
    address: int = array.__array_interface__["data"][0]  # cheaper than .ctypes.data
    return address


def _in_place(block: np.ndarray) -> bool:
    """Whether XLA can read ``block`` without copying it."""
    return block.dtype == np.float32 and block.flags.c_contiguous and _address(block) % ALIGNMENT_BYTES == 0


def embedding_chunk_rows(dim: int) -> int:
    """Default rows per jitted call for ``dim``-wide embeddings: a power of two of ~12 MiB, 64 at least.

    Examples:
        >>> embedding_chunk_rows(384), embedding_chunk_rows(4096)
        (8192, 512)
    """
    rows = max(1, EMBEDDING_CHUNK_BYTES // (4 * max(dim, 1)))
    return max(64, 1 << (rows.bit_length() - 1))


def _features_chunk(flat: jax.Array, x: jax.Array, config: CompatModelConfig) -> jax.Array:
    """The original's forward pass, unrolled (elementwise only, so it fuses into one loop), x [N, I] -> [N]."""
    return compat_forward(config.unflatten(flat), x, config.nu, config.zeta, unroll=True)


def _embeddings_chunk(
    flat: jax.Array, query: jax.Array, embeddings: jax.Array, columns: jax.Array, config: CompatModelConfig
) -> jax.Array:
    x = candidate_features(query, embeddings, columns[:, 0], columns[:, 1], columns[:, 2], columns[:, 3])
    return _features_chunk(flat, x, config)


@functools.cache
def features_kernel(config: CompatModelConfig) -> Callable[..., jax.Array]:
    """The jitted chunk scorer from feature rows, ``config`` bound (one compile cache per model config).

    Examples:
        >>> features_kernel(CompatModelConfig()) is features_kernel(CompatModelConfig())
        True
    """
    return jax.jit(functools.partial(_features_chunk, config=config))


@functools.cache
def embeddings_kernel(config: CompatModelConfig) -> Callable[..., jax.Array]:
    """The jitted chunk scorer from embeddings (features computed inside), ``config`` bound."""
    return jax.jit(functools.partial(_embeddings_chunk, config=config))


def _rows_per_call(n: int, chunk_size: int) -> int:
    """Rows of every jitted call: the chunk, or for smaller inputs the next power of two (few compiles)."""
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise InvalidInputError(f"chunk_size: expected an integer >= 1, got {chunk_size!r}")
    return min(chunk_size, 1 << max(n - 1, 0).bit_length())


def _padded(block: np.ndarray, rows: int, staging: np.ndarray | None = None) -> np.ndarray:
    """``block`` as ``rows`` rows: itself when XLA can read it in place, else copied into ``staging``
    (an aligned [rows, ...] buffer reused across chunks) with zero rows after the data."""
    if block.shape[0] == rows and (staging is None or _in_place(block)):
        return block
    if staging is None:  # small blocks: a copy is cheaper for XLA than aliasing fresh memory
        out = np.zeros((rows, *block.shape[1:]), np.float32)
        out[: block.shape[0]] = block
        return out
    staging[: block.shape[0]] = block
    staging[block.shape[0] :] = 0
    return staging


def _compat_config(model: DeviceModel) -> CompatModelConfig:
    if not isinstance(model.config, CompatModelConfig):
        raise InvalidInputError(
            "batch scoring unrolls the original's model; for a FastGRNN use tinydancer.model.fastgrnn.fastgrnn_predict"
        )
    return model.config


def score_features(model: DeviceModel, features: np.ndarray, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Confidence of every precomputed feature row.

    Args:
        model: the device model (the router's ``router.model``).
        features: weighted features as :func:`tinydancer.model.candidate_features.candidate_features` gives
            them, shape [N, I].
        chunk_size: rows per jitted call.

    Returns:
        confidence, shape [N], float32.

    Raises:
        InvalidInputError: features are not [N, input_dim].

    Examples:
        >>> import numpy as np
        >>> from tinydancer.model.original import CompatModelConfig, init_compat_params, compat_forward
        >>> params = init_compat_params(CompatModelConfig(), 1)
        >>> model = DeviceModel.from_params(params, CompatModelConfig())
        >>> x = np.random.default_rng(0).uniform(size=(10, 5)).astype(np.float32)
        >>> bool(np.allclose(score_features(model, x, chunk_size=4), compat_forward(params, x, 1.0, 1.0), atol=1e-6))
        True
    """
    config = _compat_config(model)
    x = np.ascontiguousarray(features, np.float32)
    if x.ndim != 2 or x.shape[1] != config.input_dim:
        raise InvalidInputError(f"features: expected shape [N, {config.input_dim}], got {x.shape}")
    n = x.shape[0]
    rows = _rows_per_call(n, chunk_size)
    out = np.empty(n, np.float32)
    kernel = features_kernel(config)
    for start in range(0, n, rows):
        block = _padded(x[start : start + rows], rows)
        out[start : start + rows] = np.asarray(kernel(model.flat, block))[: n - start]
    return out


def score_embeddings(
    model: DeviceModel,
    query: np.ndarray,
    embeddings: np.ndarray,
    columns: np.ndarray | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Confidence of every candidate, features computed from the embeddings on the fly.

    Args:
        model: the device model.
        query: shape [D].
        embeddings: shape [N, D].
        columns: age_s, access_count, success_rate, metadata_match per candidate, shape [N, 4];
            None means all zeros (age 0, never accessed, success 0, no metadata match).
        chunk_size: candidates per jitted call; None: :func:`embedding_chunk_rows` of D.

    Returns:
        confidence, shape [N], float32; the route kernel's confidence for the same candidates.

    Raises:
        InvalidInputError: shapes disagree.

    Examples:
        >>> import numpy as np
        >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
        >>> from tinydancer.routing.kernel import run_route_kernel
        >>> model = DeviceModel.from_params(init_compat_params(CompatModelConfig(), 2), CompatModelConfig())
        >>> rng = np.random.default_rng(0)
        >>> q, e = rng.normal(size=8).astype(np.float32), rng.normal(size=(6, 8)).astype(np.float32)
        >>> columns = np.zeros((6, 4), np.float32)
        >>> ref = run_route_kernel(model, q, e, columns, 0.85, 0.15)[0]
        >>> bool(np.allclose(score_embeddings(model, q, e, chunk_size=4), ref, atol=1e-6))
        True
    """
    config = _compat_config(model)
    q = np.asarray(query, np.float32)
    e = np.asarray(embeddings, np.float32)
    if q.ndim != 1 or e.ndim != 2 or e.shape[1] != q.shape[0]:
        raise InvalidInputError(f"expected query [D] and embeddings [N, D], got {q.shape} and {e.shape}")
    n = e.shape[0]
    cols = np.zeros((n, 4), np.float32) if columns is None else np.asarray(columns, np.float32)
    if cols.shape != (n, 4):
        raise InvalidInputError(f"columns: expected shape ({n}, 4), got {cols.shape}")
    chunk_size = embedding_chunk_rows(q.shape[0]) if chunk_size is None else chunk_size
    rows = _rows_per_call(n, chunk_size)
    out = np.empty(n, np.float32)
    kernel = embeddings_kernel(config)
    staging = None if _in_place(e) and n % rows == 0 else aligned_empty((rows, q.shape[0]))
    for start in range(0, n, rows):
        emb = _padded(e[start : start + rows], rows, staging)
        col = _padded(cols[start : start + rows], rows)
        out[start : start + rows] = np.asarray(kernel(model.flat, q, emb, col))[: n - start]
    return out
