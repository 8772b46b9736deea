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

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FITS_SUFFIXES",
    "MAX_READ_PIXELS",
    "MAX_READ_PIXELS_ENV",
    "ORIENTATION_TAG",
    "ImageTooLargeError",
    "fits_shape",
    "max_read_pixels",
    "oriented",
    "read_fits",
    "read_image",
    "tiff_shape",
    "write_image",
]

#: Default limit on the pixels (all planes) a file may declare: 16384 x 16384.
MAX_READ_PIXELS = 2**28
#: Environment variable that overrides :data:`MAX_READ_PIXELS`.
MAX_READ_PIXELS_ENV = "TINCT_MAX_IMAGE_PIXELS"

#: The orientation tag of EXIF and TIFF: how stored pixels are turned for display.
ORIENTATION_TAG = 0x0112

#: Suffixes read as FITS (astropy, the ``fits`` extra).
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")


def read_fits(path: str | Path, *, max_pixels: int = MAX_READ_PIXELS) -> np.ndarray:
    """Read the first image HDU of a FITS file (astronomy) as a numpy array.

    The declared size (``NAXISn``, all planes) is checked against
    ``max_pixels`` before any data is read. Blank pixels (NaN, common outside a survey's footprint)
    are set to the smallest finite value, so they show as the background.
    Byte order is left to :func:`~tinct.engine.inputs.prepare` (FITS data is big-endian).

    Args:
        path: ``.fits`` / ``.fit`` / ``.fts`` file, optionally gzipped.
        max_pixels: Most pixels the image may have, all planes together.

    Returns:
        ``(H, W)`` (or ``(..., H, W)`` for cubes) array in the file's dtype
        (floats for scaled integer data, as astropy applies ``BSCALE``/``BZERO``).

    Raises:
        OSError: Not a FITS file, no image data, or astropy is not installed.
        ImageTooLargeError: The declared size exceeds ``max_pixels``.
    """
    try:
        from astropy.io import fits
    except ImportError:
        raise OSError(
            "reading FITS files needs astropy: pip install -e '.[fits]' (or pip install astropy)"
        ) from None
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            for hdu in hdul:
                shape = _image_axes(hdu)
                if shape is None:
                    continue
                pixels = math.prod(shape)
                if pixels > max_pixels:
                    raise ImageTooLargeError(
                        f"{path} declares {'x'.join(map(str, shape))} = {pixels:,} pixels, "
                        f"more than the limit of {max_pixels:,}"
                    )
                data = np.asarray(hdu.data)
                break
            else:
                raise OSError(f"{path}: no image data in the FITS file")
    except (ValueError, OSError):
        raise
    except Exception as exc:  # astropy raises many kinds for broken files
        raise OSError(f"{path}: cannot read the FITS file ({exc})") from None
    if np.issubdtype(data.dtype, np.floating):
        bad = ~np.isfinite(data)
        if bad.all():
            raise ValueError(f"{path}: the image has no finite pixel")
        if bad.any():
            data = np.where(bad, np.nanmin(np.where(bad, np.nan, data)), data)
    return data


def fits_shape(path: str | Path) -> tuple[int, ...] | None:
    """The shape of the array :func:`read_fits` returns, from the headers alone.

    Returns:
        ``(H, W)`` or ``(..., H, W)`` (numpy order: a 3-D cube is a stack of
        planes), or ``None`` when it cannot be told (no astropy, not a FITS
        file, no image HDU); reading the file then reports why.
    """
    try:
        from astropy.io import fits

        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            for hdu in hdul:
                shape = _image_axes(hdu)
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


class ImageTooLargeError(ValueError):
    """An image file declares more pixels than the limit allows (nothing was decoded)."""


def max_read_pixels() -> int:
    """The pixel limit for files: ``$TINCT_MAX_IMAGE_PIXELS`` if set, else :data:`MAX_READ_PIXELS`.

    Raises:
        ValueError: The variable is not a positive integer.
    """
    raw = os.environ.get(MAX_READ_PIXELS_ENV)
    if raw is None or not raw.strip():
        return MAX_READ_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_READ_PIXELS_ENV} must be a positive integer, got {raw!r}")
    return value


def _check_declared(path: Path, pixels: int, what: str, limit: int) -> None:
    if pixels > limit:
        raise ImageTooLargeError(
            f"{path} declares {what} = {pixels:,} pixels, more than the limit of {limit:,} "
            f"(set {MAX_READ_PIXELS_ENV} or max_pixels to allow larger images)"
        )


def read_image(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as a numpy array, keeping 16-bit data as uint16.

    Uses tifffile for ``.tif``/``.tiff``, astropy for FITS
    (:func:`read_fits`), Pillow otherwise. The size the file declares
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
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]  # what tifffile.imread reads
            shape = tuple(series.shape)
            samples = shape[series.axes.index("S")] if "S" in series.axes else 1
            what = " x ".join(map(str, shape))
            _check_declared(path, math.prod(shape) // max(1, samples), what, limit)
            page = tif.pages[0]
            data, axes = _samples_last(page, series.axes, np.asarray(series.asarray()))
            data, axes = _tiff_values(page, axes, data)
            tag = page.tags.get(ORIENTATION_TAG)
            if not (tag and "Y" in axes and "X" in axes):
                return data
            return oriented(data, int(tag.value), (axes.index("Y"), axes.index("X")))
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
        try:
            im = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"{path}: {exc}") from None
    with im:
        width, height = im.size
        _check_declared(path, width * height, f"{width} x {height}", limit)
        return oriented(_pil_array(im), _exif_orientation(im))


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
