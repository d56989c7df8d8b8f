"""The original Tiny Dancer model: one step of a GRU-style cell from h0 = 0 (reference §1).

Pure functions of (params, inputs). The reset gate and the recurrent matrix are stored (the file
format has them) but have no effect, because the original always starts from h0 = 0.

:class:`CompatModelConfig` is this family's side of the model interface
(:class:`tinydancer.model.family.ModelFamily`): ``forward`` on a flat parameter vector, ``flatten`` /
``unflatten``, ``save`` / ``load``. :func:`compat_forward` is the one forward pass everybody calls (the
route kernel, batch scoring, training).

Examples:
    >>> import numpy as np
    >>> cfg = CompatModelConfig()
    >>> params = init_compat_params(cfg, seed=0)
    >>> p = compat_forward(params, np.zeros((3, 5), np.float32), cfg.nu, cfg.zeta)
    >>> p.shape, bool(np.allclose(p, 0.5))
    ((3,), True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tinydancer.errors import InvalidInputError
from tinydancer.validation import check_int, check_number

Array = jax.Array | np.ndarray

#: ``compat_forward(..., unroll=True)`` unrolls cells with at most this many input weights per gate
#: (H x I); larger ones use the matrix form, because the unrolled form's compile time grows with H x I
#: (0.26 s at 8 x 5, 2.6 s at 128 x 5, and 6x that for its gradient).
UNROLL_MAX_WEIGHTS = 160


@dataclass(frozen=True)
class CompatModelConfig:
    """Shape and gate scales of the original's model (the ``config`` JSON of its safetensors file).

    Hashable and static: it is also this family's model interface (see
    :class:`tinydancer.model.family.ModelFamily`), so a jitted function binds it and ``forward`` reads
    its ``nu`` and ``zeta`` as constants.

    Examples:
        >>> cfg = CompatModelConfig(nu=0.5)
        >>> params = init_compat_params(cfg, seed=0)
        >>> flat = cfg.flatten(params)
        >>> flat.shape, cfg.param_count
        ((217,), 217)
        >>> x = np.ones((2, 5), np.float32)
        >>> bool(np.allclose(cfg.forward(flat, x), compat_forward(params, x, 0.5, 1.0)))
        True
    """

    kind: ClassVar[str] = "compat"
    input_dim: int = 5
    hidden_dim: int = 8
    output_dim: int = 1
    nu: float = 1.0
    zeta: float = 1.0
    rank: int = 4

    def __post_init__(self) -> None:
        for name in ("input_dim", "hidden_dim", "output_dim", "rank"):
            check_int(name, getattr(self, name), low=1, high=65536)
        for name in ("nu", "zeta"):
            check_number(name, getattr(self, name))

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

    @property
    def param_count(self) -> int:
        """P, the length of the flat parameter vector: every tensor's size, in ``CompatParams`` order."""
        return sum(int(np.prod(shape)) for shape in self.tensor_shapes().values())

    def flatten(self, params: CompatParams) -> np.ndarray:
        """Every tensor ravelled and concatenated in ``CompatParams`` order: float32 [P].

        Raises:
            InvalidInputError: a tensor's shape is not the one this config needs.

        Examples:
            >>> cfg = CompatModelConfig(hidden_dim=2)
            >>> flat = cfg.flatten(init_compat_params(cfg, 0))
            >>> flat.dtype, flat.shape
            (dtype('float32'), (43,))
        """
        parts = []
        for name, shape in self.tensor_shapes().items():
            tensor = np.asarray(getattr(params, name), np.float32)
            if tensor.shape != shape:
                raise InvalidInputError(f"params.{name}: expected shape {list(shape)}, got shape {list(tensor.shape)}")
            parts.append(tensor.ravel())
        return np.concatenate(parts)

    def unflatten(self, flat: Array) -> CompatParams:
        """Inverse of :meth:`flatten`, sliced with static offsets (works under jit and on numpy arrays).

        Raises:
            InvalidInputError: ``flat`` is not [P].

        Examples:
            >>> cfg = CompatModelConfig()
            >>> params = init_compat_params(cfg, 3)
            >>> back = cfg.unflatten(cfg.flatten(params))
            >>> all(np.array_equal(a, b) for a, b in zip(params, back))
            True
        """
        if tuple(flat.shape) != (self.param_count,):
            raise InvalidInputError(f"flat: expected shape ({self.param_count},), got {tuple(flat.shape)}")
        tensors, offset = [], 0
        for shape in self.tensor_shapes().values():  # the CompatParams field order
            size = int(np.prod(shape))
            tensors.append(flat[offset : offset + size].reshape(shape))
            offset += size
        return CompatParams(*tensors)

    def forward(self, flat: Array, x: Array) -> jax.Array:
        """Confidence of every feature row: :func:`compat_forward` of ``unflatten(flat)``, x [B, I] -> [B].

        Examples:
            >>> cfg = CompatModelConfig()
            >>> cfg.forward(cfg.flatten(init_compat_params(cfg, 0)), np.zeros((4, 5), np.float32)).shape
            (4,)
        """
        return compat_forward(self.unflatten(flat), x, self.nu, self.zeta)

    def save(self, path: str | os.PathLike[str], params: CompatParams) -> Path:
        """Write ``params`` with this config in the original's file layout, atomically.

        See :func:`tinydancer.model.original_file.save_compat_model` (what it checks and raises).

        Examples:
            >>> import tempfile
            >>> cfg = CompatModelConfig()
            >>> path = cfg.save(Path(tempfile.mkdtemp()) / "m.safetensors", init_compat_params(cfg, 0))
            >>> CompatModelConfig.load(path)[1] == cfg
            True
        """
        from tinydancer.model.original_file import save_compat_model  # that module imports this one

        save_compat_model(path, params, self)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[CompatParams, CompatModelConfig]:
        """Read a model file in the original's layout: (float32 numpy params, config).

        See :func:`tinydancer.model.original_file.load_compat_model` (what it checks and raises).

        Examples:
            >>> CompatModelConfig.load("/nonexistent.safetensors")
            Traceback (most recent call last):
            ...
            tinydancer.errors.ModelLoadError: model file not found: no such file '/nonexistent.safetensors'
        """
        from tinydancer.model.original_file import load_compat_model  # that module imports this one

        return load_compat_model(path)


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


