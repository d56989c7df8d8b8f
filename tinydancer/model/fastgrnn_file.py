"""FastGRNN checkpoints in safetensors: tensors plus the config (and featuriser) as JSON metadata.

Float32 parameters are stored as float32 tensors named after the :class:`FastGRNNParams` fields; int8
parameters store ``<field>.values`` (int8) and ``<field>.scale`` (float32), so a quantised model is
really int8 on disk. ``__metadata__`` holds ``format`` = ``tinydancer-fastgrnn-v1``, ``config`` (the
:class:`FastGRNNConfig` as JSON), ``quantized`` and any extra string entries (e.g. the featuriser).
This is separate from the original router's compat layout (:mod:`tinydancer.model.original_file`), but
read and written the same way (:mod:`tinydancer.model.safetensors_file`): a checkpoint is read in one
bounded read, its tensors' names, dtypes and shapes are checked against the ones the config gives before
any is built, and a save writes a temporary file and renames it over the old one (never half a file).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from tinydancer.errors import ConfigError
from tinydancer.model.compression import QuantizedFastGRNNParams, QuantizedTensor
from tinydancer.model.fastgrnn import FastGRNNConfig, FastGRNNParams
from tinydancer.model.safetensors_file import SafetensorsFile, read_safetensors, read_tensors, write_safetensors

FORMAT = "tinydancer-fastgrnn-v1"
#: A prompt-router artifact (:mod:`tinydancer.model.prompt_artifact`) has this file's tensor layout too.
PROMPT_ROUTER_FORMAT = "tinydancer-prompt-router-v1"
_RESERVED = ("format", "config", "quantized", "members")
#: Most members of a stacked ensemble a checkpoint may declare.
MAX_MEMBERS = 64
#: The fields that stay float32 scalars in an int8 checkpoint (stored with shape [1]).
_SCALARS = ("zeta_raw", "nu_raw", "head_b")
#: What a checkpoint is called in error messages.
WHAT = "FastGRNN checkpoint"


def save_fastgrnn(
    path: str | Path,
    params: FastGRNNParams | QuantizedFastGRNNParams,
    config: FastGRNNConfig,
    metadata: dict[str, str] | None = None,
    *,
    file_format: str = FORMAT,
    extra_tensors: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write a FastGRNN checkpoint atomically (parent folders are created; a failed write keeps the old file).

    Args:
        path: Destination ``.safetensors`` file.
        params: Float32 or int8 parameters.
        config: Their architecture.
        metadata: Extra string entries (e.g. :func:`tinydancer.model.text_features.featurizer_metadata`).
        file_format: The ``format`` entry (a prompt-router artifact writes its own,
            :mod:`tinydancer.model.prompt_artifact`).
        extra_tensors: More float32 tensors stored beside the parameters (a prompt router's n-gram bag).

    Returns:
        The path written.

    Raises:
        ConfigError: A metadata key or extra tensor name collides with a reserved one, a value is not a
            string, or an ensemble (float32 parameters stacked on a leading member axis) is quantised.

    Examples:
        >>> import tempfile
        >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
        >>> cfg = FastGRNNConfig(input_dim=4, hidden_dim=8)
        >>> p = save_fastgrnn(Path(tempfile.mkdtemp()) / "m.safetensors", init_fastgrnn_params(cfg), cfg)
        >>> load_fastgrnn(p)[1] == cfg
        True
    """
    extra = dict(metadata or {})
    clash = [k for k in extra if k in _RESERVED]
    if clash or not all(isinstance(v, str) for v in extra.values()):
        raise ConfigError(f"metadata: expected str values and no reserved keys {_RESERVED}, got keys {clash}")
    quantized = isinstance(params, QuantizedFastGRNNParams)
    members = stacked_members(params, config)
    if quantized and members is not None:
        raise ConfigError("params: expected float32 parameters for an ensemble, got int8 (quantise single models only)")
    tensors: dict[str, np.ndarray] = {}
    for name, field in zip(params._fields, params, strict=True):
        if field is None:
            continue
        if isinstance(field, QuantizedTensor):
            tensors[f"{name}.values"] = np.asarray(field.values, np.int8)
            tensors[f"{name}.scale"] = np.asarray(field.scale, np.float32).reshape(1)
        else:
            tensors[name] = np.asarray(field, np.float32).reshape(np.shape(field) or (1,))
    header = {"format": file_format, "config": json.dumps(asdict(config), sort_keys=True)}
    header["quantized"] = "true" if quantized else "false"
    if members is not None:
        header["members"] = str(members)
    for name, tensor in (extra_tensors or {}).items():
        if name in tensors or name.split(".")[0] in FastGRNNParams._fields:
            raise ConfigError(f"extra_tensors: {name!r} collides with a FastGRNN parameter")
        tensors[name] = np.asarray(tensor, np.float32)
    return write_safetensors(path, tensors, {**extra, **header})


