"""FastGRNN (Kusupati et al., NeurIPS 2018): a pure, jitted JAX implementation.

The cell is one step on an unbatched vector (row-vector form, as in microsoft/EdgeML ``FastGRNNCell``)::

    pre_t = x_t W + h_{t-1} U
    z_t   = gate(pre_t + b_z)                      # sigmoid (or quantSigm)
    c_t   = update(pre_t + b_h)                    # tanh (or quantTanh)
    h_t   = (sigmoid(zeta_raw) * (1 - z_t) + sigmoid(nu_raw)) * c_t + z_t * h_{t-1}

with W and U shared by gate and update, optionally low rank (``W = W1 W2^T``, ``U = U1 U2^T``).
``lax.scan`` runs the cell over the steps, ``vmap`` over the batch; a linear head maps the final
hidden state to one logit (score of "route to the strong model"). Padded steps (mask 0) carry the
hidden state unchanged, so variable-length token sequences batch together.

Parameters are a NamedTuple PyTree; :class:`QuantizedFastGRNNParams` (int8 storage, see
:mod:`tinydancer.model.compression`) is accepted by the same jitted entry points and dequantised inside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tinydancer.errors import InvalidInputError
from tinydancer.validation import check_choice, check_int, check_number, check_optional

GATE_NONLINEARITIES: tuple[str, ...] = ("sigmoid", "quantSigm")
UPDATE_NONLINEARITIES: tuple[str, ...] = ("tanh", "quantTanh")


@dataclass(frozen=True)
class FastGRNNConfig:
    """Static, hashable FastGRNN architecture (passed to ``jax.jit`` as a static argument).

    Args:
        input_dim: Size I of each step's input vector.
        hidden_dim: Size H of the hidden state.
        w_rank: Rank of ``W = W1 W2^T`` ([I, r] x [H, r]); ``None`` for a full [I, H] matrix.
        u_rank: Rank of ``U = U1 U2^T`` ([H, r] x [H, r]); ``None`` for a full [H, H] matrix.
        gate_nonlinearity: ``"sigmoid"`` or the piecewise-linear ``"quantSigm"``.
        update_nonlinearity: ``"tanh"`` or the piecewise-linear ``"quantTanh"``.
        zeta_init: Pre-sigmoid initial zeta (EdgeML default 1.0).
        nu_init: Pre-sigmoid initial nu (EdgeML default -4.0).

    Raises:
        ConfigError: A size is not a positive integer, a rank exceeds its matrix, or a name is unknown.

    Examples:
        >>> FastGRNNConfig(input_dim=5, hidden_dim=8, w_rank=2).w_rank
        2
    """

    input_dim: int
    hidden_dim: int = 16
    w_rank: int | None = None
    u_rank: int | None = None
    gate_nonlinearity: str = "sigmoid"
    update_nonlinearity: str = "tanh"
    zeta_init: float = 1.0
    nu_init: float = -4.0

    def __post_init__(self) -> None:
        check_int("input_dim", self.input_dim, low=1)
        check_int("hidden_dim", self.hidden_dim, low=1)
        # A rank above the matrix's smaller side is no factorisation.
        check_optional(check_int, "w_rank", self.w_rank, low=1, high=min(self.input_dim, self.hidden_dim))
        check_optional(check_int, "u_rank", self.u_rank, low=1, high=self.hidden_dim)
        check_choice("gate_nonlinearity", self.gate_nonlinearity, GATE_NONLINEARITIES)
        check_choice("update_nonlinearity", self.update_nonlinearity, UPDATE_NONLINEARITIES)
        check_number("zeta_init", self.zeta_init)
        check_number("nu_init", self.nu_init)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every present :class:`FastGRNNParams` field, in field order (absent factors left out).

        Examples:
            >>> FastGRNNConfig(input_dim=5, hidden_dim=8, w_rank=2).param_shapes()["w2"]
            (8, 2)
            >>> "u2" in FastGRNNConfig(input_dim=5, hidden_dim=8).param_shapes()
            False
        """
        i, h, w_rank, u_rank = self.input_dim, self.hidden_dim, self.w_rank, self.u_rank
        shapes = {
            "w1": (i, h) if w_rank is None else (i, w_rank),
            "w2": None if w_rank is None else (h, w_rank),
            "u1": (h, h) if u_rank is None else (h, u_rank),
            "u2": None if u_rank is None else (h, u_rank),
            "b_z": (h,),
            "b_h": (h,),
            "zeta_raw": (),
            "nu_raw": (),
            "head_w": (h,),
            "head_b": (),
        }
        return {name: shape for name, shape in shapes.items() if shape is not None}


