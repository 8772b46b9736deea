"""Image files in and out: PNG/TIFF/JPEG through Pillow and tifffile, FITS through astropy.

16-bit colour PNGs, which Pillow reads as 8 bits, are decoded by
:func:`~tinct.engine.pngfiles.read_png16` (imagecodecs), so no sample loses its low byte.

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
a stack (:func:`tiff_shape` tells which from the tags alone). A file is read only if it
is a regular file, from the one descriptor that was checked
(:func:`~tinct.engine.filelimits.open_regular`): a FIFO is refused, never waited on.
:func:`write_image` writes 8-bit PNG/TIFF/JPEG/..., and 16-bit PNG/TIFF (:data:`DEEP_SUFFIXES`).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import numpy as np

from tinct.engine.filelimits import (
    MAX_READ_PIXELS,
    MAX_READ_PIXELS_ENV,
    ImageTooLargeError,
    check_declared,
    max_read_pixels,
    open_regular,
)
from tinct.engine.fitsfiles import FITS_SUFFIXES, fits_shape, read_fits
from tinct.engine.pngfiles import is_deep_colour, read_png16
from tinct.engine.thread_warnings import collect_warnings
from tinct.engine.tifffiles import (
    COLOUR_SAMPLES,
    MIN_SEGMENT_VALUES,
    ORIENTATION_TAG,
    TIFF_MAGIC,
    read_tiff,
    tiff_shape,
)

__all__ = [
    "COLOUR_SAMPLES",
    "DEEP_SUFFIXES",
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
    "to_uint8",
    "to_uint16",
    "write_image",
]

#: Pillow formats :func:`read_image` never opens: EPS, which Pillow renders by running
#: Ghostscript on the file, and TIFF and FITS, whose readers here bound them (a TIFF named
#: ``.png`` went to Pillow's libtiff, which spent 1 GB on a 16 x 16 image in one large tile).
NOT_PILLOW = frozenset({"EPS", "FITS", "TIFF"})


def read_image(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as a numpy array, keeping 16-bit data as uint16.

    Uses tifffile for ``.tif``/``.tiff`` and any file that begins as a TIFF
    (:data:`TIFF_MAGIC`; :mod:`tinct.engine.tifffiles`), astropy for FITS
    (:func:`read_fits`), Pillow otherwise (any format but :data:`NOT_PILLOW`: never
    Ghostscript). The file is opened once, only if it is a regular file
    (:func:`~tinct.engine.filelimits.open_regular`: a FIFO is refused, never waited
    on), and read from that one descriptor. The size the file declares
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
        FileNotFoundError: No such file.
        OSError: Not a regular file, or unreadable (not an image, corrupt).
    """
    path = Path(path)
    limit = max_read_pixels() if max_pixels is None else int(max_pixels)
    if path.name.lower().endswith(FITS_SUFFIXES):
        return read_fits(path, max_pixels=limit)
    with open_regular(path) as fh:
        if path.suffix.lower() in (".tif", ".tiff") or _starts_with(fh, TIFF_MAGIC):
            data, axes, turn = read_tiff(fh, path, limit)
            if turn == 1:
                return data
            return oriented(data, turn, (axes.index("Y"), axes.index("X")))
        return _read_pillow(fh, path, limit)


def _read_pillow(fh: IO[bytes], path: Path, limit: int) -> np.ndarray:
    """Decode the open file with Pillow (:func:`pillow_formats`), its size checked first."""
    from PIL import Image, UnidentifiedImageError

    with collect_warnings(Image.DecompressionBombWarning):  # dropped: checked below
        try:
            im = Image.open(fh, formats=pillow_formats())
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"{path}: {exc}") from None
        except UnidentifiedImageError:  # its message names the file object, not the file
            raise UnidentifiedImageError(
                f"{path}: not an image file of a format tinct reads"
            ) from None
    with im:
        width, height = im.size
        check_declared(path, width * height, f"{width} x {height}", limit)
        if im.format == "PNG" and is_deep_colour(_head(fh, 26)):
            return oriented(read_png16(fh, path, width, height), _exif_orientation(im))
        return oriented(_pil_array(im), _exif_orientation(im))


