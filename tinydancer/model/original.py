"""The original Tiny Dancer model: one step of a GRU-style cell from h0 = 0 (reference §1).

Pure functions of (params, inputs). The reset gate and the recurrent matrix are stored (the file
format has them) but have no effect, because the original always starts from h0 = 0.

Examples:
    >>> import numpy as np
    >>> cfg = CompatModelConfig()
    >>> params = init_compat_params(cfg, seed=0)
    >>> p = compat_forward(params, np.zeros((3, 5), np.float32), cfg.nu, cfg.zeta)
    >>> p.shape, bool(np.allclose(p, 0.5))
    ((3,), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tinydancer.errors import ConfigError
from tinydancer.validation import finite_number

Array = jax.Array | np.ndarray


@dataclass(frozen=True)
class CompatModelConfig:
    """Shape and gate scales of the original's model (the ``config`` JSON of its safetensors file)."""

    input_dim: int = 5
    hidden_dim: int = 8
    output_dim: int = 1
    nu: float = 1.0
    zeta: float = 1.0
    rank: int = 4

    def __post_init__(self) -> None:
        for name in ("input_dim", "hidden_dim", "output_dim", "rank"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65536:
                raise ConfigError(f"{name} must be an integer in [1, 65536], got {value!r}")
        for name in ("nu", "zeta"):
            value = getattr(self, name)
            if not finite_number(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Expected shape of every tensor in the file, by name."""
        h, i, o = self.hidden_dim, self.input_dim, self.output_dim
        return {
            "w_reset": (h, i),
            "w_update": (h, i),
            "w_candidate": (h, i),
            "w_recurrent": (h, h),
            "w_output": (o, h),
            "b_reset": (h,),
            "b_update": (h,),
            "b_candidate": (h,),
            "b_output": (o,),
        }


class CompatParams(NamedTuple):
    """Weights of the original's model (float32). H hidden, I input, O output units."""

    w_reset: Array  # [H, I]
    w_update: Array  # [H, I]
    w_candidate: Array  # [H, I]
    w_recurrent: Array  # [H, H]
    w_output: Array  # [O, H]
    b_reset: Array  # [H]
    b_update: Array  # [H]
    b_candidate: Array  # [H]
    b_output: Array  # [O]


def init_compat_params(config: CompatModelConfig, seed: int) -> CompatParams:
    """Random weights as the original draws them (uniform [-0.1, 0.1), zero biases), but seeded.

    Args:
        config: model shape.
        seed: any integer; the same seed gives the same weights.

    Returns:
        float32 numpy parameters.

    Examples:
        >>> p = init_compat_params(CompatModelConfig(), seed=1)
        >>> p.w_update.shape, float(abs(p.w_update).max()) < 0.1, float(p.b_output[0])
        ((8, 5), True, 0.0)
    """
    rng = np.random.default_rng(seed)
    tensors = {
        name: (
            rng.uniform(-0.1, 0.1, size=shape).astype(np.float32)
            if name.startswith("w_")
            else np.zeros(shape, np.float32)
        )
        for name, shape in config.tensor_shapes().items()
    }
    return CompatParams(**tensors)


def compat_forward(params: CompatParams, x: Array, nu: Array | float, zeta: Array | float) -> jax.Array:
    """Confidence of the original's model for every input row.

    u = sigmoid(nu (W_u x + b_u)); c = tanh(zeta (W_c x + b_c)); h = (1 - u) c; p = sigmoid(W_o h + b_o)[0].

    Args:
        params: model weights.
        x: inputs, shape [..., I].
        nu: update-gate scale (scalar).
        zeta: candidate scale (scalar).

    Returns:
        p, shape [...]: the first output unit after the sigmoid.

    Examples:
        >>> import numpy as np
        >>> params = init_compat_params(CompatModelConfig(), seed=0)
        >>> float(compat_forward(params, np.ones(5, np.float32), 1.0, 1.0)) != 0.5
        True
    """
    update = jax.nn.sigmoid(nu * (x @ params.w_update.T + params.b_update))
    candidate = jnp.tanh(zeta * (x @ params.w_candidate.T + params.b_candidate))
    hidden = (1.0 - update) * candidate
    logits = hidden @ params.w_output.T + params.b_output
    return jax.nn.sigmoid(logits[..., 0])
