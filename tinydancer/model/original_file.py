"""Model files in the original's exact safetensors layout, read with bounds checked before allocation.

Layout: nine float32 tensors (see :meth:`CompatModelConfig.tensor_shapes`) and ``__metadata__`` =
``{"config": "<JSON of input_dim, hidden_dim, output_dim, nu, zeta, rank>",
"format": "ruvector-tiny-dancer-fastgrnn-v1"}``. Safetensors only (never pickle).

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
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save_file

from tinydancer.errors import ConfigError, ModelLoadError
from tinydancer.model.original import CompatModelConfig, CompatParams

COMPAT_FORMAT = "ruvector-tiny-dancer-fastgrnn-v1"
#: Largest model file accepted (the original's default model is ~1 KB).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Largest safetensors JSON header accepted.
MAX_HEADER_BYTES = 1024 * 1024


def _read_file(path: Path) -> tuple[dict[str, Any], bytes]:
    """Read the whole file once (bounded), then bound-check and parse its safetensors header.

    One read of one open file: a file replaced while it is being loaded (hot reload) is seen whole,
    old or new, never a mix of the two.
    """
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise ModelLoadError(f"model file {str(path)!r} is {size} bytes; at most {MAX_FILE_BYTES} accepted")
            data = handle.read(size + 1)  # read(n) allocates n bytes up front: n is bounded by the fstat size
    except FileNotFoundError:
        raise ModelLoadError(f"model file not found: {str(path)!r}") from None
    except (OSError, ValueError) as exc:  # a folder, no permission, a NUL in the path, ...
        raise ModelLoadError(f"cannot read model file {str(path)!r}: {exc}") from exc
    size = len(data)
    if size < 8:
        raise ModelLoadError(f"model file {str(path)!r} is truncated: {size} bytes, not safetensors")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(MAX_HEADER_BYTES, size - 8):
        raise ModelLoadError(
            f"model file {str(path)!r} declares a {header_len}-byte header but the file has {size} bytes "
            f"(limit {MAX_HEADER_BYTES}): truncated or not safetensors"
        )
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelLoadError(f"model file {str(path)!r} is not safetensors: bad JSON header ({exc})") from exc
    if not isinstance(header, dict):
        raise ModelLoadError(f"model file {str(path)!r} is not safetensors: header is not a JSON object")
    return header, data


def model_format(path: str | os.PathLike[str]) -> str | None:
    """The ``format`` tag in a safetensors file's ``__metadata__`` (None when absent); bounds-checked.

    Raises:
        ModelLoadError: missing, truncated or not safetensors.

    Examples:
        >>> import tempfile, os
        >>> from tinydancer.model.original import CompatModelConfig, init_compat_params
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> save_compat_model(path, init_compat_params(CompatModelConfig(), 0), CompatModelConfig())
        >>> model_format(path)
        'ruvector-tiny-dancer-fastgrnn-v1'
    """
    metadata = _read_file(Path(path))[0].get("__metadata__")
    return metadata.get("format") if isinstance(metadata, dict) else None


def _parse_config(path: Path, header: dict[str, Any]) -> CompatModelConfig:
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict):
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
        tinydancer.errors.ModelLoadError: model file not found: '/nonexistent.safetensors'
    """
    path = Path(path)
    header, data = _read_file(path)
    config = _parse_config(path, header)
    expected = config.tensor_shapes()
    found = {k for k in header if k != "__metadata__"}
    if found != set(expected):
        raise ModelLoadError(
            f"model file {str(path)!r} has tensors {sorted(found)}, expected exactly {sorted(expected)}"
        )
    for name, shape in expected.items():
        entry = header[name]
        declared = entry.get("shape") if isinstance(entry, dict) else None
        if (
            not isinstance(entry, dict)
            or entry.get("dtype") != "F32"
            or not isinstance(declared, list)
            or (tuple(declared) != shape)
        ):
            got = (entry.get("dtype"), entry.get("shape")) if isinstance(entry, dict) else entry
            raise ModelLoadError(
                f"model file {str(path)!r}: tensor {name!r} is {got}, expected F32 with shape {list(shape)}"
            )
    try:
        loaded = load_safetensors(data)  # offsets are checked against the bytes already read
        tensors = {name: np.ascontiguousarray(loaded[name], np.float32) for name in expected}
    except Exception as exc:  # the safetensors library raises several untyped errors
        raise ModelLoadError(f"model file {str(path)!r} is not valid safetensors: {exc}") from exc
    for name, tensor in tensors.items():
        if not np.isfinite(tensor).all():
            raise ModelLoadError(f"model file {str(path)!r}: tensor {name!r} holds NaN or infinite values")
    return CompatParams(**tensors), config


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
    path = Path(path)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"config": config_json, "format": COMPAT_FORMAT})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
