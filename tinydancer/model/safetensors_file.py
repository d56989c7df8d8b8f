"""Safetensors files of both model families: one bounded read, checks before allocation, atomic writes.

Reading takes the whole file in one ``read`` of one open file (bounded by ``fstat``), so a file replaced
while it is loaded (hot reload) is seen whole, old or new, never a mix of the two; the header's length,
its JSON, and every tensor's name, dtype and shape are checked against what the caller expects before
any tensor is built. Writing serialises in memory, writes a temporary file in the destination's folder,
flushes it to disk and renames it over the destination (``os.replace``): a reader, or a crash
mid-write, sees the old file or the new one, never half a file. Safetensors only (never pickle).

Examples:
    >>> import tempfile
    >>> import numpy as np
    >>> path = Path(tempfile.mkdtemp()) / "t.safetensors"
    >>> _ = write_safetensors(path, {"w": np.ones((2, 3), np.float32)}, {"format": "demo"})
    >>> file = read_safetensors(path)
    >>> file.metadata, read_tensors(file, {"w": ("F32", (2, 3))})["w"].sum()
    ({'format': 'demo'}, np.float32(6.0))
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from safetensors.numpy import load as decode_safetensors
from safetensors.numpy import save as encode_safetensors

from tinydancer.errors import ModelLoadError

#: Largest model file accepted (the original's default model is ~1 KB).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Largest safetensors JSON header accepted.
MAX_HEADER_BYTES = 1024 * 1024
#: numpy dtype of each safetensors dtype tag a model file may hold.
DTYPES: dict[str, type[np.generic]] = {
    "F32": np.float32,
    "I8": np.int8,
    "F64": np.float64,
    "I32": np.int32,
    "I64": np.int64,
    "U8": np.uint8,
}


class SafetensorsFile(NamedTuple):
    """A safetensors file read whole: its parsed header and its bytes.

    Attributes:
        path: where it was read from (named in every error).
        what: what it should be, for messages (``"model file"``, ``"FastGRNN checkpoint"``).
        header: the JSON header: one entry per tensor, plus ``__metadata__`` when present.
        data: the whole file.
    """

    path: Path
    what: str
    header: dict[str, Any]
    data: bytes

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The ``__metadata__`` object, or None when it is absent or not an object."""
        metadata = self.header.get("__metadata__")
        return metadata if isinstance(metadata, dict) else None

    def error(self, problem: str) -> ModelLoadError:
        """A ModelLoadError naming the file: ``"<what> '<path>' <problem>"``."""
        return ModelLoadError(f"{self.what} {str(self.path)!r} {problem}")


