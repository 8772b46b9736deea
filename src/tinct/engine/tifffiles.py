"""TIFF files through tifffile, their tags bounded before any pixel is decoded.

:func:`read_tiff` reads a TIFF (any name: :data:`TIFF_MAGIC`) from an open file, as
:func:`tinct.engine.imagefiles.read_image` returns it: its pages are counted first (more
than :data:`MAX_PAGES` that are not one stack are refused: :func:`_check_pages`), then the
series' declared pixels and its tiles or strips are checked (:func:`_check_tiff`;
tifffile's own decoders are bounded by :mod:`tinct.engine.tiffcodecs`), a TIFF stored as
colour planes is one ``(H, W, 3|4)`` image, gray pages are a stack, and palette, MINISWHITE,
CMYK and low-bit gray values become gray or RGB(A). :func:`tiff_shape` tells the shape
from the tags alone. A file tifffile cannot parse is an :class:`OSError` naming it. Only
the file itself is read: an OME-TIFF (or a Micro-Manager stack) whose metadata names
other files is read as a plain TIFF, never opening them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from tinct.engine.filelimits import ImageTooLargeError, check_declared, open_regular
from tinct.engine.tiffcodecs import bound_tifffile_decoders

__all__ = [
    "COLOUR_SAMPLES",
    "MIN_SEGMENT_VALUES",
    "ORIENTATION_TAG",
    "TIFF_MAGIC",
    "read_tiff",
    "tiff_shape",
]

#: The orientation tag of EXIF and TIFF: how stored pixels are turned for display.
ORIENTATION_TAG = 0x0112
#: The first bytes of a TIFF or BigTIFF: tifffile reads it (and bounds it), whatever its name.
TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
#: Samples a TIFF pixel may have and count as one pixel (CMYK and alpha); more count each.
COLOUR_SAMPLES = 5
#: Values a TIFF tile or strip may hold beyond its page's (a small page's one tile).
MIN_SEGMENT_VALUES = 2**22


def read_tiff(fh: IO[bytes], path: Path, limit: int) -> tuple[np.ndarray, str, int]:
    """Decode the TIFF open as ``fh`` (after its bounds are checked).

    Args:
        fh: The file, open for reading in binary.
        path: Its name (in messages).
        limit: Most pixels of the series, all pages together.

    Returns:
        ``(values, axes, orientation)``: the array as :func:`_tiff_values` gives it, its
        tifffile axis letters, and the orientation tag to apply to its ``Y`` and ``X``
        axes (1 when there is none, or no such axes).

    Raises:
        ImageTooLargeError: Over the bounds (:func:`_check_tiff`).
        OSError: Not a TIFF file tifffile can read.
    """
    with _quiet_tifffile(), _tiff_file(fh, path) as tif:
        _check_pages(tif, path)
        try:
            series, page = tif.series[0], tif.pages[0]  # what tifffile.imread reads
        except Exception as exc:  # no pages, a broken first page
            raise _unreadable(path, exc) from None
        _check_tiff(path, series, limit)
        data = _decoded(series, page, path)
        if data.size == 0 or data.ndim < 2:
            raise OSError(f"{path}: not a TIFF file that can be read: no pixels in it")
        data, axes = _samples_last(page, series.axes, data)
        data, axes = _tiff_values(page, axes, data)
        tag = page.tags.get(ORIENTATION_TAG)
        turn = int(tag.value) if tag and "Y" in axes and "X" in axes else 1
        return data, axes, turn


#: tifffile's file kinds whose series read other files, named inside the TIFF (an OME-TIFF's
#: XML names any path, a FIFO or the terminal included; Micro-Manager stacks glob the folder).
_OTHER_FILES = ("ome", "mmstack", "ndtiff")


def _decoded(series: Any, page: Any, path: Path) -> np.ndarray:
    """The series' pixels; a compression only imagecodecs decodes says how to get it.

    A strip or tile that does not decode (corrupt, or inflating past its image:
    imagecodecs' decoders stop at the size tifffile expects and raise) is
    ``OSError('PATH: not a TIFF file that can be read: WHY')``, one line naming the file.
    """
    try:
        return np.asarray(series.asarray())
    except ValueError as exc:  # tifffile: "<COMPRESSION.LZW: 5> requires the 'imagecodecs' ..."
        if "imagecodecs" not in str(exc):
            raise _unreadable(path, exc) from None
        kind = getattr(page.compression, "name", str(page.compression))
        raise OSError(
            f"{path}: its {kind} compression needs the imagecodecs package "
            "(pip install imagecodecs)"
        ) from None
    except MemoryError:
        raise
    except Exception as exc:  # imagecodecs' DeflateError, ImcdError, ...; zlib.error
        raise _unreadable(path, exc) from None


#: Set in a thread while it reads a TIFF here (:func:`_quiet_tifffile`).
_READING = threading.local()


class _WhileReading(logging.Filter):
    """Drops tifffile's log records in a thread reading a TIFF for tinct."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_READING, "on", False)


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's log records while this thread reads a TIFF (others keep theirs).

    A broken TIFF made tifffile log its own findings ("<tifffile.TiffPage 0 @8> incorrect
    StripByteCounts count (1 != 12500)"), printed before the one line that names the
    file and what is wrong with it; the reader's error is what a user is told.
    """
    logger = logging.getLogger("tifffile")
    if not any(isinstance(f, _WhileReading) for f in logger.filters):
        logger.addFilter(_WhileReading())
    was = getattr(_READING, "on", False)
    _READING.on = True
    try:
        yield
    finally:
        _READING.on = was


def _tiff_file(fh: IO[bytes], path: Path) -> Any:
    """``tifffile.TiffFile`` of the open file, reading that file alone.

    The kinds in :data:`_OTHER_FILES` are read as plain TIFFs (their pages in order),
    except a one-file OME-TIFF where tifffile can be told to give up on other files
    (``_multifile=False``: an OME series naming another file is then read plainly).
    """
    import inspect

    import tifffile

    alone: dict[str, Any] = {}
    if "_multifile" in inspect.signature(tifffile.TiffFile).parameters:
        alone["_multifile"] = False
    kinds = [k for k in _OTHER_FILES if not (k == "ome" and alone)]
    alone.update({f"is_{k}": False for k in kinds if k in tifffile.TIFF.FILE_FLAGS})
    try:
        return tifffile.TiffFile(fh, name=path.name, **alone)
    except Exception as exc:  # tifffile raises many kinds for a broken header
        raise _unreadable(path, exc) from None


def _check_pages(tif: Any, path: Path) -> None:
    """Refuse a TIFF of more than :data:`MAX_PAGES` pages that are not one stack.

    tifffile sorts such pages into series one by one, and then compares every series with
    every other (its ``pyramidize_series``): a 12 MB file of 50,000 pages of 2 x 2 pixels,
    each its own series, took 5 minutes to open (twice: its shape is asked first), and
    then only its first page was read. One stack of any number of pages (tifffile's shaped
    layout, or ImageJ's) is one series, opened at once. Only the page offsets are read.

    Raises:
        ImageTooLargeError: More pages than :data:`MAX_PAGES`, not one stack.
    """
    try:
        pages = len(tif.pages)
    except Exception as exc:  # a broken chain of pages
        raise _unreadable(path, exc) from None
    if pages <= MAX_PAGES or _one_stack(tif, pages):
        return
    raise ImageTooLargeError(
        f"{path} holds {pages:,} pages that are not one stack, more than the {MAX_PAGES:,} "
        "a TIFF may hold (tifffile sorts each such page on its own); refused before reading"
    )


#: Most pages of a TIFF that are not one stack (:func:`_check_pages`; 4096 take ~4 s).
MAX_PAGES = 4096


def _one_stack(tif: Any, pages: int) -> bool:
    """Whether the first page describes all ``pages`` as one stack (shaped or ImageJ)."""
    import json

    first = tif.pages.first
    try:
        if tif.is_shaped:
            shape = json.loads(first.description)["shape"]
            return math.prod(shape) == pages * math.prod(first.shape)
        if tif.is_imagej:
            return int((tif.imagej_metadata or {}).get("images", 0)) == pages
    except (ValueError, KeyError, TypeError):  # a description that is not what it says
        return False
    return False


def _unreadable(path: Path, exc: Exception) -> OSError:
    """``'PATH: not a TIFF file that can be read: WHY'`` (tifffile's first line, or no image)."""
    why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, IndexError):  # tifffile found no page
        why = "no image in it"
    return OSError(f"{path}: not a TIFF file that can be read: {why}")


def _check_tiff(path: Path, series: Any, limit: int) -> None:
    """Refuse a TIFF whose tags declare more than ``limit`` pixels, before it is decoded.

    Its pixels are those of every page of the series; colour samples (up to
    :data:`COLOUR_SAMPLES`) are not pixels, but a page of more samples a pixel counts
    each of them. A tile or strip must not hold more values than its page, or
    :data:`MIN_SEGMENT_VALUES` (tifffile decodes a whole one at a time: a 16 x 16 image
    in one 32768 x 32768 tile cost 2 GB). tifffile's own deflate and LZMA decoders (used
    without imagecodecs) are made to stop at the segment's size, as imagecodecs' do.

    Raises:
        ImageTooLargeError: The series or one of its tiles or strips is over the bounds.
    """
    shape = tuple(series.shape)
    samples = shape[series.axes.index("S")] if "S" in series.axes else 1
    pixels = math.prod(shape) // (samples if 0 < samples <= COLOUR_SAMPLES else 1)
    check_declared(path, pixels, " x ".join(map(str, shape)), limit)
    for page in {id(p.keyframe): p.keyframe for p in series.pages if p is not None}.values():
        segment, whole = math.prod(page.chunks), math.prod(page.shape)
        if segment > max(whole, MIN_SEGMENT_VALUES):
            kind = "tiles" if page.is_tiled else "strips"
            raise ImageTooLargeError(
                f"{path} declares {kind} of {' x '.join(map(str, page.chunks))} values for an "
                f"image of {' x '.join(map(str, page.shape))}; refused before decoding"
            )
    bound_tifffile_decoders()


def tiff_shape(path: str | Path) -> tuple[int, ...]:
    """A TIFF's shape laid out as :func:`read_image` lays it out, from its tags alone.

    Stack planes come first and colour samples last: a planar RGB(A) page, stored
    ``(3|4, H, W)``, is ``(H, W, 3|4)``. Samples count as stored (a palette image
    is ``(H, W)``; it reads as ``(H, W, 3)``).

    Raises:
        OSError: Not a regular file, or not a TIFF file tifffile can read.
    """
    path = Path(path)
    with open_regular(path) as fh, _quiet_tifffile(), _tiff_file(fh, path) as tif:
        _check_pages(tif, path)
        try:
            series, page = tif.series[0], tif.pages[0]
        except Exception as exc:  # no pages, a broken first page
            raise _unreadable(path, exc) from None
        shape = tuple(series.shape)
        axis = _planar_colour_axis(page, series.axes)
    if axis is None:
        return shape
    return shape[:axis] + shape[axis + 1 :] + shape[axis : axis + 1]


#: TIFF photometric interpretations (tag 262) whose stored values are not gray or RGB.
_MINISWHITE, _PALETTE, _SEPARATED = 0, 3, 5
#: Photometric RGB, and PlanarConfiguration (tag 284) SEPARATE: one plane per sample.
_RGB, _PLANAR_SEPARATE = 2, 2


def _planar_colour_axis(page: Any, axes: str) -> int | None:
    """Where a TIFF stored as colour planes keeps its samples (``S``), else ``None``.

    Only the tags say so: a page whose photometric tag is RGB or CMYK and whose
    samples are stored one plane each (PlanarConfiguration 2) is one colour image
    however it is shaped; gray pages (MINISBLACK, with any number of samples,
    or one page per plane) are a stack.
    """
    if "S" not in axes or axes.endswith("S") or int(page.planarconfig) != _PLANAR_SEPARATE:
        return None
    return axes.index("S") if int(page.photometric) in (_RGB, _SEPARATED) else None


def _samples_last(page: Any, axes: str, data: np.ndarray) -> tuple[np.ndarray, str]:
    """A planar colour TIFF's samples, ``(..., 3|4, H, W)``, moved last as Pillow reads them."""
    axis = _planar_colour_axis(page, axes)
    if axis is None:
        return data, axes
    return np.moveaxis(data, axis, -1), axes.replace("S", "") + "S"


#: TIFF InkSet tag (332): 2 means the separated inks are not CMYK.
_INKSET_TAG = 332


def _cmyk(page: Any) -> bool:
    tag = page.tags.get(_INKSET_TAG)
    return tag is None or int(tag.value) != 2


def _tiff_values(page: Any, axes: str, data: np.ndarray) -> tuple[np.ndarray, str]:
    """A TIFF's stored samples as gray or RGB(A) values.

    A palette image becomes its colours; MINISWHITE (0 is white: scans, faxes) is
    inverted; CMYK becomes RGB (a fifth sample kept as alpha); bilevel and 2/4-bit
    gray is spread over 0-255. Planar colour samples are last already
    (:func:`_samples_last`).

    Returns:
        ``(values, axes)``: the array and its tifffile axis letters.
    """
    photometric, bits = int(page.photometric), int(page.bitspersample or 8)
    if photometric == _PALETTE and page.colormap is not None:
        cmap = np.asarray(page.colormap)
        cmap = (cmap >> 8 if cmap.max() > 255 else cmap).astype(np.uint8)
        index = data[..., 0] if axes.endswith("S") else data
        return cmap.T[np.minimum(index, cmap.shape[1] - 1)], axes.rstrip("S") + "S"
    if photometric == _SEPARATED and axes.endswith("S") and data.shape[-1] >= 4 and _cmyk(page):
        return _cmyk_to_rgb(data), axes
    if data.dtype == bool:
        data, bits = data.astype(np.uint8), 1
    if photometric == _MINISWHITE:
        data = _inverted(data, bits)
    if data.dtype == np.uint8 and bits < 8:
        data = data * np.uint8(255 // ((1 << bits) - 1))
    return data, axes


def _inverted(data: np.ndarray, bits: int) -> np.ndarray:
    """MINISWHITE values as gray levels (0 black): the value range turned around."""
    if data.dtype.kind == "u":
        top = data.dtype.type(min((1 << bits) - 1, np.iinfo(data.dtype).max))
        return top - np.minimum(data, top)
    if data.dtype.kind == "i":
        return np.invert(data)
    finite = data[np.isfinite(data)]  # floats: 1 - v in [0, 1], else the range turned
    if not finite.size:
        return data
    low, high = finite.min(), finite.max()
    return (1 - data if low >= 0 and high <= 1 else (low + high) - data).astype(data.dtype)


def _cmyk_to_rgb(data: np.ndarray) -> np.ndarray:
    """CMYK(+alpha) samples, ``(..., 4|5)``, as RGB(A) of the same dtype."""
    top = float(np.iinfo(data.dtype).max) if data.dtype.kind in "ui" else 1.0
    ink = np.clip(data[..., :4].astype(np.float32) / top, 0.0, 1.0)
    rgb = (1.0 - ink[..., :3]) * (1.0 - ink[..., 3:]) * top
    if data.dtype.kind in "ui":
        rgb = np.rint(rgb)
    rgb = rgb.astype(data.dtype)
    return np.concatenate([rgb, data[..., 4:5]], axis=-1) if data.shape[-1] > 4 else rgb
