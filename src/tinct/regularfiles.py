"""Opening a file for reading only if it is a regular file (numerical core: every layer uses it).

:func:`open_regular` opens a file for reading only if it is a regular file: what is not
(a FIFO, a device, a broken link) is refused before it is opened, and what was opened is
checked again (``fstat`` of the opened descriptor, opened without blocking), so a file
swapped for a FIFO in between is refused too, never waited on. Readers read from the
file object it returns; :func:`check_regular_file` is its first check alone, for a path
that another program (ffmpeg) opens. :mod:`tinct.engine.filelimits` re-exports both (the
engine's readers), :mod:`tinct.models.weights` reads weights files through it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["check_regular_file", "open_regular"]


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