class FastGRNNParams(NamedTuple):
    """FastGRNN parameters (float32). With a full-rank matrix the second factor is ``None``.

    Attributes:
        w1: [I, H] full W, or [I, r_w] first factor of W.
        w2: None, or [H, r_w] second factor (``W = w1 @ w2.T``).
        u1: [H, H] full U, or [H, r_u] first factor of U.
        u2: None, or [H, r_u] second factor (``U = u1 @ u2.T``).
        b_z: [H] gate bias.
        b_h: [H] update bias.
        zeta_raw: [] pre-sigmoid zeta.
        nu_raw: [] pre-sigmoid nu.
        head_w: [H] linear head weights.
        head_b: [] linear head bias.
    """

    w1: jax.Array
    w2: jax.Array | None
    u1: jax.Array
    u2: jax.Array | None
    b_z: jax.Array
    b_h: jax.Array
    zeta_raw: jax.Array
    nu_raw: jax.Array
    head_w: jax.Array
    head_b: jax.Array


def init_fastgrnn_params(config: FastGRNNConfig, seed: int = 0) -> FastGRNNParams:
    """EdgeML initialisation: matrices/factors 0.1*randn, biases ones, zeta/nu from the config; head zero.

    Args:
        config: The architecture.
        seed: PRNG seed (the result is a pure function of ``(config, seed)``).

    Returns:
        Float32 parameters.

    Examples:
        >>> p = init_fastgrnn_params(FastGRNNConfig(input_dim=5, hidden_dim=8, u_rank=2))
        >>> p.w1.shape, p.w2 is None, p.u1.shape, p.u2.shape
        ((5, 8), True, (8, 2), (8, 2))
    """
    i, h = config.input_dim, config.hidden_dim
    # Host-side numpy PCG64 draws: deterministic per seed and free of per-shape XLA compiles.
    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> jax.Array:
        return jnp.asarray((0.1 * rng.standard_normal(shape)).astype(np.float32))  # cast on the host: no compile

    w1, w2 = (normal(i, h), None) if config.w_rank is None else (normal(i, config.w_rank), normal(h, config.w_rank))
    u1, u2 = (normal(h, h), None) if config.u_rank is None else (normal(h, config.u_rank), normal(h, config.u_rank))
    return FastGRNNParams(
        w1=w1,
        w2=w2,
        u1=u1,
        u2=u2,
        b_z=jnp.asarray(np.ones(h, np.float32)),
        b_h=jnp.asarray(np.ones(h, np.float32)),
        zeta_raw=jnp.asarray(np.float32(config.zeta_init)),
        nu_raw=jnp.asarray(np.float32(config.nu_init)),
        head_w=jnp.asarray(np.zeros(h, np.float32)),
        head_b=jnp.asarray(np.float32(0.0)),
    )


def _gate(config: FastGRNNConfig, a: jax.Array) -> jax.Array:
    if config.gate_nonlinearity == "quantSigm":
        return jnp.clip((a + 1.0) / 2.0, 0.0, 1.0)
    return jax.nn.sigmoid(a)


def _update(config: FastGRNNConfig, a: jax.Array) -> jax.Array:
    if config.update_nonlinearity == "quantTanh":
        return jnp.clip(a, -1.0, 1.0)
    return jnp.tanh(a)


def _times(v: jax.Array, first: jax.Array, second: jax.Array | None) -> jax.Array:
    # Low rank: v (A B^T) = (v A) B^T, the cheap order (r*(I+H) multiplies instead of I*H).
    return v @ first if second is None else (v @ first) @ second.T


def fastgrnn_cell(params: FastGRNNParams, config: FastGRNNConfig, h: jax.Array, x: jax.Array) -> jax.Array:
    """One FastGRNN step on an unbatched vector (pure; jit/scan/vmap from outside).

    Args:
        params: Float32 parameters.
        config: The architecture.
        h: [H] previous hidden state.
        x: [I] this step's input.

    Returns:
        [H] next hidden state.

    Examples:
        >>> cfg = FastGRNNConfig(input_dim=3, hidden_dim=4)
        >>> fastgrnn_cell(init_fastgrnn_params(cfg), cfg, jnp.zeros(4), jnp.ones(3)).shape
        (4,)
    """
    pre = _times(x, params.w1, params.w2) + _times(h, params.u1, params.u2)
    z = _gate(config, pre + params.b_z)
    c = _update(config, pre + params.b_h)
    zeta = jax.nn.sigmoid(params.zeta_raw)
    nu = jax.nn.sigmoid(params.nu_raw)
    return (zeta * (1.0 - z) + nu) * c + z * h


def _dense_params(params: object) -> FastGRNNParams:
    # Trace-time dispatch: int8 parameters are dequantised inside the jitted computation.
    from tinydancer.model.compression import QuantizedFastGRNNParams, dequantize_params

    if isinstance(params, QuantizedFastGRNNParams):
        return dequantize_params(params)
    if isinstance(params, FastGRNNParams):
        return params
    raise InvalidInputError(f"params: expected FastGRNNParams or QuantizedFastGRNNParams, got {type(params).__name__}")


