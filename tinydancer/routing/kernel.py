"""The route kernel: features -> model -> uncertainty -> decision in ONE jitted function.

Parameters stay on the device; candidate counts are padded to a few bucket sizes so the kernel
compiles once per (bucket, embedding dimension) and never in steady state. The kernel knows the model
only through the model interface (:class:`tinydancer.model.family.ModelFamily`), so either model family
serves through it. :func:`run_route` (what the Router calls) hands requests of at most
``HOST_MAX_CANDIDATES`` candidates to the kernel's twin compiled for the host (:mod:`.host_kernel`)
instead, because there a jitted call's fixed cost is most of a route.

Examples:
    >>> import numpy as np
    >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
    >>> model = DeviceModel.from_params(init_compat_params(CompatModelConfig(), 0), CompatModelConfig())
    >>> columns = np.zeros((3, 4), np.float32)  # age, access count, success rate, metadata match
    >>> conf, unc, light = run_route_kernel(model, np.ones(4, np.float32), np.ones((3, 4), np.float32),
    ...                                     columns, 0.85, 0.15)
    >>> conf.shape, bool(light.any())
    ((3,), False)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tinydancer.errors import InferenceError
from tinydancer.model.candidate_features import candidate_features
from tinydancer.model.family import ModelFamily
from tinydancer.routing.host_kernel import ALL_ROWS, HostRoute, host_route

#: Candidate counts are padded up to the next of these; above the last, to a multiple of it.
#: Powers of two waste at most half the work; below 8 one more compile is not worth a bucket.
BUCKETS: tuple[int, ...] = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
#: Buckets up to this size pass the kernel ONE host buffer (query, limits, columns, then the embeddings): every
#: host argument of a jitted call costs microseconds to hand over, more than copying <= 96 KiB of rows at dim
#: 384 (route at 1 / 10 candidates: 28 -> 16 / 42 -> 22 us per kernel call, benchmarks/small_requests.py).
#: Larger buckets pass the embeddings on their own, read in place.
ONE_BUFFER_MAX_BUCKET = 64
#: Requests of up to this many candidates are routed by the kernel's twin compiled for the host
#: (:mod:`.host_kernel`) when the model has one. Measured on a 2-core x86 CPU (``python -m benchmarks.host_route``:
#: dim 384, default compat model, ``run_route`` against ``run_route_kernel``, medians): 3.6 vs 23.7 us at 1
#: candidate, 18 vs 73 at 64, 62 vs 145 at 256, 238 vs 395 at 1000, and about even (1451 vs 1426) at 4000.
#: Above this the jitted kernel serves: it is the reference, it runs on an accelerator, and XLA can spread a
#: large request over several cores.
HOST_MAX_CANDIDATES = 1024
#: The InferenceError of a model whose scores are not all finite and in [0, 1].
BROKEN_SCORES = "model produced NaN, infinite or out-of-range confidences or uncertainties"


def bucket_size(n: int) -> int:
    """Padded candidate count for ``n`` candidates.

    Examples:
        >>> [bucket_size(n) for n in (0, 1, 2, 100, 1000, 8192, 8193)]
        [1, 1, 8, 128, 1024, 8192, 16384]
    """
    for size in BUCKETS:
        if n <= size:
            return size
    top = BUCKETS[-1]
    return -(-n // top) * top


def uncertainty_of(confidence: jax.Array) -> jax.Array:
    """The original's uncertainty: clamp(1 - 2 |p - 0.5|, 0, 1).

    Examples:
        >>> import jax.numpy as jnp
        >>> [round(float(v), 3) for v in uncertainty_of(jnp.array([0.5, 0.9, 0.0]))]
        [1.0, 0.2, 0.0]
    """
    return jnp.clip(1.0 - 2.0 * jnp.abs(confidence - 0.5), 0.0, 1.0)


def decide(confidence: jax.Array, uncertainty: jax.Array, threshold: jax.Array, max_unc: jax.Array) -> jax.Array:
    """Lightweight when confidence >= threshold AND uncertainty <= max_uncertainty.

    Examples:
        >>> import jax.numpy as jnp
        >>> decide(jnp.array([0.9, 0.95]), jnp.array([0.2, 0.1]), 0.85, 0.15).tolist()
        [False, True]
    """
    return (confidence >= threshold) & (uncertainty <= max_unc)


class DeviceModel(NamedTuple):
    """A loaded model: its config (the model interface, static) and its flat parameters on the device.

    Swapped whole on reload (atomic). ``flat`` holds every tensor in one device vector (the family's
    ``flatten``): the route kernel takes the model as that one argument, because each argument of a
    jitted call costs microseconds to pass. ``config`` is a
    :class:`~tinydancer.model.original.CompatModelConfig` (the original's model) or a
    :class:`~tinydancer.model.served_fastgrnn.ServedFastGRNN` (a trained FastGRNN on the same features);
    the kernel calls only its :class:`~tinydancer.model.family.ModelFamily` methods.
    """

    config: ModelFamily[Any]
    flat: jax.Array
    #: The same model's whole route compiled for the host, for small requests (:func:`host_route`), or None:
    #: kernel only.
    host: HostRoute | None = None

    @property
    def kernel(self) -> Callable[..., jax.Array]:
        """The route kernel jitted for this model's config (shared by every model of the same shapes)."""
        return jitted_route_kernel(self.config)

    @classmethod
    def from_params(cls, params: Any, config: ModelFamily[Any]) -> DeviceModel:
        """Flatten a model's params (either family) and put them on the default device.

        Examples:
            >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
            >>> model = DeviceModel.from_params(init_compat_params(CompatModelConfig(), 0), CompatModelConfig())
            >>> model.kind, model.flat.shape
            ('compat', (217,))
        """
        flat = config.flatten(params)
        return cls(config, jnp.asarray(flat), host_route(config, flat))

    @property
    def kind(self) -> str:
        """'compat' (the original's model) or 'fastgrnn'."""
        return self.config.kind

    @property
    def params(self) -> Any:
        """The family's params, as device arrays sliced from ``flat``."""
        return self.config.unflatten(self.flat)


def route_kernel(
    flat_params: jax.Array,
    embeddings: jax.Array | None,
    small: jax.Array,
    config: ModelFamily[Any],
    dim: int | None = None,
) -> jax.Array:
    """Confidence, uncertainty and decision of every (padded) candidate, fused.

    Few arguments and one output keep the per-call dispatch and transfer cost low: large buckets pass the
    embeddings alone and contiguous, so the similarity reads them in place; small ones (``embeddings`` None)
    append them to ``small``, so the call hands over one host buffer.

    Args:
        flat_params: ``DeviceModel.flat``.
        embeddings: shape [B, D]; or None: the last B * D values of ``small`` are them, row-major.
        small: shape [D + 2 + 4 B] (+ B D without ``embeddings``): the query, confidence_threshold,
            max_uncertainty, then per candidate age_s, access_count, success_rate, metadata_match
            (row-major [B, 4]).
        config: the model's config (static): its ``forward`` gives the confidence.
        dim: D (static); needed only without ``embeddings``.

    Returns:
        shape [3, B]: confidence, uncertainty, and use_lightweight as 0.0 / 1.0.
    """
    if embeddings is None:
        assert dim is not None, "route_kernel: dim is required when the embeddings travel in `small`"
        size = (small.shape[0] - dim - 2) // (dim + 4)
        head = dim + 2 + 4 * size
        embeddings, small = small[head:].reshape(size, dim), small[:head]
    size, dim = embeddings.shape
    query, columns = small[:dim], small[dim + 2 :].reshape(size, 4)
    x = candidate_features(query, embeddings, columns[:, 0], columns[:, 1], columns[:, 2], columns[:, 3])
    confidence = config.forward(flat_params, x)
    uncertainty = uncertainty_of(confidence)
    light = decide(confidence, uncertainty, small[dim], small[dim + 1])
    return jnp.stack([confidence, uncertainty, light.astype(jnp.float32)])


@functools.cache
def jitted_route_kernel(config: ModelFamily[Any]) -> Callable[..., jax.Array]:
    """:func:`route_kernel` jitted with ``config`` bound: ``kernel(flat_params, embeddings, small)``, or
    ``kernel(flat_params, None, small_and_embeddings, dim=D)`` for small buckets (one compile cache for both).

    One jitted function per config, shared by every model of those shapes, so reloading a model
    compiles nothing; ``._cache_size()`` counts its compiled buckets. (Binding the config instead of
    passing it as a static argument on every call made no measurable difference to the call itself.)

    Examples:
        >>> from tinydancer.model.original import CompatModelConfig
        >>> cfg = CompatModelConfig()
        >>> jitted_route_kernel(cfg) is jitted_route_kernel(CompatModelConfig())
        True
    """
    return jax.jit(functools.partial(route_kernel, config=config), static_argnames="dim")


def _pad_rows(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` [n, ...] as ``size`` rows: itself, the padded buffer it leads (no copy), or a zero-padded copy.

    Rows are independent in the kernel and only the first n outputs are read, so what the rows after n of
    a leading buffer hold cannot change a result (a store snapshot zero-fills them).
    """
    if array.dtype == np.float32 and array.flags.c_contiguous:
        if array.shape[0] == size:
            return array
        base = array.base
        if (
            type(base) is np.ndarray
            and base.shape == (size, *array.shape[1:])
            and base.dtype == np.float32
            and base.flags.c_contiguous
            and base.__array_interface__["data"][0] == array.__array_interface__["data"][0]
        ):
            return base
    padded = np.zeros((size, *array.shape[1:]), np.float32)
    padded[: array.shape[0]] = array
    return padded


class KernelOutputs(NamedTuple):
    """What :func:`run_route_kernel` returns, already checked: every score finite and in [0, 1]."""

    confidence: np.ndarray  # [N] float32
    uncertainty: np.ndarray  # [N] float32
    use_lightweight: np.ndarray  # [N] bool


def run_route_kernel(
    model: DeviceModel,
    query: np.ndarray,
    embeddings: np.ndarray,
    columns: np.ndarray,
    threshold: float,
    max_uncertainty: float,
) -> KernelOutputs:
    """Pad to the bucket, pack the small inputs into one vector, run the jitted kernel, return the real N.

    Args:
        model: the device model.
        query: shape [D], float32.
        embeddings: shape [N, D], float32.
        columns: shape [N, 4]: age_s, access_count, success_rate, metadata_match per candidate.
        threshold: confidence threshold.
        max_uncertainty: uncertainty limit.

    Returns:
        (confidence [N] float32, uncertainty [N] float32, use_lightweight [N] bool).

    Raises:
        InferenceError: a score is NaN, infinite or outside [0, 1] (a broken model).
    """
    n, dim = embeddings.shape
    size = bucket_size(n)
    head = dim + 2 + 4 * size
    one_buffer = size <= ONE_BUFFER_MAX_BUCKET
    small = np.zeros(head + size * dim if one_buffer else head, np.float32)
    small[:dim] = query
    small[dim : dim + 2] = threshold, max_uncertainty
    small[dim + 2 : dim + 2 + 4 * n] = columns.reshape(-1)
    if one_buffer:
        small[head : head + n * dim] = embeddings.reshape(-1)
        out = np.asarray(model.kernel(model.flat, None, small, dim=dim))
    else:
        out = np.asarray(model.kernel(model.flat, _pad_rows(embeddings, size), small))
    scores = out[:2, :n]
    # Every score is checked (NaN fails every comparison); callers trust KernelOutputs. A few scores are
    # compared as Python floats, more by two C-level reductions (each numpy call costs ~1 us).
    if n <= 4:
        valid = all(0.0 <= v <= 1.0 for v in scores.ravel().tolist())
    else:
        valid = bool(np.minimum.reduce(scores, axis=None) >= 0 and np.maximum.reduce(scores, axis=None) <= 1)
    if not valid:
        raise InferenceError(BROKEN_SCORES)
    return KernelOutputs(out[0, :n], out[1, :n], out[2, :n] > 0.5)


def run_route(
    model: DeviceModel,
    query: np.ndarray,
    embeddings: np.ndarray,
    columns: np.ndarray,
    threshold: float,
    max_uncertainty: float,
    rows: np.ndarray = ALL_ROWS,
) -> KernelOutputs:
    """:func:`run_route_kernel`, or for at most ``HOST_MAX_CANDIDATES`` candidates its twin compiled for the host.

    Same arguments, outputs (to float32 rounding), checks and errors as :func:`run_route_kernel`; the host
    path serves only models with a host forward (``DeviceModel.host``). With ``rows`` [N], candidate i is row
    ``rows[i]`` of ``embeddings`` (a candidate store's matrix, read in place by the host route; the jitted kernel
    gets those rows gathered).

    Raises:
        InferenceError: a score is NaN, infinite or outside [0, 1] (a broken model).

    Examples:
        >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
        >>> model = DeviceModel.from_params(init_compat_params(CompatModelConfig(), 0), CompatModelConfig())
        >>> out = run_route(model, np.ones(4, np.float32), np.ones((2, 4), np.float32),
        ...                 np.zeros((2, 4), np.float32), 0.85, 0.15)
        >>> out.confidence.dtype.name, out.use_lightweight.tolist()
        ('float32', [False, False])
    """
    host = model.host
    if host is None or len(columns) > HOST_MAX_CANDIDATES:
        if len(rows):
            embeddings = embeddings.take(rows, axis=0)
        return run_route_kernel(model, query, embeddings, columns, threshold, max_uncertainty)
    confidence, uncertainty, light, valid = host(query, embeddings, columns, threshold, max_uncertainty, rows)
    if not valid:  # the kernel's check, made inside the host route
        raise InferenceError(BROKEN_SCORES)
    return KernelOutputs(confidence, uncertainty, light)
