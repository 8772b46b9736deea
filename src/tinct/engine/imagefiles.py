"""Image files in and out: PNG/TIFF/JPEG through Pillow and tifffile, FITS through astropy.

:func:`read_image` checks the size a file declares against a pixel limit
(:data:`MAX_READ_PIXELS`, ``$TINCT_MAX_IMAGE_PIXELS`` or the ``max_pixels``
argument) before it decodes anything, so a small file that claims 50000 x 50000
pixels is refused, not decoded. Pixels come back the way a viewer shows them: the
orientation tag (EXIF or TIFF tag 274, e.g. a phone photo stored sideways with
orientation 6) is applied, so results and hint positions match what the user sees.
``.fits``, ``.fit`` and ``.fts`` files (gzipped too) go to :func:`read_fits`
(astronomy, the ``fits`` extra), so ``tinct colorize`` and ``tinct batch`` read
them like any other image. A TIFF is laid out as its tags say: a planar RGB(A)
TIFF, stored as one plane per colour, is one ``(H, W, 3|4)`` image, and gray pages are
a stack (:func:`tiff_shape` tells which from the tags alone).
:func:`write_image` writes 8-bit PNG/TIFF/JPEG.
"""

from __future__ import annotations

import lzma
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from tinct.engine.filelimits import (
    MAX_READ_PIXELS,
    MAX_READ_PIXELS_ENV,
    ImageTooLargeError,
    check_declared,
    max_read_pixels,
)
from tinct.engine.fitsfiles import FITS_SUFFIXES, fits_shape, read_fits
from tinct.engine.thread_warnings import collect_warnings

__all__ = [
    "COLOUR_SAMPLES",
    "FITS_SUFFIXES",
    "MAX_READ_PIXELS",
    "MAX_READ_PIXELS_ENV",
    "MIN_SEGMENT_VALUES",
    "NOT_PILLOW",
    "ORIENTATION_TAG",
    "TIFF_MAGIC",
    "ImageTooLargeError",
    "fits_shape",
    "is_tiff",
    "max_read_pixels",
    "oriented",
    "pillow_formats",
    "read_fits",
    "read_image",
    "tiff_shape",
    "write_image",
]

#: The orientation tag of EXIF and TIFF: how stored pixels are turned for display.
ORIENTATION_TAG = 0x0112
#: The first bytes of a TIFF or BigTIFF: tifffile reads it (and bounds it), whatever its name.
TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
#: Pillow formats :func:`read_image` never opens: EPS, which Pillow renders by running
#: Ghostscript on the file, and TIFF and FITS, whose readers here bound them (a TIFF named
#: ``.png`` went to Pillow's libtiff, which spent 1 GB on a 16 x 16 image in one large tile).
NOT_PILLOW = frozenset({"EPS", "FITS", "TIFF"})
#: Samples a TIFF pixel may have and count as one pixel (CMYK and alpha); more count each.
COLOUR_SAMPLES = 5
#: Values a TIFF tile or strip may hold beyond its page's (a small page's one tile).
MIN_SEGMENT_VALUES = 2**22


