"""FITS files (astronomy) through astropy, their headers bounded before astropy parses them.

:func:`read_fits` reads the first image HDU of a ``.fits``, ``.fit`` or ``.fts`` file,
gzipped too (the ``fits`` extra); :func:`fits_shape` tells its shape from the headers.
A FITS header is as long as its writer liked, and astropy keeps several times its
text in memory (a 300 KB ``.fits.gz`` of blank cards cost 2 GB and 35 s), so
:func:`scan_headers` first walks the headers itself, block by block, through the
file's compression: at most :data:`MAX_FITS_HEADER_BYTES` of headers and
:data:`MAX_FITS_HDUS` HDUs up to the first image, and astropy is then asked for
those HDUs only. A zip- or LZW-compressed file (which astropy would unpack whole)
is refused, and a tile-compressed image's gzip tiles are inflated only up to a tile's
size (:func:`_tiles_bounded`). The file is opened once
(:func:`~tinct.engine.filelimits.open_regular`: a FIFO is refused, never waited on), and
the headers astropy parses are the ones walked.
"""

from __future__ import annotations

import bz2
import contextlib
import contextvars
import gzip
import lzma
import math
import re
import zlib
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from tinct.engine.filelimits import MAX_READ_PIXELS, ImageTooLargeError, open_regular

__all__ = [
    "FITS_SUFFIXES",
    "MAX_FITS_HDUS",
    "MAX_FITS_HEADER_BYTES",
    "fits_shape",
    "read_fits",
    "scan_headers",
]

#: Suffixes read as FITS (astropy, the ``fits`` extra).
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")
#: Most bytes of headers read up to the first image (all its HDUs' together).
MAX_FITS_HEADER_BYTES = 8 * 2**20
#: Most HDUs looked at for the first image.
MAX_FITS_HDUS = 1000

_BLOCK, _CARD = 2880, 80
_END_CARD = b"END" + b" " * 77
#: A card astropy's lenient parser would take for an END card (astropy's ``HEADER_END_RE``).
_LOOSE_END = re.compile(rb"END {0,76}[^A-Z0-9_-]")
#: The keywords that say where the next HDU begins.
_STRUCTURAL = re.compile(r"SIMPLE|XTENSION|BITPIX|NAXIS\d{0,3}|PCOUNT|GCOUNT|GROUPS|ZIMAGE")


def read_fits(path: str | Path, *, max_pixels: int = MAX_READ_PIXELS) -> np.ndarray:
    """Read the first image HDU of a FITS file (astronomy) as a numpy array.

    The headers up to it are bounded first (:func:`scan_headers`), then its declared
    size (``NAXISn``, all planes) is checked against ``max_pixels`` before any data is
    read. Blank pixels (NaN, common outside a survey's footprint) are returned as
    they are: :func:`~tinct.engine.inputs.prepare` shows them as the smallest finite
    value, takes the percentiles over the finite pixels only and says how many were
    blank, as for any float image. Byte order is left to it too (FITS data is
    big-endian).

    Args:
        path: ``.fits`` / ``.fit`` / ``.fts`` file, optionally gzipped.
        max_pixels: Most pixels the image may have, all planes together.

    Returns:
        ``(H, W)`` (or ``(..., H, W)`` for cubes) array in the file's dtype
        (floats for scaled integer data, as astropy applies ``BSCALE``/``BZERO``).

    Raises:
        OSError: Not a FITS file, no image data, or astropy is not installed.
        ImageTooLargeError: The declared size exceeds ``max_pixels``, or the headers
            before the image are longer than :data:`MAX_FITS_HEADER_BYTES`.
    """
    try:
        from astropy.io import fits
    except ImportError:
        raise OSError(
            "reading FITS files needs astropy: pip install -e '.[fits]' (or pip install astropy)"
        ) from None
    with open_regular(path) as fh:
        count = _scan(fh, Path(path), MAX_FITS_HEADER_BYTES, MAX_FITS_HDUS)
        fh.seek(0)
        return _read_first_image(fits, fh, path, count, max_pixels)


