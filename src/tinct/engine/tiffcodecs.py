"""tifffile's own decoders, made to stop at the size of what they decode (as imagecodecs' do).

tifffile passes every decoder the size it expects (``out=``); its fallbacks for a missing
imagecodecs (deflate, LZMA, PackBits) ignore it, so one small strip could inflate to
gigabytes. :func:`bound_tifffile_decoders` puts :func:`_inflate`, :func:`_unxz` and
:func:`_unpackbits` in their place; :mod:`tinct.engine.tifffiles` calls it once a TIFF's
tags have been checked, before any pixel is decoded.
"""

from __future__ import annotations

import lzma
import zlib
from typing import Any

__all__ = ["bound_tifffile_decoders"]


def _inflate(data: Any, /, *, out: Any = None) -> bytes:
    """Deflate decoding that stops at ``out`` bytes when it is a size (as imagecodecs does)."""
    if not isinstance(out, int) or isinstance(out, bool):
        return zlib.decompress(data)
    return zlib.decompressobj().decompress(data, max(1, out))


def _unxz(data: Any, /, *, out: Any = None) -> bytes:
    """LZMA decoding that stops at ``out`` bytes when it is a size (as imagecodecs does)."""
    if not isinstance(out, int) or isinstance(out, bool):
        return lzma.decompress(data)
    return lzma.LZMADecompressor().decompress(data, max(1, out))


def _unpackbits(data: Any, /, *, out: Any = None) -> bytes:
    """PackBits decoding that stops at ``out`` bytes when it is a size (as imagecodecs does).

    tifffile's own decoder, used without imagecodecs, grew a list of every byte (8 bytes
    each) of the whole strip: a 256 KB strip of a 16 x 16 image cost 160 MB.
    """
    limit = out if isinstance(out, int) and not isinstance(out, bool) else None
    src = bytes(data)
    result = bytearray()
    i, end = 0, len(src)
    while i < end and (limit is None or len(result) < limit):
        head = src[i]
        if head < 128:  # head + 1 literal bytes
            result += src[i + 1 : i + 2 + head]
            i += 2 + head
        elif head > 128:  # the next byte, 257 - head times
            result += src[i + 1 : i + 2] * (257 - head)
            i += 2
        else:  # 128: no operation
            i += 1
    return bytes(result if limit is None else result[:limit])


def bound_tifffile_decoders() -> None:
    """Use :func:`_inflate`, :func:`_unxz` and :func:`_unpackbits` for tifffile's own decoders.

    tifffile passes every decoder the size it expects (``out=``); its fallbacks for a
    missing imagecodecs ignore it, so one small strip could inflate to gigabytes.
    """
    import tifffile

    codecs = tifffile.TIFF.DECOMPRESSORS
    table = getattr(codecs, "_codecs", None)
    if not isinstance(table, dict):
        return
    for key, bounded in (
        (8, _inflate), (32946, _inflate), (50013, _inflate), (34925, _unxz), (32773, _unpackbits)
    ):  # fmt: skip
        try:
            current = codecs[key]
        except (KeyError, ImportError):
            continue
        if current is not bounded and getattr(current, "__module__", "").endswith("_imagecodecs"):
            table[key] = bounded