def read_image(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as a numpy array, keeping 16-bit data as uint16.

    Uses tifffile for ``.tif``/``.tiff`` and any file that begins as a TIFF
    (:data:`TIFF_MAGIC`), astropy for FITS (:func:`read_fits`), Pillow otherwise (any
    format but :data:`NOT_PILLOW`: never Ghostscript). The size the file declares
    is checked before any pixel is decoded; Pillow's own limit
    (``PIL.Image.MAX_IMAGE_PIXELS``, an error at twice it) applies to the formats
    it reads as well.

    Args:
        path: PNG, JPEG, TIFF, BMP, FITS, ... file.
        max_pixels: Most pixels the image may have, all planes of a TIFF stack
            or FITS cube together (default: :func:`max_read_pixels`).

    Returns:
        ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` (TIFF stacks may have more
        leading axes) in the file's dtype (uint8, uint16, float32, ...). A TIFF
        stored as colour planes (PlanarConfiguration 2 with photometric RGB, e.g.
        tifffile's ``(3, H, W)`` with ``photometric="rgb"``) is ``(H, W, 3|4)``;
        gray pages, one per plane, stay a stack ``(N, H, W)``.

    Raises:
        ImageTooLargeError: The file declares more than ``max_pixels`` pixels.
        OSError: Unreadable file.
    """
    path = Path(path)
    limit = max_read_pixels() if max_pixels is None else int(max_pixels)
    if path.name.lower().endswith(FITS_SUFFIXES):
        return read_fits(path, max_pixels=limit)
    if is_tiff(path):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]  # what tifffile.imread reads
            _check_tiff(path, series, limit)
            page = tif.pages[0]
            data, axes = _samples_last(page, series.axes, np.asarray(series.asarray()))
            data, axes = _tiff_values(page, axes, data)
            tag = page.tags.get(ORIENTATION_TAG)
            if not (tag and "Y" in axes and "X" in axes):
                return data
            return oriented(data, int(tag.value), (axes.index("Y"), axes.index("X")))
    from PIL import Image

    with collect_warnings(Image.DecompressionBombWarning):  # dropped: checked below
        try:
            im = Image.open(path, formats=pillow_formats())
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"{path}: {exc}") from None
    with im:
        width, height = im.size
        check_declared(path, width * height, f"{width} x {height}", limit)
        return oriented(_pil_array(im), _exif_orientation(im))


def pillow_formats() -> list[str]:
    """The Pillow formats :func:`read_image` opens: all but :data:`NOT_PILLOW`."""
    from PIL import Image

    Image.init()
    return [name for name in Image.ID if name not in NOT_PILLOW]


def is_tiff(path: str | Path) -> bool:
    """True for a file :func:`read_image` reads as a TIFF (never Pillow's: it is unbounded).

    That is one named ``.tif``/``.tiff``, or by any name one that begins with
    :data:`TIFF_MAGIC`.
    """
    path = Path(path)
    return path.suffix.lower() in (".tif", ".tiff") or _starts_with(path, TIFF_MAGIC)


def _starts_with(path: Path, magic: tuple[bytes, ...]) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8).startswith(magic)
    except OSError:
        return False  # the reader says why


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
    _bound_tifffile_decoders()


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


def _bound_tifffile_decoders() -> None:
    """Use :func:`_inflate` and :func:`_unxz` where tifffile would use its own decoders.

    tifffile passes every decoder the size it expects (``out=``); its fallbacks for a
    missing imagecodecs ignore it, so one small strip could inflate to gigabytes.
    """
    import tifffile

    codecs = tifffile.TIFF.DECOMPRESSORS
    table = getattr(codecs, "_codecs", None)
    if not isinstance(table, dict):
        return
    for key, bounded in ((8, _inflate), (32946, _inflate), (50013, _inflate), (34925, _unxz)):
        try:
            current = codecs[key]
        except (KeyError, ImportError):
            continue
        if current is not bounded and getattr(current, "__module__", "").endswith("_imagecodecs"):
            table[key] = bounded


def tiff_shape(path: str | Path) -> tuple[int, ...]:
    """A TIFF's shape laid out as :func:`read_image` lays it out, from its tags alone.

    Stack planes come first and colour samples last: a planar RGB(A) page, stored
    ``(3|4, H, W)``, is ``(H, W, 3|4)``. Samples count as stored (a palette image
    is ``(H, W)``; it reads as ``(H, W, 3)``).

    Raises:
        OSError: Not a TIFF file tifffile can read.
    """
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        shape = tuple(series.shape)
        axis = _planar_colour_axis(tif.pages[0], series.axes)
    if axis is None:
        return shape
    return shape[:axis] + shape[axis + 1 :] + shape[axis : axis + 1]


def _exif_orientation(im: Any) -> int:
    """The orientation an opened Pillow image's EXIF gives (1 when none, or unreadable)."""
    try:
        return int(im.getexif().get(ORIENTATION_TAG, 1))
    except Exception:  # a broken EXIF block never costs the image
        return 1


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


def oriented(image: np.ndarray, orientation: int, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Turn stored pixels the way a viewer shows them (EXIF / TIFF orientation, tag 274).

    Args:
        image: The pixels as stored.
        orientation: The tag's value, 1-8 (1, or any other value: as stored).
        axes: The row and column axes of ``image``.

    Returns:
        ``image`` mirrored and/or rotated as the tag says (``image`` itself for 1).
    """
    y, x = axes
    if orientation in (5, 6, 7, 8):  # the stored rows are the shown columns
        image = np.swapaxes(image, y, x)
    flips = {2: (x,), 3: (y, x), 4: (y,), 6: (x,), 7: (y, x), 8: (y,)}.get(orientation, ())
    return np.ascontiguousarray(np.flip(image, flips)) if orientation in range(2, 9) else image


def _pil_array(im: Any) -> np.ndarray:
    """Decode an opened Pillow image to an array (16-bit kept)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.uint16)
    if im.mode == "I":
        arr = np.asarray(im)
        return arr.astype(np.uint16) if arr.min() >= 0 and arr.max() < 65536 else arr
    if im.mode == "F":
        return np.asarray(im, dtype=np.float32)
    if im.mode in ("L", "RGB", "RGBA"):
        return np.asarray(im)
    if im.mode in ("LA", "PA") or "transparency" in im.info:
        return np.asarray(im.convert("RGBA"))
    if im.mode == "1":
        return np.asarray(im.convert("L"))
    return np.asarray(im.convert("RGB"))


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB(A) result (uint8, or float in ``[0, 1]`` stored as 8-bit).

    Args:
        path: Output file; the format follows the suffix (PNG recommended).
        image: ``(H, W, 3|4)`` uint8 or float array.
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if Path(path).suffix.lower() in (".jpg", ".jpeg") and arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    Image.fromarray(arr).save(path)