def _sequence_logit(
    params: FastGRNNParams, config: FastGRNNConfig, xs: jax.Array, mask: jax.Array, unroll: int = 1
) -> jax.Array:
    def step(h: jax.Array, inputs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        x, keep = inputs
        return jnp.where(keep, fastgrnn_cell(params, config, h, x), h), None

    h0 = jnp.zeros((config.hidden_dim,), jnp.float32)
    h_last, _ = jax.lax.scan(step, h0, (xs, mask), unroll=unroll)  # unroll: same numbers, fewer loop trips
    return h_last @ params.head_w + params.head_b


@partial(jax.jit, static_argnames=("config",))
def _batched_logits(params: object, config: FastGRNNConfig, x: jax.Array, mask: jax.Array) -> jax.Array:
    dense = _dense_params(params)
    return jax.vmap(_sequence_logit, in_axes=(None, None, 0, 0))(dense, config, x, mask)


def _check_inputs(
    config: FastGRNNConfig, x: jax.Array | np.ndarray, mask: jax.Array | np.ndarray | None
) -> tuple[jax.Array, jax.Array]:
    x = jnp.asarray(x, jnp.float32)
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3 or x.shape[-1] != config.input_dim:
        raise InvalidInputError(
            f"x: expected shape [B, T, {config.input_dim}] or [B, {config.input_dim}], got {tuple(x.shape)}"
        )
    if mask is None:
        m = jnp.ones(x.shape[:2], bool)
    else:
        m = jnp.asarray(mask).astype(bool)
        if m.shape != x.shape[:2]:
            raise InvalidInputError(f"mask: expected shape {tuple(x.shape[:2])}, got {tuple(m.shape)}")
    return x, m


def fastgrnn_logits(
    params: object,
    config: FastGRNNConfig,
    x: jax.Array | np.ndarray,
    mask: jax.Array | np.ndarray | None = None,
) -> jax.Array:
    """Batched logits (score of routing to the strong model); one jitted call per input shape.

    Args:
        params: :class:`FastGRNNParams` or :class:`~tinydancer.model.compression.QuantizedFastGRNNParams`.
        config: The architecture.
        x: [B, T, I] sequences, or [B, I] (a sequence of length 1, e.g. pooled or compat features).
        mask: Optional [B, T]; steps where it is 0/False are skipped (hidden state carried).

    Returns:
        [B] float32 logits.

    Raises:
        InvalidInputError: Wrong shapes or parameter type.

    Examples:
        >>> cfg = FastGRNNConfig(input_dim=5, hidden_dim=8)
        >>> fastgrnn_logits(init_fastgrnn_params(cfg), cfg, jnp.ones((2, 3, 5))).shape
        (2,)
    """
    xs, m = _check_inputs(config, x, mask)
    logits: jax.Array = _batched_logits(params, config, xs, m)
    return logits


def fastgrnn_predict(
    params: object,
    config: FastGRNNConfig,
    x: jax.Array | np.ndarray,
    mask: jax.Array | np.ndarray | None = None,
) -> jax.Array:
    """Batched probabilities ``sigmoid(logit)``; same arguments as :func:`fastgrnn_logits`.

    Returns:
        [B] float32 probabilities in [0, 1].

    Examples:
        >>> cfg = FastGRNNConfig(input_dim=5, hidden_dim=8)
        >>> fastgrnn_predict(init_fastgrnn_params(cfg), cfg, jnp.ones((2, 5))).tolist()
        [0.5, 0.5]
    """
    return jax.nn.sigmoid(fastgrnn_logits(params, config, x, mask))


def member_statistics(probs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mean, standard deviation and mutual information of K members' probabilities (pure; jittable).

    The mutual information ``H(mean) - mean(H(member))`` (nats, >= 0, at most ln 2) is the epistemic
    part of the predictive entropy: high where the members disagree.

    Args:
        probs: [K, B] member probabilities.

    Returns:
        ``(mean, std, mutual_information)``, each [B].

    Examples:
        >>> mean, std, mi = member_statistics(jnp.array([[0.1, 0.5], [0.9, 0.5]]))
        >>> mean.tolist(), round(float(mi[0]), 3), float(mi[1])
        ([0.5, 0.5], 0.368, 0.0)
    """

    def entropy(p: jax.Array) -> jax.Array:
        q = jnp.clip(p, 1e-7, 1 - 1e-7)
        return -(q * jnp.log(q) + (1 - q) * jnp.log1p(-q))

    mean = probs.mean(axis=0)
    return mean, probs.std(axis=0), jnp.maximum(entropy(mean) - entropy(probs).mean(axis=0), 0.0)