def load_fastgrnn(
    path: str | Path,
) -> tuple[FastGRNNParams | QuantizedFastGRNNParams, FastGRNNConfig, dict[str, str]]:
    """Read a checkpoint written by :func:`save_fastgrnn` (or a prompt-router artifact's FastGRNN part).

    Args:
        path: A ``.safetensors`` file.

    Returns:
        ``(params, config, metadata)``; ``params`` is int8 when the file is quantised; ``metadata``
        holds the extra entries only.

    Raises:
        ModelLoadError: Missing, unreadable or not safetensors, another format, bad config, tensors
            whose names, dtypes or shapes do not fit the config, or non-finite values. The message
            names the file and what was expected.

    Examples:
        >>> import tempfile
        >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
        >>> cfg = FastGRNNConfig(input_dim=4, hidden_dim=8)
        >>> p = save_fastgrnn(Path(tempfile.mkdtemp()) / "m.safetensors", init_fastgrnn_params(cfg), cfg, {"a": "b"})
        >>> load_fastgrnn(p)[2]
        {'a': 'b'}
    """
    params, config, metadata, _ = fastgrnn_from_file(read_safetensors(path, WHAT), (FORMAT, PROMPT_ROUTER_FORMAT))
    return params, config, metadata


def stacked_members(params: FastGRNNParams | QuantizedFastGRNNParams, config: FastGRNNConfig) -> int | None:
    """K when ``params`` are K members stacked on a leading axis (an ensemble), None for one model.

    Examples:
        >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
        >>> cfg = FastGRNNConfig(input_dim=3, hidden_dim=4)
        >>> stacked_members(init_fastgrnn_params(cfg), cfg) is None
        True
    """
    w1 = params.w1.values if isinstance(params.w1, QuantizedTensor) else params.w1
    return int(np.shape(w1)[0]) if np.ndim(w1) == len(config.param_shapes()["w1"]) + 1 else None


class FastGRNNFile(NamedTuple):
    """What :func:`fastgrnn_from_file` read: parameters, config, the other metadata entries, extra tensors."""

    params: FastGRNNParams | QuantizedFastGRNNParams
    config: FastGRNNConfig
    metadata: dict[str, str]
    extra_tensors: dict[str, np.ndarray]


def fastgrnn_from_file(
    file: SafetensorsFile,
    formats: tuple[str, ...] = (FORMAT,),
    extra_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> FastGRNNFile:
    """:func:`load_fastgrnn` of a file already read whole (``safetensors_file.read_safetensors``).

    The expected tensors follow from the config in the metadata (no parameters are built to learn them);
    a ``members`` entry K declares K float32 members stacked on a leading axis (an ensemble).

    Args:
        file: The file.
        formats: ``format`` entries accepted (a prompt-router artifact shares this tensor layout).
        extra_shapes: Float32 tensors the file must hold beside the parameters, name -> shape.

    Raises:
        ModelLoadError: as :func:`load_fastgrnn`.

    Examples:
        >>> import tempfile
        >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
        >>> cfg = FastGRNNConfig(input_dim=3, hidden_dim=4, u_rank=2)
        >>> p = save_fastgrnn(Path(tempfile.mkdtemp()) / "m.safetensors", init_fastgrnn_params(cfg), cfg)
        >>> params, _, _, _ = fastgrnn_from_file(read_safetensors(p))
        >>> params.u2.shape, params.w2, params.head_b.shape
        ((4, 2), None, ())
    """
    metadata = file.metadata or {}
    if metadata.get("format") not in formats:
        expected_formats = " or ".join(map(repr, formats))
        raise file.error(f"has format {metadata.get('format')!r}, expected format {expected_formats}")
    try:
        config = FastGRNNConfig(**json.loads(metadata["config"]))
    except (KeyError, TypeError, ValueError, RecursionError, ConfigError) as exc:
        raise file.error(f"has an invalid FastGRNN config in __metadata__: {exc}") from exc
    quantized = metadata.get("quantized") == "true"
    members = metadata.get("members")
    if members is not None and (not members.isdigit() or not 1 <= int(members) <= MAX_MEMBERS or quantized):
        raise file.error(f"declares members={members!r}, expected 1-{MAX_MEMBERS} float32 members")
    lead = () if members is None else (int(members),)
    shapes = {name: lead + shape for name, shape in config.param_shapes().items()}
    expected: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, shape in shapes.items():
        if quantized and name not in _SCALARS:
            expected[f"{name}.values"] = ("I8", shape)
            expected[f"{name}.scale"] = ("F32", (1,))
        else:
            expected[name] = ("F32", shape or (1,))  # scalars are stored with shape [1]
    for name, shape in (extra_shapes or {}).items():
        expected[name] = ("F32", shape)
    tensors = read_tensors(file, expected)
    fields: dict[str, object] = dict.fromkeys(FastGRNNParams._fields)
    for name, shape in shapes.items():
        if name in tensors:
            fields[name] = jnp.asarray(tensors[name].reshape(shape))
        else:
            scale = tensors[f"{name}.scale"].reshape(())
            fields[name] = QuantizedTensor(jnp.asarray(tensors[f"{name}.values"]), jnp.asarray(scale))
    params: FastGRNNParams | QuantizedFastGRNNParams = (
        QuantizedFastGRNNParams(**fields) if quantized else FastGRNNParams(**fields)  # type: ignore[arg-type]
    )
    extra = {name: tensors[name] for name in extra_shapes or {}}
    return FastGRNNFile(params, config, {k: v for k, v in metadata.items() if k not in _RESERVED}, extra)
