"""Serving a trained FastGRNN through the Router: the same route() API, metrics, spans and logs.

A FastGRNN checkpoint (:func:`tinydancer.model.fastgrnn_file.save_fastgrnn`) whose ``input_dim`` is 5 reads
the original's five candidate features as a sequence of length 1, so the compat router is one
configuration of this model family. Its output is read as the confidence that the lightweight model
suffices, unless the checkpoint's metadata says ``"confidence_of": "strong"`` (a model trained on
"the weak model fails" labels, as :mod:`tinydancer.learning.experiment` does), in which case confidence is
``1 - p``. int8 checkpoints are dequantised once at load: the route kernel runs in float32.

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from tinydancer.model.fastgrnn import FastGRNNConfig, init_fastgrnn_params
    >>> from tinydancer.model.fastgrnn_file import save_fastgrnn
    >>> cfg = FastGRNNConfig(input_dim=5, hidden_dim=4)
    >>> path = save_fastgrnn(Path(tempfile.mkdtemp()) / "m.safetensors", init_fastgrnn_params(cfg), cfg)
    >>> served = load_served_fastgrnn(path)
    >>> served.spec.fastgrnn.hidden_dim, served.spec.confidence_of_strong, served.flat.ndim
    (4, False, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from tinydancer.errors import ModelLoadError
from tinydancer.model.compression import QuantizedFastGRNNParams, dequantize_params
from tinydancer.model.fastgrnn import FastGRNNConfig, FastGRNNParams, fastgrnn_logits
from tinydancer.model.fastgrnn_file import load_fastgrnn

#: Model input width the router's features give.
ROUTER_INPUT_DIM = 5


@dataclass(frozen=True)
class ServedFastGRNN:
    """Static description of a served FastGRNN (hashable: a static argument of the route kernel).

    Attributes:
        fastgrnn: the architecture.
        shapes: (field name, shape) of every present tensor, in ``FastGRNNParams`` order.
        confidence_of_strong: the model scores "the powerful model is needed"; confidence is 1 - p.
    """

    fastgrnn: FastGRNNConfig
    shapes: tuple[tuple[str, tuple[int, ...]], ...]
    confidence_of_strong: bool = False


class LoadedFastGRNN(NamedTuple):
    """Host-side result of loading: the spec, the dense params and their flat float32 vector."""

    spec: ServedFastGRNN
    params: FastGRNNParams
    flat: np.ndarray


def load_served_fastgrnn(path: str | Path) -> LoadedFastGRNN:
    """Load a FastGRNN checkpoint for serving (dequantising int8 checkpoints).

    Raises:
        ModelLoadError: not a FastGRNN checkpoint, an input width other than 5, or a bad
            ``confidence_of`` entry.
    """
    params, config, metadata = load_fastgrnn(path)
    if config.input_dim != ROUTER_INPUT_DIM:
        raise ModelLoadError(
            f"{path}: FastGRNN input_dim is {config.input_dim}; the router's candidate features need "
            f"{ROUTER_INPUT_DIM} (query-text models are evaluated offline, see tinydancer.learning.experiment)"
        )
    confidence_of = metadata.get("confidence_of", "lightweight")
    if confidence_of not in ("lightweight", "strong"):
        raise ModelLoadError(f"{path}: metadata confidence_of must be 'lightweight' or 'strong', got {confidence_of!r}")
    dense = dequantize_params(params) if isinstance(params, QuantizedFastGRNNParams) else params
    present = [(name, np.asarray(t, np.float32)) for name, t in zip(dense._fields, dense, strict=True) if t is not None]
    spec = ServedFastGRNN(config, tuple((name, t.shape) for name, t in present), confidence_of == "strong")
    flat = np.concatenate([t.ravel() for _, t in present]) if present else np.zeros(0, np.float32)
    return LoadedFastGRNN(spec, dense, flat)


def unflatten_fastgrnn(flat: jax.Array, spec: ServedFastGRNN) -> FastGRNNParams:
    """Inverse of the flat vector: FastGRNNParams sliced with static offsets (absent fields None)."""
    fields: dict[str, jax.Array | None] = dict.fromkeys(FastGRNNParams._fields)
    offset = 0
    for name, shape in spec.shapes:
        size = int(np.prod(shape)) if shape else 1
        fields[name] = flat[offset : offset + size].reshape(shape)
        offset += size
    return FastGRNNParams(**fields)  # type: ignore[arg-type]


def served_confidence(flat: jax.Array, spec: ServedFastGRNN, x: jax.Array) -> jax.Array:
    """Confidence that the lightweight model suffices for each feature row x [B, 5] -> [B]."""
    p = jax.nn.sigmoid(fastgrnn_logits(unflatten_fastgrnn(flat, spec), spec.fastgrnn, x[:, None, :]))
    return 1.0 - p if spec.confidence_of_strong else p


__all__ = ["LoadedFastGRNN", "ServedFastGRNN", "load_served_fastgrnn", "served_confidence"]
