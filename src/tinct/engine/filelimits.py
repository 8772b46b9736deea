"""The limit on what an image file may declare, checked before anything is decoded.

:func:`max_read_pixels` is the pixel limit of :func:`tinct.engine.imagefiles.read_image`
and :func:`tinct.engine.fitsfiles.read_fits` (:data:`MAX_READ_PIXELS`, or
``$TINCT_MAX_IMAGE_PIXELS``); a file over it raises :class:`ImageTooLargeError`, which
both readers (and :mod:`tinct.engine.imagefiles`, by name) share.
:func:`open_regular` opens a file for reading only if it is a regular file: what is not
(a FIFO, a device, a broken link) is refused before it is opened, and what was opened is
checked again (``fstat`` of the opened descriptor, opened without blocking), so a file
swapped for a FIFO in between is refused too, never waited on. Readers read from the
file object it returns; :func:`check_regular_file` is its first check alone, for a path
that another program (ffmpeg) opens.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

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
        raise _not_regular(path)


def _not_regular(path: str | Path) -> OSError:
    return OSError(f"{path} is not a regular file (a FIFO, a device or a broken link)")


#: How :func:`open_regular` opens: never waiting (a FIFO), never a controlling terminal, binary.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
)


def open_regular(path: str | Path) -> BinaryIO:
    """Open ``path`` for reading in binary if, and only if, it is a regular file.

    :func:`check_regular_file` first (nothing that is not a regular file is opened);
    then the file is opened without blocking (``O_NONBLOCK``, where the system has it:
    opening a FIFO never waits for a writer) and the opened descriptor itself is checked
    (``fstat``), so a path swapped for a FIFO or a device between the check and the open
    is refused as well. Blocking is turned back on for the regular file that is returned.

    Args:
        path: The file about to be read.

    Returns:
        The open file (read it, then close it: use it in a ``with`` block).

    Raises:
        FileNotFoundError: Nothing is there (not even a broken link).
        OSError: Not a regular file (``'PATH is not a regular file (a FIFO, a device or a
            broken link)'``), or it cannot be opened (``'cannot open PATH: REASON'``).
    """
    check_regular_file(path)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except (IsADirectoryError, NotADirectoryError):
        raise _not_regular(path) from None
    except OSError as exc:
        raise OSError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_regular(path)
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
