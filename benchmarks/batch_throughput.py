"""Batch scoring throughput and feature-extraction cost: tinydancer's jitted path vs plain numpy.

Both sides compute the same model (the original's cell, reference §1) on the same arrays; the numpy
side is the straightforward vectorised implementation (BLAS matrix products, numpy ufuncs).
Every measurement is repeated; the median and the best repetition are reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from tinydancer.model import CompatModelConfig, CompatParams, init_compat_params
from tinydancer.model.candidate_features import (
    FEATURE_WEIGHTS,
    FREQUENCY_NORMALISER,
    RECENCY_DECAY_PER_S,
    candidate_features,
)
from tinydancer.routing import DeviceModel
from tinydancer.routing.batch import (
    DEFAULT_CHUNK,
    aligned_empty,
    embedding_chunk_rows,
    embeddings_kernel,
    features_kernel,
    score_embeddings,
    score_features,
)


def numpy_features(query: np.ndarray, embeddings: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The five weighted features in plain numpy, shape [N, 5]."""
    dot = embeddings @ query
    norms = np.sqrt(np.einsum("ij,ij->i", embeddings, embeddings)) * np.sqrt(query @ query)
    sim = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    x = np.empty((embeddings.shape[0], 5), np.float32)
    x[:, 0] = sim
    x[:, 1] = np.exp(-RECENCY_DECAY_PER_S * np.maximum(columns[:, 0], 0.0))
    x[:, 2] = np.minimum(1.0, np.log1p(columns[:, 1]) / FREQUENCY_NORMALISER)
    x[:, 3] = columns[:, 2]
    x[:, 4] = columns[:, 3]
    return x * np.asarray(FEATURE_WEIGHTS, np.float32)


def numpy_forward(params: CompatParams, x: np.ndarray) -> np.ndarray:
    """compat_forward in plain numpy (nu = zeta = 1), shape [N]."""
    update = 1.0 / (1.0 + np.exp(-(x @ params.w_update.T + params.b_update)))
    candidate = np.tanh(x @ params.w_candidate.T + params.b_candidate)
    logits = ((1.0 - update) * candidate) @ params.w_output.T + params.b_output
    out: np.ndarray = 1.0 / (1.0 + np.exp(-logits[:, 0]))
    return out


def repeat(fn: Callable[[], object], reps: int) -> list[float]:
    """Wall seconds of ``reps`` calls after one warm-up call."""
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def repeat_pair(
    ours: Callable[[], object], theirs: Callable[[], object], n: int, reps: int, rounds: int = 3
) -> tuple[list[float], list[float]]:
    """Wall seconds of both, in alternating blocks of back-to-back calls (``rounds`` blocks each).

    Alternating blocks let drift in the machine's load hit both sides alike while each side still
    runs back to back, as a batch job would. Small batches get more calls (about 2 * 10^6
    candidates' worth, at most 500), so a median of ~100 us calls is not a handful of samples.
    """
    calls = max(reps, min(500, 2_000_000 // max(n, 1)))
    per_block = max(1, -(-calls // rounds))
    ours(), theirs()
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        for fn, out in ((ours, a), (theirs, b)):
            for _ in range(per_block):
                t0 = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t0)
    return a, b


def _rate(n: int, seconds: list[float]) -> dict[str, float]:
    return {"median_per_s": n / float(np.median(seconds)), "best_per_s": n / min(seconds), "reps": len(seconds)}


def make_model(seed: int = 0) -> tuple[DeviceModel, CompatParams]:
    """The default random model on the device, and its numpy params."""
    params = init_compat_params(CompatModelConfig(), seed)
    return DeviceModel.from_params(params, CompatModelConfig()), params


def make_batch(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """query [D], embeddings [N, D] and columns [N, 4] (age, count, success, metadata match)."""
    rng = np.random.default_rng(seed)
    embeddings = rng.random((n, dim), dtype=np.float32)
    embeddings -= 0.5
    columns = np.stack(
        [rng.integers(0, 3600, n), rng.integers(0, 1000, n), rng.random(n), rng.random(n)], axis=1
    ).astype(np.float32)
    return rng.random(dim, dtype=np.float32) - 0.5, embeddings, columns


def measure_batch(sizes: list[int], embedding_sizes: list[int], dim: int, reps: int) -> dict[str, Any]:
    """Candidates/s from feature rows and from embeddings, tinydancer vs numpy, plus agreement."""
    model, params = make_model()
    rows: dict[str, Any] = {"features": {}, "embeddings": {}, "embeddings_aligned": {}}
    query, embeddings, columns = make_batch(max(embedding_sizes), dim, seed=7)
    aligned = aligned_empty(embeddings.shape)  # the same values, on a 64-byte boundary: read in place
    aligned[...] = embeddings
    feats = numpy_features(query, embeddings[: max(sizes)], columns[: max(sizes)])
    if feats.shape[0] < max(sizes):
        feats = np.resize(feats, (max(sizes), 5))
    for n in sizes:
        x = feats[:n]
        td, ref = repeat_pair(lambda x=x: score_features(model, x), lambda x=x: numpy_forward(params, x), n, reps)
        err = float(np.abs(score_features(model, x) - numpy_forward(params, x)).max())
        rows["features"][n] = {"tinydancer": _rate(n, td), "numpy": _rate(n, ref), "max_abs_diff": err}
    for kind, source in (("embeddings", embeddings), ("embeddings_aligned", aligned)):
        for n in embedding_sizes:
            e, c = source[:n], columns[:n]
            td, ref = repeat_pair(
                lambda e=e, c=c: score_embeddings(model, query, e, c),
                lambda e=e, c=c: numpy_forward(params, numpy_features(query, e, c)),
                n,
                reps,
            )
            reference = numpy_forward(params, numpy_features(query, e, c))
            err = float(np.abs(score_embeddings(model, query, e, c) - reference).max())
            rows[kind][n] = {"tinydancer": _rate(n, td), "numpy": _rate(n, ref), "max_abs_diff": err}
    rows["compile_cache"] = {
        "features_chunk": features_kernel(model.config)._cache_size(),
        "embeddings_chunk": embeddings_kernel(model.config)._cache_size(),
    }
    rows["chunk_size"] = DEFAULT_CHUNK
    rows["embedding_chunk_rows"] = embedding_chunk_rows(dim)
    rows["embeddings_alignment_bytes"] = {"embeddings": embeddings.ctypes.data % 64, "embeddings_aligned": 0}
    return rows


def measure_feature_extraction(n: int, dim: int, reps: int) -> dict[str, Any]:
    """ns per candidate of the five features at ``dim``: jitted (device-resident input) vs numpy."""
    query, embeddings, columns = make_batch(n, dim, seed=11)
    jq, je, jc = jax.device_put(query), jax.device_put(embeddings), jax.device_put(columns)
    jitted = jax.jit(lambda q, e, c: candidate_features(q, e, c[:, 0], c[:, 1], c[:, 2], c[:, 3]))
    td = repeat(lambda: jitted(jq, je, jc).block_until_ready(), reps)
    ref = repeat(lambda: numpy_features(query, embeddings, columns), reps)
    return {
        "n": n,
        "dim": dim,
        "tinydancer_ns_per_candidate": {"median": float(np.median(td)) / n * 1e9, "best": min(td) / n * 1e9},
        "numpy_ns_per_candidate": {"median": float(np.median(ref)) / n * 1e9, "best": min(ref) / n * 1e9},
    }
