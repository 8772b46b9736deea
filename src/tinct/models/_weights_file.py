"""A ``.safetensors`` file read from one opened descriptor (see :mod:`tinct.models.weights`).

The file is opened once (:func:`tinct.regularfiles.open_regular`: a FIFO or a device is
refused at once, never waited on) and its size is checked against
:data:`MAX_WEIGHTS_BYTES` before a byte is read, so the header and the tensors come from
the same file, never from one swapped in between. :func:`read_header` reads only the
8-byte length and the JSON header; :func:`read_whole` reads the file once, and the
header and the tensors are both taken from those bytes.
"""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

from torch import Tensor

from tinct.regularfiles import open_regular

__all__ = ["MAX_WEIGHTS_BYTES", "read_header", "read_whole"]

#: The most bytes a weights file may have (tinct's own are some 10 MB), checked before reading.
MAX_WEIGHTS_BYTES = 1 << 30
#: The most bytes its JSON header may have (safetensors' own limit).
_MAX_HEADER_BYTES = 100_000_000

#: ``(tensor shapes, raw string metadata)`` of a file's header.
Header = tuple[dict[str, tuple[int, ...]], dict[str, str]]


def _open(path: Path) -> tuple[BinaryIO, int]:
    """The opened regular file and its size (at most :data:`MAX_WEIGHTS_BYTES`)."""
    try:
        fh = open_regular(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no weights file at {path}") from None
    except OSError as exc:  # a FIFO, a device, a folder, a broken link, no permission
        raise ValueError(str(exc)) from None
    size = os.fstat(fh.fileno()).st_size
    if size > MAX_WEIGHTS_BYTES:
        fh.close()
        raise ValueError(
            f"{path} has {size:,} bytes, more than the {MAX_WEIGHTS_BYTES:,} a weights file "
            "may have"
        )
    return fh, size


def _unreadable(path: Path, why: str) -> ValueError:
    return ValueError(f"{path} is not a readable safetensors file: {why}")


def _parse_header(fh: BinaryIO, size: int, path: Path) -> Header:
    """The shapes and the metadata of the header ``fh`` starts with (bounded by ``size``)."""
    head = fh.read(8)
    if len(head) < 8:
        raise _unreadable(path, f"{size} bytes, too short for a header")
    (n,) = struct.unpack("<Q", head)
    if n > min(_MAX_HEADER_BYTES, size - 8):
        raise _unreadable(path, f"its header declares {n:,} bytes, more than the file holds")
    try:
        header = json.loads(fh.read(n))
    except (ValueError, RecursionError):  # also UnicodeDecodeError
        raise _unreadable(path, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _unreadable(path, "its header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _unreadable(path, "its metadata is not a mapping of strings")
    shapes = {}
    for name, entry in header.items():
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(
            type(d) is int and d >= 0 for d in shape
        ):  # fmt: skip
            raise _unreadable(path, f"tensor {name[:40]!r} has no shape")
        shapes[name] = tuple(shape)
    return shapes, meta


def read_header(path: Path) -> Header:
    """The tensor shapes and the raw metadata of a ``.safetensors`` file, not its tensors.

    Raises:
        FileNotFoundError: No such file (``'no weights file at PATH'``).
        ValueError: Not a regular file, over :data:`MAX_WEIGHTS_BYTES`, or not a
            safetensors file.
    """
    fh, size = _open(path)
    with fh:
        return _parse_header(fh, size, path)


def read_whole(path: Path) -> tuple[dict[str, Tensor], Header]:
    """The tensors and the header of a ``.safetensors`` file, from one read of one descriptor.

    Raises:
        FileNotFoundError: No such file.
        ValueError: As :func:`read_header`, or tensors that safetensors refuses.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    fh, _ = _open(path)
    with fh:
        data = fh.read(MAX_WEIGHTS_BYTES + 1)
    if len(data) > MAX_WEIGHTS_BYTES:  # it grew since it was measured
        raise ValueError(f"{path} has more than the {MAX_WEIGHTS_BYTES:,} bytes allowed")
    header = _parse_header(io.BytesIO(data), len(data), path)
    try:
        state: dict[str, Any] = load(data)
    except SafetensorError as exc:
        raise _unreadable(path, str(exc)) from None
    return state, header