def compat_forward(
    params: CompatParams, x: Array, nu: Array | float, zeta: Array | float, *, unroll: bool = False
) -> jax.Array:
    """Confidence of the original's model for every input row: its one forward pass.

    u = sigmoid(nu (W_u x + b_u)); c = tanh(zeta (W_c x + b_c)); h = (1 - u) c; p = sigmoid(W_o h + b_o)[0].

    The same equations with the two affine maps in one of two static forms: matrix products (the
    default), or with ``unroll=True`` scalar-times-column sums, elementwise only, so XLA fuses a whole
    batch of feature rows into one loop (about twice the rows/s of the matrix form on 65536 rows, but
    slower inside the route kernel from 32 candidates on). Cells over ``UNROLL_MAX_WEIGHTS`` always
    use the matrix form.

    Args:
        params: model weights.
        x: inputs, shape [..., I].
        nu: update-gate scale (scalar).
        zeta: candidate scale (scalar).
        unroll: compute the affine maps unrolled (see above); the same result to float32 rounding.

    Returns:
        p, shape [...]: the first output unit after the sigmoid.

    Examples:
        >>> import numpy as np
        >>> params = init_compat_params(CompatModelConfig(), seed=0)
        >>> float(compat_forward(params, np.ones(5, np.float32), 1.0, 1.0)) != 0.5
        True
        >>> x = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
        >>> a, b = compat_forward(params, x, 1.0, 1.0), compat_forward(params, x, 1.0, 1.0, unroll=True)
        >>> bool(np.allclose(a, b, atol=1e-6))
        True
    """
    hidden_dim, input_dim = np.shape(params.w_update)
    if unroll and hidden_dim * input_dim <= UNROLL_MAX_WEIGHTS:
        columns = [x[..., i] for i in range(input_dim)]
        logit = params.b_output[0]
        for j in range(hidden_dim):
            pre_update, pre_candidate = params.b_update[j], params.b_candidate[j]
            for i, column in enumerate(columns):
                pre_update = pre_update + params.w_update[j, i] * column
                pre_candidate = pre_candidate + params.w_candidate[j, i] * column
            logit = logit + params.w_output[0, j] * _hidden(pre_update, pre_candidate, nu, zeta)
        return jax.nn.sigmoid(logit)
    with np.errstate(invalid="ignore"):  # numpy inputs: BLAS may flag "invalid" on finite float32 (jax never warns)
        pre_update, pre_candidate = (
            x @ params.w_update.T + params.b_update,
            x @ params.w_candidate.T + params.b_candidate,
        )
    hidden = _hidden(pre_update, pre_candidate, nu, zeta)
    logits = hidden @ params.w_output.T + params.b_output
    return jax.nn.sigmoid(logits[..., 0])


def _hidden(pre_update: Array, pre_candidate: Array, nu: Array | float, zeta: Array | float) -> jax.Array:
    """The one-step hidden state from h0 = 0: (1 - sigmoid(nu pre_update)) tanh(zeta pre_candidate)."""
    return (1.0 - jax.nn.sigmoid(nu * pre_update)) * jnp.tanh(zeta * pre_candidate)