def _head(fh: IO[bytes], size: int) -> bytes:
    """The open file's first ``size`` bytes; its position is kept."""
    where = fh.tell()
    fh.seek(0)
    head = fh.read(size)
    fh.seek(where)
    return head


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
    if path.suffix.lower() in (".tif", ".tiff"):
        return True
    try:
        with open_regular(path) as fh:
            return _starts_with(fh, TIFF_MAGIC)
    except OSError:
        return False  # the reader says why


def _starts_with(fh: IO[bytes], magic: tuple[bytes, ...]) -> bool:
    """Whether the open file begins with one of ``magic`` (it is left at its start)."""
    head = fh.read(8)
    fh.seek(0)
    return head.startswith(magic)


def _exif_orientation(im: Any) -> int:
    """The orientation an opened Pillow image's EXIF gives (1 when none, or unreadable)."""
    try:
        return int(im.getexif().get(ORIENTATION_TAG, 1))
    except Exception:  # a broken EXIF block never costs the image
        return 1


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


def write_image(path: str | Path, image: np.ndarray, *, bits: int = 8) -> None:
    """Write an RGB(A) result with 8 or 16 bits a channel.

    Args:
        path: Output file; the format follows the suffix (PNG recommended). 16 bits
            need ``.png`` or ``.tif``/``.tiff`` (:data:`DEEP_SUFFIXES`).
        image: ``(H, W, 3|4)`` uint8, uint16 (16 bits only) or float array in ``[0, 1]``.
        bits: 8 (Pillow; a float is rounded to 8 bits, alpha dropped for JPEG) or 16
            (:func:`to_uint16`; PNG by :func:`~tinct.engine.pngfiles.write_png16`,
            TIFF by tifffile, alpha as an unassociated extra sample).

    Raises:
        ValueError: ``bits`` is not 8 or 16, or 16 for a suffix not in
            :data:`DEEP_SUFFIXES`.
    """
    if bits == 16:
        _write_16(Path(path), to_uint16(image))
        return
    if bits != 8:
        raise ValueError(f"an image is written with 8 or 16 bits a channel, not {bits}")
    from PIL import Image

    arr = to_uint8(image)
    if Path(path).suffix.lower() in (".jpg", ".jpeg") and arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    Image.fromarray(arr).save(path)


#: Output suffixes whose format holds 16 bits a channel (JPEG, WebP, BMP, GIF hold 8).
DEEP_SUFFIXES = (".png", ".tif", ".tiff")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A result as uint8: float ``[0, 1]`` to ``round(x * 255)``; uint8 returned as it is.

    Args:
        image: ``(..., C)`` uint8 or float array.

    Returns:
        The same shape in uint8.
    """
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_uint16(image: np.ndarray) -> np.ndarray:
    """A result as uint16: float ``[0, 1]`` to ``round(x * 65535)``, uint8 ``v`` to ``v * 257``.

    Args:
        image: ``(..., C)`` uint8, uint16 (returned as it is) or float array.

    Returns:
        The same shape in uint16 (255 becomes 65535: white stays white).
    """
    arr = np.asarray(image)
    if arr.dtype == np.uint16:
        return arr
    if arr.dtype == np.uint8:
        return arr.astype(np.uint16) * np.uint16(257)
    return (np.clip(arr, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


def _write_16(path: Path, arr: np.ndarray) -> None:
    """Write ``(H, W, 3|4)`` uint16 as a 16-bit PNG or TIFF, by ``path``'s suffix."""
    suffix = path.suffix.lower()
    if suffix not in DEEP_SUFFIXES:
        raise ValueError(f"{path}: {suffix or 'a file without a suffix'} holds 8 bits a channel")
    if suffix == ".png":
        from tinct.engine.pngfiles import write_png16

        write_png16(path, arr)
        return
    import tifffile

    alpha = ["unassalpha"] if arr.shape[-1] == 4 else None
    tifffile.imwrite(path, arr, photometric="rgb", extrasamples=alpha)
