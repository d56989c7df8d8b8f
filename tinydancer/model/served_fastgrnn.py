"""Serving a trained FastGRNN through the Router: the same route() API, metrics, spans and logs.

A FastGRNN checkpoint (:func:`tinydancer.model.fastgrnn_file.save_fastgrnn`) whose ``input_dim`` is 5 reads
the original's five candidate features as a sequence of length 1, so the compat router is one
configuration of this model family. Its output is read as the confidence that the lightweight model
suffices, unless the checkpoint's metadata says ``"confidence_of": "strong"`` (a model trained on
"the weak model fails" labels, as :mod:`tinydancer.learning.experiment` does), in which case confidence is
``1 - p``. int8 checkpoints are dequantised once at load: the route kernel runs in float32.

:class:`ServedFastGRNN` is this family's side of the model interface
(:class:`tinydancer.model.family.ModelFamily`): ``forward`` on a flat parameter vector, ``flatten`` /
``unflatten`` (every present tensor in ``FastGRNNParams`` order, shapes from the config), ``save`` /
``load``.

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
    >>> from tinydancer.model.fastgrnn_file import save_fastgrnn
    >>> cfg = FastGRNNConfig(input_dim=5, hidden_dim=4)
    >>> path = save_fastgrnn(Path(tempfile.mkdtemp()) / "m.safetensors", init_fastgrnn_params(cfg), cfg)
    >>> params, spec = ServedFastGRNN.load(path)
    >>> spec.fastgrnn.hidden_dim, spec.confidence_of_strong, spec.flatten(params).shape
    (4, False, (51,))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import jax
import numpy as np

from tinydancer.errors import InvalidInputError, ModelLoadError
from tinydancer.model.compression import QuantizedFastGRNNParams, dequantize_params
from tinydancer.model.fastgrnn import FastGRNNConfig, FastGRNNParams, fastgrnn_logits
from tinydancer.model.fastgrnn_file import WHAT, fastgrnn_from_file, save_fastgrnn
from tinydancer.model.safetensors_file import SafetensorsFile, read_safetensors

#: Model input width the router's features give.
ROUTER_INPUT_DIM = 5
#: ``confidence_of`` metadata values: what the model's probability is the probability of.
CONFIDENCE_OF = ("lightweight", "strong")


@dataclass(frozen=True)
class ServedFastGRNN:
    """Static description of a served FastGRNN (hashable: what the route kernel is jitted for).

    Attributes:
        fastgrnn: the architecture (``input_dim`` 5: the router's candidate features).
        confidence_of_strong: the model scores "the powerful model is needed"; confidence is 1 - p.

    Examples:
        >>> from tinydancer.model.fastgrnn import init_fastgrnn_params, fastgrnn_predict
        >>> spec = ServedFastGRNN(FastGRNNConfig(input_dim=5, hidden_dim=4), confidence_of_strong=True)
        >>> params = init_fastgrnn_params(spec.fastgrnn, seed=1)
        >>> flat = spec.flatten(params)
        >>> x = np.ones((2, 5), np.float32)
        >>> bool(np.allclose(spec.forward(flat, x), 1 - fastgrnn_predict(params, spec.fastgrnn, x)))
        True
    """

    kind: ClassVar[str] = "fastgrnn"
    fastgrnn: FastGRNNConfig
    confidence_of_strong: bool = False

    @property
    def input_dim(self) -> int:
        """I, the width of a feature row."""
        return self.fastgrnn.input_dim

    @property
    def shapes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """(field name, shape) of every present tensor, in ``FastGRNNParams`` order: the flat layout."""
        return tuple(self.fastgrnn.param_shapes().items())

    @property
    def param_count(self) -> int:
        """P, the length of the flat parameter vector."""
        return sum(int(np.prod(shape)) for _, shape in self.shapes)

    def flatten(self, params: FastGRNNParams) -> np.ndarray:
        """Every present tensor ravelled and concatenated in ``FastGRNNParams`` order: float32 [P].

        Raises:
            InvalidInputError: a tensor's shape (or presence) is not the one the architecture needs.

        Examples:
            >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
            >>> spec = ServedFastGRNN(FastGRNNConfig(input_dim=5, hidden_dim=4, w_rank=2))
            >>> spec.flatten(init_fastgrnn_params(spec.fastgrnn)).shape, spec.param_count
            ((49,), 49)
        """
        shapes = dict(self.shapes)
        parts = []
        for name, tensor in zip(FastGRNNParams._fields, params, strict=True):
            want = shapes.get(name)
            got = None if tensor is None else tuple(np.shape(tensor))
            if got != want:
                raise InvalidInputError(
                    f"params.{name}: expected {'no tensor' if want is None else f'shape {list(want)}'}, "
                    f"got {'none' if got is None else f'shape {list(got)}'}"
                )
            if tensor is not None:
                parts.append(np.asarray(tensor, np.float32).ravel())
        return np.concatenate(parts)

    def unflatten(self, flat: jax.Array | np.ndarray) -> FastGRNNParams:
        """Inverse of :meth:`flatten`: FastGRNNParams sliced with static offsets (absent fields None).

        Raises:
            InvalidInputError: ``flat`` is not [P].

        Examples:
            >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
            >>> spec = ServedFastGRNN(FastGRNNConfig(input_dim=5, hidden_dim=4))
            >>> params = init_fastgrnn_params(spec.fastgrnn, seed=2)
            >>> back = spec.unflatten(spec.flatten(params))
            >>> back.w2 is None, bool((back.u1 == params.u1).all()), back.nu_raw.shape
            (True, True, ())
        """
        if tuple(flat.shape) != (self.param_count,):
            raise InvalidInputError(f"flat: expected shape ({self.param_count},), got {tuple(flat.shape)}")
        fields: dict[str, jax.Array | np.ndarray | None] = dict.fromkeys(FastGRNNParams._fields)
        offset = 0
        for name, shape in self.shapes:
            size = int(np.prod(shape))
            fields[name] = flat[offset : offset + size].reshape(shape)
            offset += size
        return FastGRNNParams(**fields)  # type: ignore[arg-type]

    def forward(self, flat: jax.Array | np.ndarray, x: jax.Array | np.ndarray) -> jax.Array:
        """Confidence that the lightweight model suffices for each feature row, x [B, 5] -> [B].

        The FastGRNN reads each row as a sequence of length 1 (:func:`~tinydancer.model.fastgrnn.fastgrnn_logits`).

        Examples:
            >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
            >>> spec = ServedFastGRNN(FastGRNNConfig(input_dim=5, hidden_dim=4))
            >>> spec.forward(spec.flatten(init_fastgrnn_params(spec.fastgrnn)), np.zeros((3, 5), np.float32)).tolist()
            [0.5, 0.5, 0.5]
        """
        p = jax.nn.sigmoid(fastgrnn_logits(self.unflatten(flat), self.fastgrnn, x))
        return 1.0 - p if self.confidence_of_strong else p

    def save(self, path: str | os.PathLike[str], params: FastGRNNParams) -> Path:
        """Write a FastGRNN checkpoint the router serves as this spec (``confidence_of`` in its metadata).

        Atomic, as :func:`~tinydancer.model.fastgrnn_file.save_fastgrnn`.

        Examples:
            >>> import tempfile
            >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
            >>> spec = ServedFastGRNN(FastGRNNConfig(input_dim=5, hidden_dim=4), confidence_of_strong=True)
            >>> path = spec.save(Path(tempfile.mkdtemp()) / "m.safetensors", init_fastgrnn_params(spec.fastgrnn))
            >>> ServedFastGRNN.load(path)[1] == spec
            True
        """
        self.flatten(params)  # the shapes fit the spec
        metadata = {"confidence_of": "strong" if self.confidence_of_strong else "lightweight"}
        return save_fastgrnn(Path(path), params, self.fastgrnn, metadata)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[FastGRNNParams, ServedFastGRNN]:
        """Read a FastGRNN checkpoint for serving: (dense float32 params, spec); int8 is dequantised.

        Raises:
            ModelLoadError: what :func:`~tinydancer.model.fastgrnn_file.load_fastgrnn` raises, an input
                width other than 5, or a bad ``confidence_of`` entry.

        Examples:
            >>> ServedFastGRNN.load("/nonexistent.safetensors")
            Traceback (most recent call last):
            ...
            tinydancer.errors.ModelLoadError: FastGRNN checkpoint not found: no such file '/nonexistent.safetensors'
        """
        return cls.from_file(read_safetensors(path, WHAT))

    @classmethod
    def from_file(cls, file: SafetensorsFile) -> tuple[FastGRNNParams, ServedFastGRNN]:
        """:meth:`load` of a file already read whole (``safetensors_file.read_safetensors``).

        Raises:
            ModelLoadError: as :meth:`load`.

        Examples:
            >>> import tempfile
            >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
            >>> from tinydancer.model.safetensors_file import read_safetensors
            >>> cfg = FastGRNNConfig(input_dim=5, hidden_dim=4)
            >>> path = save_fastgrnn(Path(tempfile.mkdtemp()) / "m.safetensors", init_fastgrnn_params(cfg), cfg)
            >>> params, spec = ServedFastGRNN.from_file(read_safetensors(path))
            >>> spec.fastgrnn == cfg, spec.confidence_of_strong, params.w1.shape
            (True, False, (5, 4))
        """
        params, config, metadata, _ = fastgrnn_from_file(file)
        name = f"{file.what} {str(file.path)!r}"
        if config.input_dim != ROUTER_INPUT_DIM:
            raise ModelLoadError(
                f"{name}: FastGRNN input_dim is {config.input_dim}; the router's candidate features need "
                f"{ROUTER_INPUT_DIM} (query-text models are evaluated offline, see tinydancer.learning.experiment)"
            )
        confidence_of = metadata.get("confidence_of", "lightweight")
        if confidence_of not in CONFIDENCE_OF:
            raise ModelLoadError(
                f"{name}: metadata confidence_of: expected one of {CONFIDENCE_OF}, got {confidence_of!r}"
            )
        dense = dequantize_params(params) if isinstance(params, QuantizedFastGRNNParams) else params
        return dense, cls(config, confidence_of == "strong")


__all__ = ["ServedFastGRNN"]
