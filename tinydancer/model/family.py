"""The model interface both model families implement, and loading a model file of either family.

A model family's static, hashable description (its config) is the interface: the route kernel is
jitted once per config with it bound, and calls nothing but these methods. Parameters travel as one
flat float32 vector, because each argument of a jitted call costs microseconds to pass.

=================================  ==================================================================
``kind``                           ``"compat"`` (the original's model) or ``"fastgrnn"``
``input_dim``                      I, the width of a feature row (5: the router's candidate features)
``forward(flat, x)``               confidence [B] of feature rows x [B, I]; pure, jittable
``flatten(params)``                float32 numpy [P]
``unflatten(flat)``                the family's params, sliced from [P] with static offsets
``save(path, params)``             the family's safetensors file, written atomically
``load(path)`` (class method)      (params, config) from a file read once, checked before allocation
=================================  ==================================================================

Implemented by :class:`~tinydancer.model.original.CompatModelConfig` (params
:class:`~tinydancer.model.original.CompatParams`) and
:class:`~tinydancer.model.served_fastgrnn.ServedFastGRNN` (params
:class:`~tinydancer.model.fastgrnn.FastGRNNParams`: a FastGRNN on the router's five features).

Examples:
    >>> import numpy as np
    >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
    >>> model: ModelFamily[CompatParams] = CompatModelConfig()
    >>> flat = model.flatten(init_compat_params(CompatModelConfig(), seed=0))
    >>> model.kind, flat.shape, model.forward(flat, np.zeros((2, 5), np.float32)).shape
    ('compat', (217,), (2,))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Self, TypeVar

import jax
import numpy as np

from tinydancer.model.fastgrnn import FastGRNNConfig, FastGRNNParams
from tinydancer.model.fastgrnn_file import FORMAT as FASTGRNN_FORMAT
from tinydancer.model.original import CompatModelConfig, CompatParams
from tinydancer.model.original_file import COMPAT_FORMAT, compat_from_file
from tinydancer.model.safetensors_file import SafetensorsFile, read_safetensors
from tinydancer.model.served_fastgrnn import ServedFastGRNN

ParamsT = TypeVar("ParamsT")
#: The file format tags (``__metadata__["format"]``) of the two families.
FORMATS: tuple[str, ...] = (COMPAT_FORMAT, FASTGRNN_FORMAT)


class ModelFamily(Protocol[ParamsT]):
    """A model family's config: static, hashable, and the only thing the route kernel calls.

    Type parameter: the family's params (``CompatParams``, ``FastGRNNParams``).
    """

    @property
    def kind(self) -> str:
        """``"compat"`` or ``"fastgrnn"``: the family, for labels and messages."""
        ...

    @property
    def input_dim(self) -> int:
        """I, the width of a feature row."""
        ...

    @property
    def param_count(self) -> int:
        """P, the length of the flat parameter vector."""
        ...

    def forward(self, flat: jax.Array, x: jax.Array) -> jax.Array:
        """Confidence that the lightweight model suffices, x [B, I] -> [B] (pure; config static)."""
        ...

    def flatten(self, params: ParamsT) -> np.ndarray:
        """All tensors as one float32 vector [P]."""
        ...

    def unflatten(self, flat: jax.Array) -> ParamsT:
        """Inverse of :meth:`flatten`."""
        ...

    def save(self, path: str | os.PathLike[str], params: ParamsT) -> Path:
        """Write the family's file atomically."""
        ...

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[ParamsT, Self]:
        """(params, config) from the family's file, read once and checked before allocation."""
        ...

    def __hash__(self) -> int:
        """Configs are hashable: one jitted route kernel per config."""
        ...


if TYPE_CHECKING:  # mypy checks that both families implement the interface
    _COMPAT: ModelFamily[CompatParams] = CompatModelConfig()
    _FASTGRNN: ModelFamily[FastGRNNParams] = ServedFastGRNN(FastGRNNConfig(input_dim=5))


def load_model(
    path: str | os.PathLike[str],
) -> tuple[CompatParams, CompatModelConfig] | tuple[FastGRNNParams, ServedFastGRNN]:
    """A model file of either family, by its format tag, from one read: (params, config).

    One read of the file decides the family and gives the tensors, so a file replaced meanwhile (hot
    reload) is loaded whole, old or new.

    Args:
        path: a ``.safetensors`` model file.

    Returns:
        The family's params and config (a :class:`ModelFamily`).

    Raises:
        ModelLoadError: what the family's ``load`` raises, or a format tag no family has.

    Examples:
        >>> import tempfile
        >>> from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
        >>> spec = ServedFastGRNN(FastGRNNConfig(input_dim=5, hidden_dim=4))
        >>> path = spec.save(Path(tempfile.mkdtemp()) / "m.safetensors", init_fastgrnn_params(spec.fastgrnn))
        >>> load_model(path)[1].kind
        'fastgrnn'
    """
    return model_from_file(read_safetensors(path))


def model_from_file(
    file: SafetensorsFile,
) -> tuple[CompatParams, CompatModelConfig] | tuple[FastGRNNParams, ServedFastGRNN]:
    """:func:`load_model` of a file already read whole (a Router reads once, then picks the model kind).

    Raises:
        ModelLoadError: as :func:`load_model`.
    """
    fmt = None if file.metadata is None else file.metadata.get("format")
    if fmt == COMPAT_FORMAT:
        return compat_from_file(file)
    if fmt == FASTGRNN_FORMAT:
        return ServedFastGRNN.from_file(file)
    raise file.error(f"has format {fmt!r}, expected one of {list(FORMATS)}")


__all__ = ["FORMATS", "ModelFamily", "load_model", "model_from_file"]
