"""The route kernel's arithmetic compiled for the host CPU, for requests too small to pay for a jitted call.

A jitted JAX call costs tens of microseconds to dispatch, however little it computes; a request of a few
candidates needs a few thousand flops. This module is a twin of :func:`tinydancer.routing.kernel.route_kernel`
(the five candidate features, the model's forward pass, uncertainty, decision) written as loops over
candidates and compiled once per process by numba (cached on disk), so a whole small route is one native call
of a few microseconds instead of one XLA dispatch, or of some thirty numpy calls of ~1 us each. The jitted
kernel stays the reference (tests compare the two on many random and edge-case requests) and the path for
larger requests.

:func:`host_route` lays a model's parameters out once per loaded model and returns a :data:`HostRoute` for
its family (the original's model, or a FastGRNN on candidate features). Everything is computed in float32,
as the kernel; results agree with it to float32 rounding (summation order, ``exp`` and ``tanh`` are not
XLA's), so a confidence within a rounding step of the threshold may be decided differently by the two.

Examples:
    >>> import numpy as np
    >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
    >>> config = CompatModelConfig()
    >>> route = host_route(config, config.flatten(init_compat_params(config, 0)))
    >>> conf, unc, light, valid = route(np.ones(4, np.float32), np.ones((3, 4), np.float32),
    ...                          np.zeros((3, 4), np.float32), 0.85, 0.15)
    >>> conf.shape, conf.dtype.name, bool(light.any()), valid
    ((3,), 'float32', False, True)
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numba
import numpy as np

from tinydancer.model.candidate_features import FEATURE_WEIGHTS, FREQUENCY_NORMALISER, RECENCY_DECAY_PER_S
from tinydancer.model.original import CompatModelConfig
from tinydancer.model.served_fastgrnn import ServedFastGRNN

#: (confidence [N] float32, uncertainty [N] float32, use_lightweight [N] bool, valid): ``valid`` is False when a
#: confidence is NaN or outside [0, 1] (the uncertainty follows from the confidence, so it is then in [0, 1] too).
HostOutputs = tuple[np.ndarray, np.ndarray, np.ndarray, bool]
#: ``rows`` of a route over every row of its ``embeddings``, in order.
ALL_ROWS = np.empty(0, np.intp)


class HostRoute(Protocol):
    """A model's whole route on the host: ``route(query [D], embeddings, columns [N, 4], threshold,
    max_uncertainty, rows=ALL_ROWS)`` -> :data:`HostOutputs`.

    ``embeddings`` is [N, D], candidate i its row i; or, with ``rows`` [N] (row indices), any [M, D] matrix
    whose row ``rows[i]`` is candidate i, read in place (a candidate store's, under its lock): no gathered copy.
    """

    def __call__(
        self, query: np.ndarray, embeddings: np.ndarray, columns: np.ndarray, threshold: float,
        max_uncertainty: float, rows: np.ndarray = ALL_ROWS,
    ) -> HostOutputs: ...  # fmt: skip


_F = np.float32
_FEATURE_WEIGHTS = np.asarray(FEATURE_WEIGHTS, np.float32)
_DECAY = _F(-RECENCY_DECAY_PER_S)
_FREQUENCY = _F(FREQUENCY_NORMALISER)
#: Reassociation lets LLVM vectorise the D-long dot products (XLA sums in its own order too); nothing else
#: is relaxed, so infinities, NaNs and signed zeros behave as IEEE float32.
_SUMS = {"reassoc"}


@numba.njit(cache=True, fastmath=_SUMS)
def _sum_of_products(a: np.ndarray, b: np.ndarray) -> np.float32:  # pragma: no cover - compiled
    total = _F(0.0)
    for j in range(a.shape[0]):
        total += a[j] * b[j]
    return total


@numba.njit(cache=True)
def _features(
    query: np.ndarray, embeddings: np.ndarray, rows: np.ndarray, columns: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    """:func:`tinydancer.model.candidate_features.candidate_features`, x [N, 5] float32 (N = rows of ``columns``);
    candidate i's embedding is row ``rows[i]`` of ``embeddings``, or row i when ``rows`` is empty."""
    n, m = columns.shape[0], embeddings.shape[0]
    indexed = rows.shape[0] > 0
    if n != (rows.shape[0] if indexed else m):
        raise ValueError("host route: expected one embedding row (or row index) per row of columns")
    x = np.empty((n, 5), np.float32)
    query_norm = _F(math.sqrt(_sum_of_products(query, query)))
    for i in range(n):
        r = rows[i] if indexed else i
        if r < 0 or r >= m:  # compiled code reads without bounds checks: a bad index must not read past the matrix
            raise IndexError("host route: a row index is outside the embeddings")
        row = embeddings[r]
        dot = _sum_of_products(row, query)
        norm = _F(math.sqrt(_sum_of_products(row, row)))
        if norm == 0.0 or query_norm == 0.0:  # zero vs zero is 1.0, zero vs non-zero 0.0, as the kernel
            similarity = _F(1.0) if norm == query_norm else _F(0.0)
        else:
            product = norm * query_norm
            similarity = dot / product if product > 0.0 else dot  # a product that underflows divides by 1.0
        x[i, 0] = similarity * _FEATURE_WEIGHTS[0]
        x[i, 1] = _F(math.exp(max(columns[i, 0], _F(0.0)) * _DECAY)) * _FEATURE_WEIGHTS[1]
        x[i, 2] = min(_F(math.log1p(columns[i, 1])) / _FREQUENCY, _F(1.0)) * _FEATURE_WEIGHTS[2]
        x[i, 3] = columns[i, 2] * _FEATURE_WEIGHTS[3]
        x[i, 4] = columns[i, 3] * _FEATURE_WEIGHTS[4]
    return x


@numba.njit(cache=True)
def _sigmoid(a: np.float32) -> np.float32:  # pragma: no cover - compiled
    """0.5 tanh(a / 2) + 0.5: no overflow for any float32 ``a``."""
    return _F(math.tanh(a * _F(0.5))) * _F(0.5) + _F(0.5)


@numba.njit(cache=True)
def _decide(
    confidence: np.ndarray, threshold: np.float32, max_uncertainty: np.float32, uncertainty: np.ndarray,
    light: np.ndarray,
) -> bool:  # pragma: no cover - compiled  # fmt: skip
    """The kernel's uncertainty, clamp(1 - 2 |p - 0.5|, 0, 1), and its decision in float32, written into
    ``uncertainty`` and ``light``; returns the scores' check."""
    n = confidence.shape[0]
    valid = True
    for i in range(n):
        p = confidence[i]
        u = min(max(_F(1.0) - _F(2.0) * abs(p - _F(0.5)), _F(0.0)), _F(1.0))
        uncertainty[i] = u
        light[i] = p >= threshold and u <= max_uncertainty
        valid = valid and _F(0.0) <= p <= _F(1.0)  # NaN fails both comparisons
    return valid


@numba.njit(cache=True)
def _compat_route(
    query: np.ndarray, embeddings: np.ndarray, rows: np.ndarray, columns: np.ndarray, threshold: np.float32,
    max_uncertainty: np.float32, confidence: np.ndarray, uncertainty: np.ndarray, light: np.ndarray,
    w_gates: np.ndarray, bias: np.ndarray, scale: np.ndarray, w_output: np.ndarray, b_output: np.float32,
) -> bool:  # pragma: no cover - compiled  # fmt: skip
    """:func:`tinydancer.model.original.compat_forward`: w_gates [5, 2H] (update | candidate), scale [2H]."""
    x = _features(query, embeddings, rows, columns)
    hidden = w_output.shape[0]
    for i in range(x.shape[0]):
        logit = b_output
        for k in range(hidden):
            update, candidate = bias[k], bias[hidden + k]
            for t in range(5):
                update += x[i, t] * w_gates[t, k]
                candidate += x[i, t] * w_gates[t, hidden + k]
            gate = _sigmoid(scale[k] * update)
            logit += (_F(1.0) - gate) * _F(math.tanh(scale[hidden + k] * candidate)) * w_output[k]
        confidence[i] = _sigmoid(logit)
    return _decide(confidence, threshold, max_uncertainty, uncertainty, light)


@numba.njit(cache=True)
def _fastgrnn_route(
    query: np.ndarray, embeddings: np.ndarray, rows: np.ndarray, columns: np.ndarray, threshold: np.float32,
    max_uncertainty: np.float32, confidence: np.ndarray, uncertainty: np.ndarray, light: np.ndarray,
    w1: np.ndarray, w2t: np.ndarray, low_rank: bool, b_z: np.ndarray, b_h: np.ndarray, zeta: np.float32,
    nu: np.float32, head_w: np.ndarray, head_b: np.float32, quant_gate: bool, quant_update: bool, strong: bool,
) -> bool:  # pragma: no cover - compiled  # fmt: skip
    """:meth:`ServedFastGRNN.forward`: one FastGRNN step from h0 = 0 (h0 U and z h0 are exactly zero)."""
    x = _features(query, embeddings, rows, columns)
    hidden, rank = b_z.shape[0], w1.shape[1]
    projected = np.empty(rank, np.float32)
    for i in range(x.shape[0]):
        for r in range(rank):
            acc = _F(0.0)
            for t in range(x.shape[1]):
                acc += x[i, t] * w1[t, r]
            projected[r] = acc
        logit = head_b
        for k in range(hidden):
            if low_rank:
                pre = _F(0.0)
                for r in range(rank):
                    pre += projected[r] * w2t[r, k]
            else:
                pre = projected[k]
            a_z, a_h = pre + b_z[k], pre + b_h[k]
            z = min(max((a_z + _F(1.0)) / _F(2.0), _F(0.0)), _F(1.0)) if quant_gate else _sigmoid(a_z)
            c = min(max(a_h, _F(-1.0)), _F(1.0)) if quant_update else _F(math.tanh(a_h))
            logit += (zeta * (_F(1.0) - z) + nu) * c * head_w[k]
        p = _sigmoid(logit)
        confidence[i] = _F(1.0) - p if strong else p
    return _decide(confidence, threshold, max_uncertainty, uncertainty, light)


def host_route(config: Any, flat: np.ndarray) -> HostRoute | None:
    """The model's whole route on the host, its parameters sliced and laid out once; None for other families.

    Args:
        config: the model's config (:class:`CompatModelConfig` or :class:`ServedFastGRNN`).
        flat: shape [P], its flat float32 parameters.

    Returns:
        ``route(query, embeddings, columns, threshold, max_uncertainty, rows=ALL_ROWS)`` (:class:`HostRoute`),
        or None (the jitted kernel serves).

    Examples:
        >>> from tinydancer.model.original import init_compat_params
        >>> config = CompatModelConfig()
        >>> route = host_route(config, config.flatten(init_compat_params(config, 0)))
        >>> conf, unc, light, valid = route(np.ones(2, np.float32), np.eye(2, dtype=np.float32),
        ...                                np.zeros((2, 4), np.float32), 0.5, 1.0)
        >>> [round(v, 3) for v in conf.tolist()], valid
        ([0.5, 0.5], True)
        >>> matrix = np.array([[0, 1], [7, 7], [1, 0]], np.float32)  # candidates as rows 2 and 0, read in place
        >>> q, cols = np.array([1, 2], np.float32), np.zeros((2, 4), np.float32)
        >>> in_place = route(q, matrix, cols, 0.5, 1.0, rows=np.array([2, 0]))[0]
        >>> np.array_equal(in_place, route(q, matrix[[2, 0]], cols, 0.5, 1.0)[0])
        True
        >>> host_route(object(), flat=np.zeros(1, np.float32)) is None
        True
    """
    flat = np.asarray(flat, np.float32)
    if isinstance(config, CompatModelConfig):
        route = _compat(config, flat)
    elif isinstance(config, ServedFastGRNN):
        route = _fastgrnn(config, flat)
    else:
        return None
    # Compiled (or loaded from numba's disk cache) now, when the model loads, not inside the first request.
    route(np.zeros(1, np.float32), np.zeros((1, 1), np.float32), np.zeros((1, 4), np.float32), 0.5, 0.5)
    return route


def _inputs(
    query: np.ndarray, embeddings: np.ndarray, rows: np.ndarray, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """C-contiguous float32 views (the arrays themselves when they are; rows as intp): the one signature compiled
    at load."""
    c = np.ascontiguousarray
    return c(query, np.float32), c(embeddings, np.float32), c(rows, np.intp), c(columns, np.float32)


def _outputs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confidence [N] float32, uncertainty [N] float32 and use_lightweight [N] bool, for a route to fill.

    Made here, not inside the compiled route: numba hands back each array it made at ~0.7 us apiece
    (boxing), three times what ``np.empty`` costs.
    """
    return np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.bool_)


def _compat(config: CompatModelConfig, flat: np.ndarray) -> HostRoute:
    p = config.unflatten(flat)
    hidden = config.hidden_dim
    w_gates = np.ascontiguousarray(np.concatenate([p.w_update.T, p.w_candidate.T], axis=1), np.float32)  # [5, 2H]
    bias = np.concatenate([p.b_update, p.b_candidate]).astype(np.float32)
    scale = np.concatenate([np.full(hidden, config.nu), np.full(hidden, config.zeta)]).astype(np.float32)
    w_output = np.ascontiguousarray(np.asarray(p.w_output[0], np.float32))
    return _bound(_compat_route, w_gates, bias, scale, w_output, _F(p.b_output[0]))


def _fastgrnn(config: ServedFastGRNN, flat: np.ndarray) -> HostRoute:
    p = config.unflatten(flat)
    arch = config.fastgrnn
    w1 = np.ascontiguousarray(np.asarray(p.w1, np.float32))
    low_rank = p.w2 is not None
    w2t = np.ascontiguousarray(np.asarray(p.w2, np.float32).T) if low_rank else np.zeros((1, 1), np.float32)
    b_z, b_h = np.asarray(p.b_z, np.float32).reshape(-1), np.asarray(p.b_h, np.float32).reshape(-1)
    zeta, nu = (_F(0.5 * math.tanh(0.5 * float(np.float32(v))) + 0.5) for v in (p.zeta_raw, p.nu_raw))
    head_w, head_b = np.asarray(p.head_w, np.float32).reshape(-1), _F(p.head_b)
    quant = (arch.gate_nonlinearity == "quantSigm", arch.update_nonlinearity == "quantTanh")
    return _bound(
        _fastgrnn_route, w1, w2t, low_rank, b_z, b_h, zeta, nu, head_w, head_b, *quant, config.confidence_of_strong
    )


def _bound(compiled: Any, *weights: Any) -> HostRoute:
    """A :class:`HostRoute` calling a compiled family route with the model's laid-out ``weights``."""

    def route(
        query: np.ndarray,
        embeddings: np.ndarray,
        columns: np.ndarray,
        threshold: float,
        max_uncertainty: float,
        rows: np.ndarray = ALL_ROWS,
    ) -> HostOutputs:
        outputs = _outputs(len(columns))
        inputs = _inputs(query, embeddings, rows, columns)
        valid = compiled(*inputs, _F(threshold), _F(max_uncertainty), *outputs, *weights)
        return (*outputs, bool(valid))

    return route


def host_features(query: np.ndarray, embeddings: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """:func:`tinydancer.model.candidate_features.candidate_features` on the host, float32.

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
    return _features(*_inputs(query, embeddings, ALL_ROWS, columns))  # type: ignore[no-any-return]


__all__ = ["ALL_ROWS", "HostOutputs", "HostRoute", "host_features", "host_route"]
