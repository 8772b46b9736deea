"""16-bit colour PNG files in and out, which Pillow handles for gray only.

Pillow reads and writes 16 bits a channel for gray PNGs (mode ``I;16``) but not for
RGB, RGBA or gray + alpha: it opens a 16-bit RGB PNG as 8-bit RGB, dropping the low
byte of every sample, and writes none. So:

- :func:`write_png16` encodes the file itself (PNG 1.2: an ``IHDR`` of bit depth 16 and
  colour type 2 or 6, ``IDAT`` rows filtered with the *Sub* filter, big-endian samples,
  an ``IEND``), with zlib alone. Any PNG reader that reads 16-bit PNGs reads it (libpng,
  Qt, browsers, GIMP, ImageMagick, :func:`read_png16`).
- :func:`is_deep_colour` tells from a file's first bytes whether it is such a PNG, and
  :func:`read_png16` decodes it with imagecodecs (libpng), every sample kept; the caller
  checks the size the file declares first.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["PNG_SIGNATURE", "is_deep_colour", "read_png16", "write_png16"]

#: The eight bytes every PNG file begins with.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour types by channel count: 2 truecolour, 6 truecolour with alpha.
COLOUR_TYPES = {3: 2, 4: 6}
#: PNG colour types with more than a gray sample a pixel: gray + alpha, RGB, RGBA.
DEEP_COLOUR_TYPES = frozenset({2, 4, 6})
#: Bytes a file may hold beyond its samples: chunks besides the pixels (ICC profile,
#: text, EXIF) and zlib's framing. A PNG larger than its samples plus this is refused
#: before it is read into memory.
SLACK_BYTES = 16 << 20
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


def is_deep_colour(head: bytes) -> bool:
    """Whether a file that begins with ``head`` is a 16-bit PNG with colour or alpha.

    Args:
        head: The file's first 26 bytes or more (signature and ``IHDR``).

    Returns:
        True for a PNG whose ``IHDR`` gives bit depth 16 and colour type 2 (RGB),
        4 (gray + alpha) or 6 (RGBA): the PNGs Pillow would read as 8 bits.
    """
    if len(head) < 26 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return False
    return head[24] == 16 and head[25] in DEEP_COLOUR_TYPES


def read_png16(fh: IO[bytes], path: str | Path, width: int, height: int) -> np.ndarray:
    """Decode a 16-bit colour PNG (:func:`is_deep_colour`), every sample kept.

    Args:
        fh: The open file, at any position (it is read from its start).
        path: The file, named in errors.
        width: Its width, already checked against the pixel limit by the caller.
        height: Its height, likewise.

    Returns:
        ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA uint16, 0..65535 (gray + alpha comes
        back as RGBA with three equal channels, as Pillow's 8-bit gray + alpha does).

    Raises:
        OSError: The file is larger than its samples can account for, or libpng cannot
            decode it (truncated, corrupt), or imagecodecs is missing.
    """
    try:
        import imagecodecs
    except ImportError:  # a core dependency; a broken install still gets a clear line
        raise OSError(
            f"{path}: reading a 16-bit colour PNG needs the imagecodecs package "
            "(pip install imagecodecs)"
        ) from None
    most = width * height * 4 * 2 + height + SLACK_BYTES
    fh.seek(0)
    data = fh.read(most + 1)
    if len(data) > most:
        raise OSError(f"{path}: the file is larger than a {width} x {height} PNG can be")
    try:
        image = imagecodecs.png_decode(data)
    except Exception as exc:  # imagecodecs.PngError and libpng's other complaints
        raise OSError(f"{path}: not a readable PNG file ({exc})") from None
    if image.ndim != 3 or image.shape[:2] != (height, width) or image.dtype != np.uint16:
        raise OSError(f"{path}: the PNG decoded as {image.shape} {image.dtype}, not as declared")
    if image.shape[2] == 2:  # gray + alpha
        image = image[..., [0, 0, 0, 1]]
    return np.ascontiguousarray(image)