def _read_first_image(
    fits: Any, fh: IO[bytes], path: str | Path, count: int, max_pixels: int
) -> np.ndarray:
    """The first image among the ``count`` bounded HDUs of the open file (see read_fits).

    astropy's warnings while it reads (a truncated file, a header of odd length) are kept
    from the user: the error, if any, says what is wrong, in one line (:func:`_unreadable`).
    """
    from tinct.engine.thread_warnings import collect_warnings

    try:
        with (
            collect_warnings(Warning) as caught,
            fits.open(fh, memmap=False, lazy_load_hdus=True) as hdul,
        ):
            for index in range(count):  # never an HDU whose header was not bounded
                hdu = hdul[index]
                shape = _image_axes(hdu)
                if shape is None:
                    continue
                pixels = math.prod(shape)
                if pixels > max_pixels:
                    raise ImageTooLargeError(
                        f"{path} declares {'x'.join(map(str, shape))} = {pixels:,} pixels, "
                        f"more than the limit of {max_pixels:,}"
                    )
                with _tiles_bounded(hdu, pixels, path):
                    data = np.asarray(hdu.data)
                break
            else:
                raise OSError(f"{path}: no image data in the FITS file")
    except ImageTooLargeError:
        raise
    except Exception as exc:  # astropy (and numpy under it) raise many kinds for broken files
        if str(exc).startswith(str(path)):  # said here already
            raise
        raise _unreadable(path, exc, [str(w.message) for w in caught]) from None
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).any():
        raise ValueError(f"{path}: the image has no finite pixel")
    return data


def _unreadable(path: str | Path, exc: BaseException, said: list[str]) -> OSError:
    """``PATH: not a FITS file that can be read: WHY``, WHY in a user's words.

    astropy's truncation warning says more than the error it leads to ("cannot reshape
    array of size 30 into shape (64,80)"), and its advice to developers
    ("try with ignore_missing_simple=True") is dropped.
    """
    short = next((m for m in said if "truncated" in m), None)
    why = short or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    why = re.split(r"\. (?:If this is really|Try |try )", why)[0].rstrip(".")
    return OSError(f"{path}: not a FITS file that can be read: {why}")


def fits_shape(path: str | Path) -> tuple[int, ...] | None:
    """The shape of the array :func:`read_fits` returns, from the headers alone.

    Returns:
        ``(H, W)`` or ``(..., H, W)`` (numpy order: a 3-D cube is a stack of
        planes), or ``None`` when it cannot be told (no astropy, not a FITS
        file, no image HDU, headers beyond the bounds); reading the file then
        reports why.
    """
    from tinct.engine.thread_warnings import collect_warnings

    try:
        from astropy.io import fits

        with open_regular(path) as fh, collect_warnings(Warning):  # read_fits tells what is wrong
            count = _scan(fh, Path(path), MAX_FITS_HEADER_BYTES, MAX_FITS_HDUS)
            fh.seek(0)
            with fits.open(fh, memmap=False, lazy_load_hdus=True) as hdul:
                for index in range(count):
                    shape = _image_axes(hdul[index])
                    if shape is not None:
                        return shape[::-1]
    except Exception:  # astropy raises many kinds for broken files
        return None
    return None


def _image_axes(hdu: Any) -> tuple[int, ...] | None:
    """``(NAXIS1, NAXIS2, ...)`` of an HDU with image data (FITS order), else ``None``."""
    shape = tuple(
        int(hdu.header.get(f"NAXIS{i}", 0)) for i in range(1, 1 + int(hdu.header.get("NAXIS", 0)))
    )
    if len(shape) < 2 or 0 in shape or not hdu.is_image:
        return None
    return shape


def scan_headers(
    path: str | Path,
    *,
    max_bytes: int = MAX_FITS_HEADER_BYTES,
    max_hdus: int = MAX_FITS_HDUS,
) -> int:
    """Walk a FITS file's headers up to its first image; how many HDUs astropy may read.

    Each header is read in 2880-byte blocks up to its END card, through the file's
    gzip, bzip2 or xz compression, and the data after it is skipped by the size its
    structural keywords give (as astropy computes it), until an HDU that may hold an
    image (``NAXIS >= 2``, no axis 0: the primary HDU, an ``IMAGE`` extension or a
    compressed image), an HDU of another kind than primary, ``IMAGE``, ``TABLE`` or
    ``BINTABLE``, or the end of the file. Memory stays at one header.

    Args:
        path: The file.
        max_bytes: Most header bytes, all HDUs together.
        max_hdus: Most HDUs.

    Returns:
        The number of HDUs from the start whose headers were bounded (0: none).

    Raises:
        ImageTooLargeError: The headers run past ``max_bytes``, or more than
            ``max_hdus`` HDUs come before an image.
        OSError: A zip- or LZW-compressed file, or a header whose END card or
            structural keywords astropy could read otherwise (a stray END-like card, a
            keyword given twice with two values, a value that is no number).
    """
    with open_regular(path) as raw:
        return _scan(raw, Path(path), max_bytes, max_hdus)


