"""16-bit PNG files out: an RGB(A) result with 16 bits a channel, written with zlib alone.

Pillow writes 16 bits a channel for gray PNGs only (mode ``I;16``), not for RGB or
RGBA, so :func:`write_png16` encodes the file itself (PNG 1.2: an ``IHDR`` of bit
depth 16 and colour type 2 or 6, ``IDAT`` rows filtered with the *Sub* filter, big-endian
samples, an ``IEND``). Any PNG reader that reads 16-bit PNGs reads it (libpng, Qt,
browsers, GIMP, ImageMagick); Pillow opens it too, but as 8-bit RGB.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["PNG_SIGNATURE", "write_png16"]

#: The eight bytes every PNG file begins with.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour types by channel count: 2 truecolour, 6 truecolour with alpha.
COLOUR_TYPES = {3: 2, 4: 6}
#: zlib level of the image data (6: zlib's default, the speed/size balance libpng uses).
ZLIB_LEVEL = 6


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC of type and data."""
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _sub_filtered(image: np.ndarray) -> bytes:
    """The rows of ``image`` as PNG scanlines, each a filter byte (1: *Sub*) and its bytes.

    Args:
        image: ``(H, W, C)`` uint16.

    Returns:
        ``H * (1 + W * C * 2)`` bytes: each byte less the byte one pixel to its left
        (modulo 256), which smooth images compress far better than raw samples.
    """
    h, w, c = image.shape
    raw = image.astype(">u2").view(np.uint8).reshape(h, w * c * 2)
    bpp = c * 2  # bytes a pixel
    rows = np.empty((h, 1 + raw.shape[1]), np.uint8)
    rows[:, 0] = 1
    rows[:, 1 : 1 + bpp] = raw[:, :bpp]
    np.subtract(raw[:, bpp:], raw[:, :-bpp], out=rows[:, 1 + bpp :])  # wraps modulo 256
    return rows.tobytes()


def write_png16(path: str | Path, image: np.ndarray) -> None:
    """Write a 16-bit RGB or RGBA PNG file.

    Args:
        path: The file to write (replaced if it exists).
        image: ``(H, W, 3|4)`` uint16 (RGB, or RGBA with straight alpha).

    Raises:
        ValueError: ``image`` is not ``(H, W, 3|4)`` uint16, or is empty.
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[-1] not in COLOUR_TYPES:
        raise ValueError(f"a 16-bit PNG takes (H, W, 3|4) uint16, got {arr.shape} {arr.dtype}")
    h, w, c = arr.shape
    if not h or not w:
        raise ValueError(f"a PNG needs at least one pixel, got {w} x {h}")
    header = struct.pack(">IIBBBBB", w, h, 16, COLOUR_TYPES[c], 0, 0, 0)
    data = zlib.compress(_sub_filtered(arr), ZLIB_LEVEL)
    with open(path, "wb") as fh:
        fh.write(PNG_SIGNATURE)
        fh.write(_chunk(b"IHDR", header))
        fh.write(_chunk(b"IDAT", data))
        fh.write(_chunk(b"IEND", b""))
