"""The route kernel's arithmetic in numpy on the host, for requests too small to pay for a jitted call.

A jitted call costs tens of microseconds to dispatch, however little it computes; a request of a few
candidates needs a few hundred flops. :func:`host_forward` builds, once per loaded model, a numpy version
of exactly what :func:`tinydancer.routing.kernel.route_kernel` computes for that model family (the five
candidate features, the model's forward pass, uncertainty, decision), in float32. The jitted kernel stays
the reference (tests compare the two on many random requests) and the path for larger requests.

Results agree with the kernel to float32 rounding (XLA's ``exp`` / ``tanh`` and its summation order are
not numpy's), so a confidence within a rounding step of the threshold may be decided differently by the two.

Examples:
    >>> import numpy as np
    >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
    >>> config = CompatModelConfig()
    >>> forward = host_forward(config, config.flatten(init_compat_params(config, 0)))
    >>> conf, unc, light = host_route(forward, np.ones(4, np.float32), np.ones((3, 4), np.float32),
    ...                               np.zeros((3, 4), np.float32), 0.85, 0.15)
    >>> conf.shape, conf.dtype.name, bool(light.any())
    ((3,), 'float32', False)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tinydancer.model.candidate_features import FEATURE_WEIGHTS, FREQUENCY_NORMALISER, RECENCY_DECAY_PER_S
from tinydancer.model.original import CompatModelConfig
from tinydancer.model.served_fastgrnn import ServedFastGRNN

#: Confidence of every feature row, x [N, 5] float32 -> [N] float32.
HostForward = Callable[[np.ndarray], np.ndarray]

_WEIGHTS = np.asarray(FEATURE_WEIGHTS, np.float32)
# Python floats, not numpy scalars, as constants: with a float32 array they compute in float32 (NEP 50)
# and skip numpy's scalar conversion (~0.5 us an operation, which is most of the cost at a few rows).
_DECAY = -RECENCY_DECAY_PER_S


def host_forward(config: Any, flat: np.ndarray) -> HostForward | None:
    """The model's ``forward`` in numpy, its parameters sliced and laid out once; None for other families.

    Args:
        config: the model's config (:class:`CompatModelConfig` or :class:`ServedFastGRNN`).
        flat: shape [P], its flat float32 parameters.

    Returns:
        ``forward(x)``: x [N, I] float32 -> confidence [N] float32; or None (the jitted kernel serves).

    Examples:
        >>> from tinydancer.model.original import init_compat_params
        >>> config = CompatModelConfig()
        >>> forward = host_forward(config, config.flatten(init_compat_params(config, 0)))
        >>> forward(np.zeros((2, 5), np.float32)).tolist()
        [0.5, 0.5]
        >>> host_forward(object(), flat=np.zeros(1, np.float32)) is None
        True
    """
    flat = np.asarray(flat, np.float32)
    if isinstance(config, CompatModelConfig):
        return _compat_forward(config, flat)
    if isinstance(config, ServedFastGRNN):
        return _fastgrnn_forward(config, flat)
    return None


def _compat_forward(config: CompatModelConfig, flat: np.ndarray) -> HostForward:
    """:func:`tinydancer.model.original.compat_forward` (matrix form), sigmoid as 0.5 tanh(a / 2) + 0.5.

    Both gates come from one product (x @ [W_u^T | W_c^T], each entry the same dot product), and one tanh
    over both: with the update gate's scale halved, 1 - sigmoid(nu a) = (1 - tanh(nu a / 2)) / 2. Halving
    is exact in float32, so the factors of 1/2 fold into the scale and the output weights.
    """
    p = config.unflatten(flat)
    hidden = config.hidden_dim
    weights = np.ascontiguousarray(np.concatenate([p.w_update.T, p.w_candidate.T], axis=1), np.float32)  # [I, 2H]
    bias = np.concatenate([p.b_update, p.b_candidate]).astype(np.float32)
    scale = np.concatenate([np.full(hidden, 0.5 * config.nu), np.full(hidden, config.zeta)]).astype(np.float32)
    # logit / 2 = ((1 - t_u) t_c / 2) @ w_o / 2 + b_o / 2
    w_output = np.ascontiguousarray(np.asarray(p.w_output[0], np.float32) * np.float32(0.25))
    b_output = float(np.float32(p.b_output[0]) * np.float32(0.5))

    def forward(x: np.ndarray) -> np.ndarray:
        pre = x @ weights
        pre += bias
        pre *= scale
        t = np.tanh(pre, out=pre)
        half_logit = ((1.0 - t[:, :hidden]) * t[:, hidden:]) @ w_output
        half_logit += b_output
        confidence = np.tanh(half_logit, out=half_logit)
        confidence *= 0.5
        confidence += 0.5
        return confidence

    return forward


def _fastgrnn_forward(config: ServedFastGRNN, flat: np.ndarray) -> HostForward:
    """:meth:`ServedFastGRNN.forward`: one FastGRNN step from h0 = 0 (h0 U and z h0 are exactly zero)."""
    p = config.unflatten(flat)
    arch = config.fastgrnn
    w1 = np.asarray(p.w1, np.float32)
    w2t = None if p.w2 is None else np.ascontiguousarray(np.asarray(p.w2, np.float32).T)
    b_z, b_h = np.asarray(p.b_z, np.float32), np.asarray(p.b_h, np.float32)
    zeta, nu = (float(_sigmoid(np.asarray(v, np.float32))) for v in (p.zeta_raw, p.nu_raw))
    head_w, head_b = np.asarray(p.head_w, np.float32), float(np.float32(p.head_b))
    quant_gate = arch.gate_nonlinearity == "quantSigm"
    quant_update = arch.update_nonlinearity == "quantTanh"
    strong = config.confidence_of_strong

    def forward(x: np.ndarray) -> np.ndarray:
        pre = x @ w1 if w2t is None else (x @ w1) @ w2t
        z = np.minimum(np.maximum((pre + b_z + 1.0) / 2.0, 0.0), 1.0) if quant_gate else _sigmoid(pre + b_z)
        c = np.minimum(np.maximum(pre + b_h, -1.0), 1.0) if quant_update else np.tanh(pre + b_h)
        logit = ((zeta * (1.0 - z) + nu) * c) @ head_w
        logit += head_b
        prob = _sigmoid(logit)
        return 1.0 - prob if strong else prob

    return forward


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """0.5 tanh(a / 2) + 0.5: never overflows (1 / (1 + exp(-a)) does for a < -88 in float32)."""
    return np.tanh(a * 0.5) * 0.5 + 0.5


def host_features(query: np.ndarray, embeddings: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """:func:`tinydancer.model.candidate_features.candidate_features` in numpy, float32.

    Args:
        query: shape [D] float32.
        embeddings: shape [N, D] float32.
        columns: shape [N, 4] float32: age_s, access_count, success_rate, metadata_match.

    Returns:
        x, shape [N, 5] float32.

    Examples:
        >>> x = host_features(np.ones(2, np.float32), np.ones((1, 2), np.float32), np.array([[0, 0, 1, 1]], np.float32))
        >>> x.astype(np.float64).round(3).tolist()
        [[0.4, 0.2, 0.0, 0.15, 0.1]]
    """
    x = np.empty((len(embeddings), 5), np.float32)
    dot = embeddings @ query
    # The kernel's float32 sqrt of a float32 sum: a double sqrt rounded to float32 (as the weak Python scalar
    # is, in the product below) is the same number.
    query_norm = math.sqrt(float(query @ query))
    cand_norm = np.sqrt(np.einsum("ij,ij->i", embeddings, embeddings))
    norms = cand_norm * query_norm
    if norms.all():  # the usual case: no zero vector
        x[:, 0] = dot / norms
    else:  # zero vs zero is 1.0, zero vs non-zero 0.0; a product that underflows divides by 1.0, as the kernel
        cand_zero = cand_norm == 0.0
        sim = np.where(cand_zero | (query_norm == 0.0), 0.0, dot / np.where(norms > 0.0, norms, 1.0))
        x[:, 0] = np.where(cand_zero & (query_norm == 0.0), 1.0, sim)
    x[:, 1] = np.exp(np.maximum(columns[:, 0], 0.0) * _DECAY)
    x[:, 2] = np.minimum(np.log1p(columns[:, 1]) / FREQUENCY_NORMALISER, 1.0)
    x[:, 3:] = columns[:, 2:]
    x *= _WEIGHTS
    return x


def host_route(
    forward: HostForward,
    query: np.ndarray,
    embeddings: np.ndarray,
    columns: np.ndarray,
    threshold: float,
    max_uncertainty: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confidence, uncertainty and decision of every candidate: the route kernel's outputs, unchecked.

    The limits are compared in float32, as the kernel receives them.

    Args:
        forward: from :func:`host_forward`.
        query: shape [D] float32.
        embeddings: shape [N, D] float32.
        columns: shape [N, 4] float32.
        threshold: confidence threshold.
        max_uncertainty: uncertainty limit.

    Returns:
        (confidence [N] float32, uncertainty [N] float32, use_lightweight [N] bool).
    """
    # As XLA, no floating-point warnings: BLAS can leave a spurious "invalid" flag on finite float32 inputs, and
    # a real NaN or overflow is caught by run_route's check of the scores, the same as the kernel's.
    with np.errstate(invalid="ignore", over="ignore"):
        confidence = forward(host_features(query, embeddings, columns))
    # The kernel's clamp(1 - 2 |p - 0.5|, 0, 1); the upper bound holds already.
    uncertainty = np.maximum(1.0 - 2.0 * np.abs(confidence - 0.5), 0.0)
    light = (confidence >= float(np.float32(threshold))) & (uncertainty <= float(np.float32(max_uncertainty)))
    return confidence, uncertainty, light


__all__ = ["HostForward", "host_features", "host_forward", "host_route"]