def _scan(raw: IO[bytes], path: Path, max_bytes: int, max_hdus: int) -> int:
    """:func:`scan_headers` of the file open as ``raw`` (from its start)."""
    total = 0
    with contextlib.ExitStack() as stack:
        stream = _open_stream(raw, path, stack)
        for index in range(max_hdus):
            header = _read_header(stream, path, max_bytes - total, max_bytes)
            if header is None:  # the end of the file (or a truncated header astropy refuses)
                return index
            length, keys = header
            total += length
            kind = "PRIMARY" if index == 0 else str(keys.get("XTENSION", "")).upper()
            naxes = [_int(keys, f"NAXIS{i}", path) for i in range(1, _int(keys, "NAXIS", path) + 1)]
            image = kind in ("PRIMARY", "IMAGE") or keys.get("ZIMAGE") is True
            if image and len(naxes) >= 2 and all(n > 0 for n in naxes):
                return index + 1
            groups = index == 0 and keys.get("GROUPS") is True and naxes[:1] == [0]
            if (index == 0 and keys.get("SIMPLE") is not True) or groups or kind not in (
                "PRIMARY", "IMAGE", "TABLE", "BINTABLE"
            ):  # fmt: skip
                return index + 1  # astropy may size its data otherwise: go no further
            size = 0
            if naxes:
                size = abs(_int(keys, "BITPIX", path)) // 8 * _int(keys, "GCOUNT", path, 1)
                size *= _int(keys, "PCOUNT", path, 0) + math.prod(naxes)
            stream.seek(-(-size // _BLOCK) * _BLOCK, 1)
    raise ImageTooLargeError(f"{path}: no image among its first {max_hdus} HDUs")


def _open_stream(raw: IO[bytes], path: Path, stack: contextlib.ExitStack) -> IO[bytes]:
    """The file's bytes as astropy reads them: decompressed as its first bytes say."""
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith((b"PK\x03\x04", b"\x1f\x9d")):  # astropy unpacks these whole
        raise OSError(f"{path} is a zip- or LZW-compressed FITS file: unpack it first")
    if magic.startswith(b"\x1f\x8b\x08"):
        return stack.enter_context(cast(IO[bytes], gzip.GzipFile(fileobj=raw)))
    if magic.startswith(b"BZ"):
        return stack.enter_context(bz2.BZ2File(raw))
    if magic.startswith(b"\xfd7zXZ\x00"):
        return stack.enter_context(lzma.LZMAFile(raw))
    return raw


def _read_header(
    stream: IO[bytes], path: Path, budget: int, limit: int
) -> tuple[int, dict[str, Any]] | None:
    """The header at the stream's position, up to its END card: its length and keywords.

    Only the structural keywords are kept (:func:`_take_card`), so memory stays small
    however long the header is.

    Returns:
        ``(bytes, keywords)``, or None at the end of the file (or a truncated header).
    """
    keys: dict[str, Any] = {}
    length = 0
    while True:
        block = stream.read(_BLOCK)
        if len(block) < _BLOCK:
            return None
        length += _BLOCK
        if length > budget:
            raise ImageTooLargeError(
                f"{path}: its FITS headers run past {limit:,} bytes before an image; "
                "refused before they are parsed"
            )
        for start in range(0, _BLOCK, _CARD):
            card = block[start : start + _CARD]
            if card == _END_CARD:
                return length, keys
            if _LOOSE_END.match(card):
                raise OSError(f"{path}: a FITS header card looks like END but is not one")
            _take_card(card, keys, path)


def _take_card(card: bytes, keys: dict[str, Any], path: Path) -> None:
    """Add a card's keyword to ``keys`` if it is structural (given once, or with one value).

    Keywords are read as both of astropy's parsers read them: ``KEYWORD = value``
    with the ``= `` in columns 9-10, or within the first 8 columns.
    """
    text = card.decode("ascii", "replace")
    sep = 8 if text[8:10] == "= " else text.find("= ", 0, 8)
    if sep <= 0:
        return
    key = text[:sep].strip().upper()
    if not _STRUCTURAL.fullmatch(key):
        return
    raw = text[sep + 2 :].strip()
    if raw.startswith("'"):
        value: Any = raw[1:].split("'", 1)[0].strip()
    else:
        raw = raw.split("/", 1)[0].strip()
        value = {"T": True, "F": False}.get(raw, raw)
    if keys.setdefault(key, value) != value:
        raise OSError(f"{path}: the FITS keyword {key} is given twice with two values")


def _int(keys: dict[str, Any], key: str, path: Path, default: int | None = None) -> int:
    """A structural keyword's integer value, in the range the standard gives it."""
    value = keys.get(key, default)
    try:
        number = int(value) if not isinstance(value, bool) else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise OSError(f"{path}: the FITS keyword {key} is not an integer ({value!r})")
    top = {"NAXIS": 999, "BITPIX": 64}.get(key, 2**62)
    if not (-top if key == "BITPIX" else 0) <= number <= top:
        raise OSError(f"{path}: the FITS keyword {key} is out of range ({number})")
    return number


#: Most bytes a tile of the image being read may inflate to (unset: astropy's own decoding).
_TILE_BYTES: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "tinct_fits_tile_bytes", default=None
)


@contextlib.contextmanager
def _tiles_bounded(hdu: Any, pixels: int, path: str | Path) -> Any:
    """Inflate the gzip tiles of a tile-compressed image at most to a tile's size meanwhile.

    astropy (6 and later) inflates a ``GZIP_1``/``GZIP_2`` tile whole, whatever the image
    it belongs to: a 40 KB file declaring a 64 x 64 image spent 95 MB on its one tile (and a
    1 MB tile inflates to 1 GB). A tile holds at most ``min(tile, image)`` pixels of 8 bytes.
    """
    tile = getattr(hdu, "tile_shape", None)
    values = min(pixels, math.prod(tile)) if tile else pixels
    _bound_astropy_gzip()
    token = _TILE_BYTES.set(8 * max(1, values))
    try:
        yield
    except ImageTooLargeError as exc:
        raise ImageTooLargeError(f"{path}: {exc}") from None
    finally:
        _TILE_BYTES.reset(token)


def _inflate_tile(buf: Any) -> np.ndarray:
    """A gzip tile's bytes, refused past :data:`_TILE_BYTES` (astropy's decoding when unset)."""
    cbytes = np.frombuffer(buf, dtype=np.uint8).tobytes()
    limit = _TILE_BYTES.get()
    if limit is None:
        return np.frombuffer(gzip.decompress(cbytes), dtype=np.uint8)
    inflater = zlib.decompressobj(wbits=31)  # one gzip member, as FITS writes a tile
    out = inflater.decompress(cbytes, limit + 1)
    if len(out) > limit:
        raise ImageTooLargeError(
            f"a compressed tile inflates to more than the {limit:,} bytes a tile may hold"
        )
    return np.frombuffer(out, dtype=np.uint8)


def _bound_astropy_gzip() -> None:
    """Make astropy's ``GZIP_1``/``GZIP_2`` tile decoders use :func:`_inflate_tile`."""
    try:
        from astropy.io.fits.hdu.compressed import _codecs, _tiled_compression
    except ImportError:  # astropy before 6 decodes tiles in C, into a tile-sized buffer
        return
    table = getattr(_tiled_compression, "ALGORITHMS", None)
    gzip1: Any = getattr(_codecs, "Gzip1", None)
    gzip2: Any = getattr(_codecs, "Gzip2", None)
    if not isinstance(table, dict) or gzip1 is None or gzip2 is None:
        return
    if table.get("GZIP_1") is gzip1:
        table["GZIP_1"] = type("BoundedGzip1", (cast(type, gzip1),), {"decode": _decode_gzip1})
    if table.get("GZIP_2") is gzip2:
        table["GZIP_2"] = type("BoundedGzip2", (cast(type, gzip2),), {"decode": _decode_gzip2})


def _decode_gzip1(self: Any, buf: Any) -> np.ndarray:
    return _inflate_tile(buf)


def _decode_gzip2(self: Any, buf: Any) -> np.ndarray:
    return _inflate_tile(buf).reshape((self.itemsize, -1)).T.ravel()  # unshuffled
