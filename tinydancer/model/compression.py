"""FastGRNN compression: iterative-hard-thresholding sparsity and int8 byte quantisation.

Kusupati et al. (2018) train in three stages: dense (low-rank) -> IHT, projecting the matrices onto
their top-s fraction by magnitude every ~15 batches -> freeze that support and retrain; then quantise
to bytes. :func:`iht_project` is the projection, :func:`support_mask` / :func:`apply_support` freeze
the support (used by :mod:`tinydancer.learning.train`), :func:`quantize_params` stores every vector/matrix as
int8 with one float32 scale per tensor, and the jitted forward dequantises inside the computation.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tinydancer.errors import InvalidInputError
from tinydancer.model.fastgrnn import FastGRNNParams

#: The recurrent matrices (or their low-rank factors) that sparsity applies to, as in the paper.
SPARSE_FIELDS: tuple[str, ...] = ("w1", "w2", "u1", "u2")


class QuantizedTensor(NamedTuple):
    """Symmetric per-tensor int8 storage: ``value ~= values * scale``.

    Attributes:
        values: int8 array, any shape.
        scale: [] float32, ``max|x| / 127`` (1.0 for an all-zero tensor).
    """

    values: jax.Array
    scale: jax.Array


class QuantizedFastGRNNParams(NamedTuple):
    """:class:`~tinydancer.model.fastgrnn.FastGRNNParams` with every vector/matrix held as int8.

    The four pre-sigmoid / bias scalars stay float32 (16 bytes).
    """

    w1: QuantizedTensor
    w2: QuantizedTensor | None
    u1: QuantizedTensor
    u2: QuantizedTensor | None
    b_z: QuantizedTensor
    b_h: QuantizedTensor
    zeta_raw: jax.Array
    nu_raw: jax.Array
    head_w: QuantizedTensor
    head_b: jax.Array


def quantize_tensor(x: jax.Array | np.ndarray) -> QuantizedTensor:
    """Quantise one tensor to int8 with a per-tensor symmetric scale (round to nearest).

    Args:
        x: Float array, any shape.

    Returns:
        The int8 values and float32 scale.

    Examples:
        >>> q = quantize_tensor(jnp.array([0.5, -1.0, 0.25]))
        >>> q.values.dtype.name, q.values.tolist()
        ('int8', [64, -127, 32])
    """
    arr = jnp.asarray(x, jnp.float32)
    peak = jnp.max(jnp.abs(arr)) if arr.size else jnp.asarray(0.0, jnp.float32)
    scale = jnp.where(peak > 0, peak / 127.0, 1.0).astype(jnp.float32)
    values = jnp.clip(jnp.round(arr / scale), -127, 127).astype(jnp.int8)
    return QuantizedTensor(values=values, scale=scale)


def dequantize_tensor(q: QuantizedTensor) -> jax.Array:
    """Float32 reconstruction ``values * scale``.

    Examples:
        >>> dequantize_tensor(quantize_tensor(jnp.array([0.5, -1.0]))).tolist()
        [0.5039370059967041, -1.0]
    """
    return q.values.astype(jnp.float32) * q.scale


def quantize_params(params: FastGRNNParams) -> QuantizedFastGRNNParams:
    """Quantise every vector/matrix of a FastGRNN to int8 (scalars stay float32).

    Args:
        params: Float32 parameters.

    Returns:
        Int8 parameters, accepted by :func:`~tinydancer.model.fastgrnn.fastgrnn_predict` directly.

    Examples:
        >>> from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
        >>> q = quantize_params(init_fastgrnn_params(FastGRNNConfig(input_dim=4, hidden_dim=8)))
        >>> q.w1.values.dtype.name, q.w2
        ('int8', None)
    """

    def maybe(x: jax.Array | None) -> QuantizedTensor | None:
        return None if x is None else quantize_tensor(x)

    return QuantizedFastGRNNParams(
        w1=quantize_tensor(params.w1),
        w2=maybe(params.w2),
        u1=quantize_tensor(params.u1),
        u2=maybe(params.u2),
        b_z=quantize_tensor(params.b_z),
        b_h=quantize_tensor(params.b_h),
        zeta_raw=jnp.asarray(params.zeta_raw, jnp.float32),
        nu_raw=jnp.asarray(params.nu_raw, jnp.float32),
        head_w=quantize_tensor(params.head_w),
        head_b=jnp.asarray(params.head_b, jnp.float32),
    )


def dequantize_params(q: QuantizedFastGRNNParams) -> FastGRNNParams:
    """Float32 parameters from int8 ones (traceable: used inside the jitted forward).

    Examples:
        >>> from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
        >>> p = init_fastgrnn_params(FastGRNNConfig(input_dim=4, hidden_dim=8))
        >>> dequantize_params(quantize_params(p)).w1.dtype.name
        'float32'
    """

    def maybe(x: QuantizedTensor | None) -> jax.Array | None:
        return None if x is None else dequantize_tensor(x)

    return FastGRNNParams(
        w1=dequantize_tensor(q.w1),
        w2=maybe(q.w2),
        u1=dequantize_tensor(q.u1),
        u2=maybe(q.u2),
        b_z=dequantize_tensor(q.b_z),
        b_h=dequantize_tensor(q.b_h),
        zeta_raw=q.zeta_raw,
        nu_raw=q.nu_raw,
        head_w=dequantize_tensor(q.head_w),
        head_b=q.head_b,
    )


def model_size_bytes(params: FastGRNNParams | QuantizedFastGRNNParams, *, sparse: bool = False) -> int:
    """Storage size of the parameters in bytes.

    Dense: the sum of every stored array's ``nbytes`` (int8 values plus their 4-byte scales when
    quantised). ``sparse=True`` counts the sparse matrices (:data:`SPARSE_FIELDS`) in a coordinate
    format instead: each non-zero costs its value plus a 2-byte (uint16) flat index, as a compressed
    model would ship; the other tensors stay dense.

    Args:
        params: Float32 or int8 parameters.
        sparse: Count the recurrent matrices as sparse (value + uint16 index per non-zero).

    Returns:
        Size in bytes.

    Examples:
        >>> from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
        >>> p = init_fastgrnn_params(FastGRNNConfig(input_dim=4, hidden_dim=8))
        >>> model_size_bytes(p), model_size_bytes(quantize_params(p))
        (492, 152)
    """
    total = 0
    for name, field in zip(params._fields, params, strict=True):
        if field is None:
            continue
        if isinstance(field, QuantizedTensor):
            values = np.asarray(field.values)
            total += 4  # the float32 scale
        else:
            values = np.asarray(field)
        if sparse and name in SPARSE_FIELDS:
            total += int(np.count_nonzero(values)) * (values.dtype.itemsize + 2)
        else:
            total += int(values.nbytes)
    return total


def _top_fraction_mask(x: jax.Array, fraction: float) -> jax.Array:
    # Host-side numpy: the projection runs every ~15 batches outside jit, so no per-shape compiles.
    flat = np.abs(np.asarray(x)).ravel()
    keep = max(1, int(np.ceil(fraction * flat.size)))
    mask = np.zeros(flat.shape, bool)
    # Ties broken by position (stable sort): exactly `keep` entries survive.
    mask[np.argsort(-flat, kind="stable")[:keep]] = True
    return jnp.asarray(mask.reshape(np.shape(x)))


def support_mask(params: FastGRNNParams, fraction: float) -> FastGRNNParams:
    """Boolean masks keeping the top ``fraction`` (by |value|) of each sparse matrix, others all-True.

    Args:
        params: Float32 parameters.
        fraction: Share of entries kept per matrix, in (0, 1].

    Returns:
        A FastGRNNParams-shaped PyTree of bool arrays (``None`` where the parameter is ``None``).

    Raises:
        InvalidInputError: ``fraction`` outside (0, 1].

    Examples:
        >>> from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
        >>> p = init_fastgrnn_params(FastGRNNConfig(input_dim=4, hidden_dim=8))
        >>> int(support_mask(p, 0.25).w1.sum()), int(support_mask(p, 0.25).b_z.sum())
        (8, 8)
    """
    if not 0.0 < fraction <= 1.0:
        raise InvalidInputError(f"fraction: expected a share in (0, 1], got {fraction!r}")
    fields: dict[str, jax.Array | None] = {}
    for name, field in zip(params._fields, params, strict=True):
        if field is None:
            fields[name] = None
        elif name in SPARSE_FIELDS:
            fields[name] = _top_fraction_mask(field, fraction)
        else:
            fields[name] = jnp.asarray(np.ones(np.shape(field), bool))  # built on the host: no compile
    return FastGRNNParams(**fields)  # type: ignore[arg-type]


def apply_support(params: FastGRNNParams, mask: FastGRNNParams) -> FastGRNNParams:
    """Zero every entry outside ``mask`` (a :func:`support_mask` result); traceable.

    Examples:
        >>> from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
        >>> p = init_fastgrnn_params(FastGRNNConfig(input_dim=4, hidden_dim=8))
        >>> int((apply_support(p, support_mask(p, 0.5)).u1 != 0).sum())
        32
    """
    result: FastGRNNParams = jax.tree_util.tree_map(lambda x, m: jnp.where(m, x, 0.0), params, mask)
    return result


def iht_project(params: FastGRNNParams, fraction: float) -> FastGRNNParams:
    """Hard-thresholding projection: keep the top ``fraction`` of each recurrent matrix by |value|.

    Args:
        params: Float32 parameters.
        fraction: Share of entries kept per matrix, in (0, 1].

    Returns:
        Parameters whose sparse matrices have at most ``ceil(fraction * size)`` non-zeros.

    Examples:
        >>> from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
        >>> p = init_fastgrnn_params(FastGRNNConfig(input_dim=4, hidden_dim=8))
        >>> int((iht_project(p, 0.1).w1 != 0).sum())
        4
    """
    return apply_support(params, support_mask(params, fraction))
