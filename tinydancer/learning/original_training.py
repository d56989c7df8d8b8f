"""Fit the original's compat model (5 -> H -> 1) to labelled candidate features with optax.

The original ships `trainRouter` for this job; this is the same objective (BCE on the sigmoid output,
Adam, global-norm clipping) as one jitted training step, used by the demo and as a baseline.

Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0, 0.4, (256, 5)).astype(np.float32)
    >>> y = (x[:, 0] > 0.2).astype(np.float32)
    >>> params, cfg = fit_compat_model(x, y, steps=300, seed=0)
    >>> bool(compat_accuracy(params, cfg, x, y) > 0.9)
    True
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tinydancer.errors import DataError, TrainingError
from tinydancer.model.original import CompatModelConfig, CompatParams, compat_forward, init_compat_params


def _loss(params: CompatParams, x: jax.Array, y: jax.Array, nu: float, zeta: float) -> jax.Array:
    p = jnp.clip(compat_forward(params, x, nu, zeta), 1e-7, 1 - 1e-7)
    return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log1p(-p))


@partial(jax.jit, static_argnames=("optimizer", "nu", "zeta"))
def _step(
    params: CompatParams,
    state: optax.OptState,
    x: jax.Array,
    y: jax.Array,
    optimizer: optax.GradientTransformation,
    nu: float,
    zeta: float,
) -> tuple[CompatParams, optax.OptState, jax.Array]:
    loss, grads = jax.value_and_grad(_loss)(params, x, y, nu, zeta)
    updates, state = optimizer.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss  # type: ignore[return-value]


def fit_compat_model(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden_dim: int = 8,
    steps: int = 500,
    learning_rate: float = 0.05,
    seed: int = 0,
) -> tuple[CompatParams, CompatModelConfig]:
    """Full-batch Adam on BCE; returns float32 numpy params ready for :func:`save_compat_model`.

    Args:
        x: weighted candidate features, shape [N, 5].
        y: 1 = the lightweight model suffices, shape [N].
        hidden_dim: H.
        steps: optimisation steps.
        learning_rate: Adam step size.
        seed: initialisation seed.

    Raises:
        DataError: shapes disagree, non-finite values, or a single class.
        TrainingError: the loss became non-finite (the step is named).
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32)
    if x.ndim != 2 or x.shape[1] != 5 or y.shape != (x.shape[0],):
        raise DataError(f"expected x [N, 5] and y [N], got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataError("x and y must be finite")
    if len(np.unique(y)) < 2:
        raise DataError("y holds a single class; need both lightweight (1) and powerful (0) examples")
    config = CompatModelConfig(hidden_dim=hidden_dim)
    rng = np.random.default_rng(seed)
    init = init_compat_params(config, seed)
    # A wider start than the original's +-0.1 so the tiny model leaves p ~ 0.5 quickly.
    params = CompatParams(*(jnp.asarray(t + rng.normal(0, 0.5, t.shape).astype(np.float32)) for t in init))
    optimizer = optax.chain(optax.clip_by_global_norm(5.0), optax.adam(learning_rate))
    state = optimizer.init(params)  # type: ignore[arg-type]
    xs, ys = jnp.asarray(x), jnp.asarray(y)
    for step in range(steps):
        with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int32 step counts
            params, state, loss = _step(params, state, xs, ys, optimizer, config.nu, config.zeta)
        if step % 50 == 0 and not np.isfinite(float(loss)):
            raise TrainingError(f"loss became non-finite at step {step}")
    return CompatParams(*(np.asarray(t, np.float32) for t in params)), config


def compat_accuracy(params: CompatParams, config: CompatModelConfig, x: np.ndarray, y: np.ndarray) -> float:
    """Share of rows where (p >= 0.5) equals the label."""
    p = np.asarray(compat_forward(params, np.asarray(x, np.float32), config.nu, config.zeta))
    return float(np.mean((p >= 0.5) == (np.asarray(y) >= 0.5)))
