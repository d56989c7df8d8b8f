"""The original's five candidate features, as pure array functions (reference §1).

x = [0.4 sim, 0.2 recency, 0.15 frequency, 0.15 success, 0.1 metadata]; every function works on
numpy or JAX arrays and is traced inside the router's one jitted route kernel.

Examples:
    >>> import numpy as np
    >>> q = np.array([1.0, 0.0], np.float32)
    >>> e = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32)
    >>> np.asarray(cosine_similarity(q, e)).round(3).tolist()
    [1.0, 0.0, 0.0]
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array | np.ndarray

#: Element-wise weights the original applies to [sim, recency, frequency, success, metadata].
FEATURE_WEIGHTS: tuple[float, ...] = (0.4, 0.2, 0.15, 0.15, 0.1)
#: Recency decay per second of age: exp(-0.001 * age), a half-life of ~11.6 minutes.
RECENCY_DECAY_PER_S = 0.001
#: Access counts saturate at ln(1 + 10000).
FREQUENCY_NORMALISER = math.log(1.0 + 10000.0)


def cosine_similarity(query: Array, embeddings: Array) -> jax.Array:
    """Cosine of the query with every candidate; zero vs zero is 1.0, zero vs non-zero is 0.0.

    Args:
        query: shape [D].
        embeddings: shape [N, D].

    Returns:
        shape [N], in [-1, 1] (negative cosines are kept, as in the original).

    Examples:
        >>> import numpy as np
        >>> float(cosine_similarity(np.zeros(3, np.float32), np.zeros((1, 3), np.float32))[0])
        1.0
    """
    with np.errstate(invalid="ignore"):  # numpy inputs: OpenBLAS's small kernels can flag a spurious FE_INVALID
        dot = embeddings @ query  # (numpy #24067); a NaN input still gives NaN, only the warning is dropped
    query_norm = jnp.sqrt(jnp.sum(query * query))
    cand_norm = jnp.sqrt(jnp.sum(embeddings * embeddings, axis=-1))
    denom = jnp.where(query_norm * cand_norm > 0, query_norm * cand_norm, 1.0)
    both_zero = (query_norm == 0) & (cand_norm == 0)
    either_zero = (query_norm == 0) | (cand_norm == 0)
    return jnp.where(both_zero, 1.0, jnp.where(either_zero, 0.0, dot / denom))


def recency(age_s: Array) -> jax.Array:
    """exp(-0.001 * max(0, age)); future timestamps (negative age) give 1.0.

    Examples:
        >>> import numpy as np
        >>> np.asarray(recency(np.array([0.0, -5.0, 693.147], np.float32))).round(3).tolist()
        [1.0, 1.0, 0.5]
    """
    return jnp.exp(-RECENCY_DECAY_PER_S * jnp.maximum(age_s, 0.0))


def frequency(access_count: Array) -> jax.Array:
    """min(1, ln(1 + count) / ln(10001)).

    Examples:
        >>> import numpy as np
        >>> np.asarray(frequency(np.array([0.0, 10000.0, 1e6], np.float32))).round(3).tolist()
        [0.0, 1.0, 1.0]
    """
    return jnp.minimum(1.0, jnp.log1p(access_count) / FREQUENCY_NORMALISER)


def candidate_features(
    query: Array,
    embeddings: Array,
    age_s: Array,
    access_count: Array,
    success_rate: Array,
    metadata_match: Array,
) -> jax.Array:
    """The model input of every candidate, weighted as in the original.

    Args:
        query: shape [D].
        embeddings: shape [N, D].
        age_s: seconds since each candidate was created (now - created_at), shape [N].
        access_count: shape [N], non-negative.
        success_rate: shape [N].
        metadata_match: share of query metadata keys the candidate matches, shape [N].

    Returns:
        x, shape [N, 5].

    Examples:
        >>> import numpy as np
        >>> x = candidate_features(np.ones(2, np.float32), np.ones((1, 2), np.float32),
        ...                        np.zeros(1), np.zeros(1), np.ones(1), np.ones(1))
        >>> np.asarray(x, np.float64).round(3).tolist()
        [[0.4, 0.2, 0.0, 0.15, 0.1]]
    """
    columns = (
        cosine_similarity(query, embeddings),
        recency(age_s),
        frequency(access_count),
        jnp.asarray(success_rate, jnp.float32),
        jnp.asarray(metadata_match, jnp.float32),
    )
    weights = jnp.asarray(FEATURE_WEIGHTS, jnp.float32)
    return jnp.stack(columns, axis=-1).astype(jnp.float32) * weights