def read_safetensors(path: str | os.PathLike[str], what: str = "model file") -> SafetensorsFile:
    """Read the whole file once (bounded), then bound-check and parse its safetensors header.

    Args:
        path: a ``.safetensors`` file.
        what: what the file should be, for error messages.

    Returns:
        The parsed header and the file's bytes; no tensor is decoded yet (:func:`read_tensors`).

    Raises:
        ModelLoadError: missing, unreadable, larger than ``MAX_FILE_BYTES``, truncated, or a header
            that is over ``MAX_HEADER_BYTES``, past the end of the file, or not a JSON object.

    Examples:
        >>> read_safetensors("/nonexistent.safetensors")
        Traceback (most recent call last):
        ...
        tinydancer.errors.ModelLoadError: model file not found: no such file '/nonexistent.safetensors'
    """
    path = Path(path)
    name = repr(str(path))
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise ModelLoadError(f"{what} {name} is {size} bytes; at most {MAX_FILE_BYTES} accepted")
            data = handle.read(size + 1)  # read(n) allocates n bytes up front: n is bounded by the fstat size
    except FileNotFoundError:
        raise ModelLoadError(f"{what} not found: no such file {name}") from None
    except (OSError, ValueError) as exc:  # a folder, no permission, a NUL in the path, ...
        raise ModelLoadError(f"cannot read {what} {name}: {exc}") from exc
    size = len(data)
    unreadable = f"{what} {name} is not a readable safetensors file"
    if size < 8:
        raise ModelLoadError(f"{unreadable}: {size} bytes, truncated (not safetensors)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(MAX_HEADER_BYTES, size - 8):
        raise ModelLoadError(
            f"{unreadable}: it declares a {header_len}-byte header but has {size} bytes "
            f"(header limit {MAX_HEADER_BYTES}); truncated or not safetensors"
        )
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelLoadError(f"{unreadable}: bad JSON header, not safetensors ({exc})") from exc
    if not isinstance(header, dict):
        raise ModelLoadError(f"{unreadable}: its header is not a JSON object, not safetensors")
    return SafetensorsFile(path, what, header, data)


def check_tensors(file: SafetensorsFile, expected: Mapping[str, tuple[str, tuple[int, ...]]]) -> None:
    """Check the header declares exactly the expected tensors, dtypes and shapes (nothing is allocated).

    Args:
        file: a file from :func:`read_safetensors`.
        expected: tensor name -> (safetensors dtype tag, shape).

    Raises:
        ModelLoadError: other tensor names, or a tensor whose declared dtype or shape differs.

    Examples:
        >>> import tempfile
        >>> import numpy as np
        >>> path = Path(tempfile.mkdtemp()) / "t.safetensors"
        >>> _ = write_safetensors(path, {"w": np.ones(3, np.float32)}, {})
        >>> check_tensors(read_safetensors(path), {"w": ("F32", (4,))})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tinydancer.errors.ModelLoadError: model file '...': tensor 'w' expected shape [4] and dtype F32, got F32 [3]
    """
    found = {k for k in file.header if k != "__metadata__"}
    if found != set(expected):
        raise file.error(f"has tensors {sorted(found)}, expected exactly {sorted(expected)}")
    for name, (dtype, shape) in expected.items():
        entry = file.header[name]
        declared = entry.get("shape") if isinstance(entry, dict) else None
        if not (isinstance(entry, dict) and entry.get("dtype") == dtype and isinstance(declared, list)) or (
            tuple(declared) != shape
        ):
            got = f"{entry.get('dtype')} {entry.get('shape')}" if isinstance(entry, dict) else repr(entry)
            raise ModelLoadError(
                f"{file.what} {str(file.path)!r}: tensor {name!r} expected shape {list(shape)} and dtype {dtype}, "
                f"got {got}"
            )


def read_tensors(file: SafetensorsFile, expected: Mapping[str, tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    """The expected tensors, checked (:func:`check_tensors`) then decoded from the bytes already read.

    Args:
        file: a file from :func:`read_safetensors`.
        expected: tensor name -> (safetensors dtype tag, shape); tags are keys of ``DTYPES``.

    Returns:
        name -> contiguous numpy array of that dtype and shape, in ``expected``'s order.

    Raises:
        ModelLoadError: what :func:`check_tensors` raises; offsets that do not fit the bytes (not
            valid safetensors); a float tensor holding NaN or infinity.

    Examples:
        >>> import tempfile
        >>> import numpy as np
        >>> path = Path(tempfile.mkdtemp()) / "t.safetensors"
        >>> _ = write_safetensors(path, {"b": np.full(2, np.nan, np.float32)}, {})
        >>> read_tensors(read_safetensors(path), {"b": ("F32", (2,))})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tinydancer.errors.ModelLoadError: model file '...': tensor 'b' holds NaN or infinite values
    """
    check_tensors(file, expected)
    try:
        loaded = decode_safetensors(file.data)  # offsets are checked against the bytes already read
        tensors = {name: np.ascontiguousarray(loaded[name], DTYPES[dtype]) for name, (dtype, _) in expected.items()}
    except Exception as exc:  # the safetensors library raises several untyped errors
        raise file.error(f"is not valid safetensors: {exc}") from exc
    for name, tensor in tensors.items():
        if tensor.dtype.kind == "f" and not np.isfinite(tensor).all():
            raise ModelLoadError(f"{file.what} {str(file.path)!r}: tensor {name!r} holds NaN or infinite values")
    return tensors


def write_safetensors(
    path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray], metadata: dict[str, str]
) -> Path:
    """Write a safetensors file atomically: a temporary file in the same folder, flushed, then renamed.

    Parent folders are created. A failure at any step (or a crash) leaves the previous file as it was
    and no temporary file behind.

    Args:
        path: destination.
        tensors: name -> numpy array.
        metadata: the ``__metadata__`` string entries.

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> import numpy as np
        >>> folder = Path(tempfile.mkdtemp())
        >>> write_safetensors(folder / "a" / "t.safetensors", {"w": np.zeros(2, np.float32)}, {}).name
        't.safetensors'
        >>> sorted(p.name for p in (folder / "a").iterdir())  # no temporary file left
        ['t.safetensors']
    """
    out = Path(path)
    data = encode_safetensors(dict(tensors), metadata=metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    mode = _file_mode(out)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # mkstemp makes it owner-only
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _file_mode(path: Path) -> int:
    """Permissions for the new file: those of the file it replaces, else 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
        os.umask(umask)
        return 0o666 & ~umask


__all__ = [
    "MAX_FILE_BYTES",
    "MAX_HEADER_BYTES",
    "SafetensorsFile",
    "check_tensors",
    "read_safetensors",
    "read_tensors",
    "write_safetensors",
]
