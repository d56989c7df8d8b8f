"""FastGRNN checkpoints in safetensors: tensors plus the config (and featuriser) as JSON metadata.

Float32 parameters are stored as float32 tensors named after the :class:`FastGRNNParams` fields; int8
parameters store ``<field>.values`` (int8) and ``<field>.scale`` (float32), so a quantised model is
really int8 on disk. ``__metadata__`` holds ``format`` = ``tinydancer-fastgrnn-v1``, ``config`` (the
:class:`FastGRNNConfig` as JSON), ``quantized`` and any extra string entries (e.g. the featuriser).
This is separate from the original router's compat layout (:mod:`tinydancer.model.original_file`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from tinydancer.errors import ConfigError, ModelLoadError
from tinydancer.model.compression import QuantizedFastGRNNParams, QuantizedTensor
from tinydancer.model.fastgrnn import FastGRNNConfig, FastGRNNParams

FORMAT = "tinydancer-fastgrnn-v1"
_RESERVED = ("format", "config", "quantized")


def save_fastgrnn(
    path: str | Path,
    params: FastGRNNParams | QuantizedFastGRNNParams,
    config: FastGRNNConfig,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a FastGRNN checkpoint (parent folders are created).

    Args:
        path: Destination ``.safetensors`` file.
        params: Float32 or int8 parameters.
        config: Their architecture.
        metadata: Extra string entries (e.g. :func:`tinydancer.model.text_features.featurizer_metadata`).

    Returns:
        The path written.

    Raises:
        ConfigError: A metadata key collides with a reserved one, or a value is not a string.

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
    tensors: dict[str, np.ndarray] = {}
    for name, field in zip(params._fields, params, strict=True):
        if field is None:
            continue
        if isinstance(field, QuantizedTensor):
            tensors[f"{name}.values"] = np.asarray(field.values, np.int8)
            tensors[f"{name}.scale"] = np.asarray(field.scale, np.float32).reshape(1)
        else:
            tensors[name] = np.asarray(field, np.float32).reshape(np.shape(field) or (1,))
    header = {"format": FORMAT, "config": json.dumps(asdict(config), sort_keys=True)}
    header["quantized"] = "true" if quantized else "false"
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={**extra, **header})
    return out


def load_fastgrnn(
    path: str | Path,
) -> tuple[FastGRNNParams | QuantizedFastGRNNParams, FastGRNNConfig, dict[str, str]]:
    """Read a checkpoint written by :func:`save_fastgrnn`.

    Args:
        path: A ``.safetensors`` file.

    Returns:
        ``(params, config, metadata)``; ``params`` is int8 when the file is quantised; ``metadata``
        holds the extra entries only.

    Raises:
        ModelLoadError: Missing file, another format, bad config, or tensors that do not fit it.

    Examples:
        >>> import tempfile
        >>> from tinydancer.model.fastgrnn import init_fastgrnn_params
        >>> cfg = FastGRNNConfig(input_dim=4, hidden_dim=8)
        >>> p = save_fastgrnn(Path(tempfile.mkdtemp()) / "m.safetensors", init_fastgrnn_params(cfg), cfg, {"a": "b"})
        >>> load_fastgrnn(p)[2]
        {'a': 'b'}
    """
    src = Path(path)
    if not src.is_file():
        raise ModelLoadError(f"{src}: no such FastGRNN checkpoint")
    try:
        with open(src, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size <= src.stat().st_size - 8:
                raise ValueError(f"header length {size} does not fit a {src.stat().st_size}-byte file")
            header = json.loads(handle.read(size)).get("__metadata__", {})
        tensors = load_file(str(src))
    except (OSError, ValueError, SafetensorError) as exc:
        raise ModelLoadError(f"{src}: not a readable safetensors file: {exc}") from exc
    if header.get("format") != FORMAT:
        raise ModelLoadError(f"{src}: expected format {FORMAT!r}, got {header.get('format')!r}")
    try:
        config = FastGRNNConfig(**json.loads(header["config"]))
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ModelLoadError(f"{src}: invalid FastGRNN config metadata: {exc}") from exc
    quantized = header.get("quantized") == "true"
    scalars = ("zeta_raw", "nu_raw", "head_b")
    fields: dict[str, object] = {}
    for name in FastGRNNParams._fields:
        if name in scalars:
            fields[name] = jnp.asarray(tensors[name].reshape(()), jnp.float32) if name in tensors else None
        elif quantized and f"{name}.values" in tensors:
            values = tensors[f"{name}.values"]
            fields[name] = QuantizedTensor(
                jnp.asarray(values, jnp.int8), jnp.asarray(tensors[f"{name}.scale"].reshape(()), jnp.float32)
            )
        elif not quantized and name in tensors:
            fields[name] = jnp.asarray(tensors[name], jnp.float32)
        else:
            fields[name] = None
    params: FastGRNNParams | QuantizedFastGRNNParams = (
        QuantizedFastGRNNParams(**fields) if quantized else FastGRNNParams(**fields)  # type: ignore[arg-type]
    )
    _check_shapes(src, params, config)
    return params, config, {k: v for k, v in header.items() if k not in _RESERVED}


def _check_shapes(src: Path, params: FastGRNNParams | QuantizedFastGRNNParams, config: FastGRNNConfig) -> None:
    from tinydancer.model.fastgrnn import init_fastgrnn_params

    want = init_fastgrnn_params(config)
    for name, expected, got in zip(FastGRNNParams._fields, want, params, strict=True):
        got_arr = got.values if isinstance(got, QuantizedTensor) else got
        exp_shape = None if expected is None else tuple(np.shape(expected))
        got_shape = None if got_arr is None else tuple(np.shape(got_arr))
        if exp_shape != got_shape:
            raise ModelLoadError(f"{src}: tensor {name!r} expected shape {exp_shape}, got {got_shape}")
        if got_arr is not None and not bool(jnp.all(jnp.isfinite(jnp.asarray(got_arr, jnp.float32)))):
            raise ModelLoadError(f"{src}: tensor {name!r} holds NaN or infinity")
