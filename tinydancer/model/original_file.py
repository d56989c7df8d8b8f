"""Model files in the original's exact safetensors layout, read with bounds checked before allocation.

Layout: nine float32 tensors (see :meth:`CompatModelConfig.tensor_shapes`) and ``__metadata__`` =
``{"config": "<JSON of input_dim, hidden_dim, output_dim, nu, zeta, rank>",
"format": "ruvector-tiny-dancer-fastgrnn-v1"}``. Safetensors only (never pickle). Files are read once and
written atomically by :mod:`tinydancer.model.safetensors_file`, as FastGRNN checkpoints are.

Examples:
    >>> import tempfile, os
    >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
    >>> cfg = CompatModelConfig(nu=0.5)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
    >>> save_compat_model(path, init_compat_params(cfg, seed=0), cfg)
    >>> params, loaded = load_compat_model(path)
    >>> loaded == cfg, params.w_output.shape
    (True, (1, 8))
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tinydancer.errors import ConfigError, ModelLoadError
from tinydancer.model.original import CompatModelConfig, CompatParams
from tinydancer.model.safetensors_file import (
    MAX_FILE_BYTES,
    MAX_HEADER_BYTES,
    SafetensorsFile,
    read_safetensors,
    read_tensors,
    write_safetensors,
)

COMPAT_FORMAT = "ruvector-tiny-dancer-fastgrnn-v1"


def _parse_config(path: Path, metadata: dict[str, Any] | None) -> CompatModelConfig:
    if metadata is None:
        raise ModelLoadError(f"model file {str(path)!r} has no __metadata__ (expected format {COMPAT_FORMAT!r})")
    if metadata.get("format") != COMPAT_FORMAT:
        raise ModelLoadError(
            f"model file {str(path)!r} has format {metadata.get('format')!r}, expected {COMPAT_FORMAT!r}"
        )
    try:
        raw = json.loads(metadata["config"])
        fields = {k: raw[k] for k in ("input_dim", "hidden_dim", "output_dim", "nu", "zeta")}
        return CompatModelConfig(**fields, rank=raw.get("rank", 4))
    except (KeyError, TypeError, json.JSONDecodeError, ConfigError) as exc:
        raise ModelLoadError(f"model file {str(path)!r} has an invalid config in __metadata__: {exc}") from exc


def load_compat_model(path: str | os.PathLike[str]) -> tuple[CompatParams, CompatModelConfig]:
    """Load and validate a model file written by the original or by :func:`save_compat_model`.

    Args:
        path: a ``.safetensors`` file.

    Returns:
        (float32 numpy parameters, model config).

    Raises:
        ModelLoadError: missing, truncated, not safetensors, wrong format tag, wrong tensor names,
            shapes or dtypes, or non-finite weights. The message names the file and what was expected.

    Examples:
        >>> load_compat_model("/nonexistent.safetensors")
        Traceback (most recent call last):
        ...
        tinydancer.errors.ModelLoadError: model file not found: no such file '/nonexistent.safetensors'
    """
    return compat_from_file(read_safetensors(path))


def compat_from_file(file: SafetensorsFile) -> tuple[CompatParams, CompatModelConfig]:
    """:func:`load_compat_model` of a file already read whole (``safetensors_file.read_safetensors``).

    Raises:
        ModelLoadError: as :func:`load_compat_model`.

    Examples:
        >>> import tempfile
        >>> from tinydancer.model.original import init_compat_params
        >>> from tinydancer.model.safetensors_file import read_safetensors
        >>> path = Path(tempfile.mkdtemp()) / "m.safetensors"
        >>> save_compat_model(path, init_compat_params(CompatModelConfig(), 0), CompatModelConfig())
        >>> compat_from_file(read_safetensors(path))[1] == CompatModelConfig()
        True
    """
    config = _parse_config(file.path, file.metadata)
    expected = {name: ("F32", shape) for name, shape in config.tensor_shapes().items()}
    return CompatParams(**read_tensors(file, expected)), config


def save_compat_model(path: str | os.PathLike[str], params: CompatParams, config: CompatModelConfig) -> None:
    """Write a model file the original can read; atomic (a reader never sees half a file).

    Args:
        path: destination; parent folders are created.
        params: weights whose shapes match ``config``.
        config: model config written to ``__metadata__``.

    Raises:
        ModelLoadError: a tensor's shape does not match the config or holds non-finite values.

    Examples:
        >>> import tempfile, os
        >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
        >>> path = os.path.join(tempfile.mkdtemp(), "sub", "m.safetensors")
        >>> save_compat_model(path, init_compat_params(CompatModelConfig(), 0), CompatModelConfig())
        >>> os.path.getsize(path) > 0
        True
    """
    tensors: dict[str, np.ndarray] = {}
    for name, shape in config.tensor_shapes().items():
        tensor = np.ascontiguousarray(np.asarray(getattr(params, name)), dtype=np.float32)
        if tensor.shape != shape:
            raise ModelLoadError(f"tensor {name!r} has shape {list(tensor.shape)}, config needs {list(shape)}")
        if not np.isfinite(tensor).all():
            raise ModelLoadError(f"tensor {name!r} holds NaN or infinite values; refusing to save")
        tensors[name] = tensor
    config_json = json.dumps(
        {
            "input_dim": config.input_dim,
            "hidden_dim": config.hidden_dim,
            "output_dim": config.output_dim,
            "nu": float(config.nu),
            "zeta": float(config.zeta),
            "rank": config.rank,
        }
    )
    write_safetensors(path, tensors, {"config": config_json, "format": COMPAT_FORMAT})


__all__ = [
    "COMPAT_FORMAT",
    "MAX_FILE_BYTES",
    "MAX_HEADER_BYTES",
    "compat_from_file",
    "load_compat_model",
    "save_compat_model",
]
