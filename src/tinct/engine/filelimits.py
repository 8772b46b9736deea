"""The limit on what an image file may declare, checked before anything is decoded.

:func:`max_read_pixels` is the pixel limit of :func:`tinct.engine.imagefiles.read_image`
and :func:`tinct.engine.fitsfiles.read_fits` (:data:`MAX_READ_PIXELS`, or
``$TINCT_MAX_IMAGE_PIXELS``); a file over it raises :class:`ImageTooLargeError`, which
both readers (and :mod:`tinct.engine.imagefiles`, by name) share.
:func:`open_regular` opens a file for reading only if it is a regular file (a FIFO is
refused, never waited on) and :func:`check_regular_file` is its first check alone; both
live in the core module :mod:`tinct.regularfiles` (the models' weights reader uses them
too) and are re-exported here for the engine's readers.
"""

from __future__ import annotations

import os
from pathlib import Path

from tinct.regularfiles import check_regular_file, open_regular

__all__ = [
    "MAX_READ_PIXELS",
    "MAX_READ_PIXELS_ENV",
    "ImageTooLargeError",
    "check_declared",
    "check_regular_file",
    "max_read_pixels",
    "open_regular",
]

#: Default limit on the pixels (all planes) a file may declare: 16384 x 16384.
MAX_READ_PIXELS = 2**28
#: Environment variable that overrides :data:`MAX_READ_PIXELS`.
MAX_READ_PIXELS_ENV = "TINCT_MAX_IMAGE_PIXELS"


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


def check_declared(path: Path, pixels: int, what: str, limit: int) -> None:
    """Refuse a file that declares more than ``limit`` pixels.

    Args:
        path: The file (named in the message).
        pixels: What it declares.
        what: How it declares it, e.g. ``"50000 x 50000"``.
        limit: The most pixels allowed.

    Raises:
        ImageTooLargeError: ``pixels > limit``.
    """
    if pixels > limit:
        raise ImageTooLargeError(
            f"{path} declares {what} = {pixels:,} pixels, more than the limit of {limit:,} "
            f"(set {MAX_READ_PIXELS_ENV} or max_pixels to allow larger images)"
        )
