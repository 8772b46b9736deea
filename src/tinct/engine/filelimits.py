"""The limit on what an image file may declare, checked before anything is decoded.

:func:`max_read_pixels` is the pixel limit of :func:`tinct.engine.imagefiles.read_image`
and :func:`tinct.engine.fitsfiles.read_fits` (:data:`MAX_READ_PIXELS`, or
``$TINCT_MAX_IMAGE_PIXELS``); a file over it raises :class:`ImageTooLargeError`, which
both readers (and :mod:`tinct.engine.imagefiles`, by name) share.
:func:`check_regular_file` refuses what is not a regular file (a FIFO, a device, a
broken link) before anything opens it: reading a FIFO would wait for ever.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = [
    "MAX_READ_PIXELS",
    "MAX_READ_PIXELS_ENV",
    "ImageTooLargeError",
    "check_declared",
    "check_regular_file",
    "max_read_pixels",
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


def check_regular_file(path: str | Path) -> None:
    """Refuse ``path`` unless it is a regular file (or a link to one), without opening it.

    Opening a FIFO waits for a writer that may never come, and a device may never
    end, so what is not a regular file is refused before any reader opens it.

    Args:
        path: The file about to be read.

    Raises:
        FileNotFoundError: Nothing is there (not even a broken link).
        OSError: A FIFO, a device, a directory, a broken or looping link
            (``'PATH is not a regular file (a FIFO, a device or a broken link)'``).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if not os.path.lexists(path):
            raise FileNotFoundError(f"no such file: {path}") from None
        mode = 0  # a broken link
    except OSError:
        mode = 0  # a looping link, a name too long, ...
    if not stat.S_ISREG(mode):
        raise OSError(f"{path} is not a regular file (a FIFO, a device or a broken link)")
