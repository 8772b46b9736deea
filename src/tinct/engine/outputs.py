"""Where results go on disk: output names, and writes that are all or nothing.

Shared by ``tinct colorize`` (:mod:`tinct.cli.colorize`) and folder batches
(:mod:`tinct.scale.batch`): :func:`output_path_for` names a result,
:func:`atomic_output` and :func:`write_result` write it under a hidden
temporary name and rename it into place, so a failed write leaves nothing
behind and an existing file is replaced only by a complete one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "IMAGE_SUFFIXES",
    "TMP_MARK",
    "atomic_output",
    "input_stem",
    "input_suffix",
    "output_path_for",
    "write_result",
]

#: Two-part suffixes that name one format (gzipped FITS): ``x.fits.gz`` has the stem ``x``.
COMPOUND_SUFFIXES = (".fits.gz", ".fit.gz")
#: File suffixes read as images.
IMAGE_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".fits", ".fit", ".fts",
    *COMPOUND_SUFFIXES,
)  # fmt: skip


def input_suffix(path: str | Path) -> str:
    """The lower-case suffix of an input file, a two-part one included (``.fits.gz``)."""
    name = Path(path).name.lower()
    return next((c for c in COMPOUND_SUFFIXES if name.endswith(c)), Path(name).suffix)


def input_stem(path: str | Path) -> str:
    """An input file's name without its suffix: ``field`` for ``field.fits.gz``."""
    name = Path(path).name
    return name[: len(name) - len(input_suffix(name))]


#: Marker inside temporary file names (``.<name>.tinct-tmp-<id><suffix>``).
TMP_MARK = ".tinct-tmp-"


def output_path_for(input_path: str | Path, out_dir: str | Path, *, stack: bool = False) -> Path:
    """Where the result for ``input_path`` goes inside ``out_dir``.

    Args:
        input_path: The input image file.
        out_dir: The output directory.
        stack: The result is a stack (written as TIFF).

    Returns:
        ``out_dir / "<stem>_colorized.png"`` (``.tif`` for stacks, ``.mp4`` for videos).
    """
    from tinct.engine.video import is_video

    suffix = ".mp4" if is_video(input_path) else ".tif" if stack else ".png"
    return Path(out_dir) / f"{input_stem(input_path)}_colorized{suffix}"


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A hidden temporary path next to ``path``, renamed onto it when the block succeeds.

    The temporary name keeps the suffix (``.<stem>.tinct-tmp-<id><suffix>``), so
    writers that pick the format by suffix (images, ffmpeg) work unchanged; it is
    removed if the block fails.

    Args:
        path: The destination file.

    Yields:
        The temporary path to write.

    Raises:
        OSError: The temporary file could not be written or renamed; the message
            names ``path``, not the temporary name (``cannot write out/a.png:
            Permission denied``), and the type and ``errno`` are the original's.
    """
    dest = Path(path)
    tmp = dest.with_name(f".{dest.stem}{TMP_MARK}{uuid.uuid4().hex[:12]}{dest.suffix}")
    try:
        yield tmp
        os.replace(tmp, dest)
    except OSError as exc:
        if exc.filename not in (str(tmp), tmp):
            raise
        said = type(exc)(f"cannot write {dest}: {exc.strerror or exc}")
        said.errno = exc.errno
        raise said from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def write_result(path: str | Path, result: Any) -> None:
    """Write a result atomically: a hidden temporary file next to it, then a rename.

    An existing file at ``path`` is replaced only by a complete new one; a
    failed write leaves no temporary file behind.

    Args:
        path: Destination (``.tif`` for stacks, an image suffix otherwise).
        result: ``(H, W, 3|4)`` image or ``(..., H, W, 3|4)`` stack.
    """
    from tinct.engine.imagefiles import write_image

    with atomic_output(path) as tmp:
        if result.ndim > 3:
            import tifffile

            tifffile.imwrite(tmp, result, photometric="rgb")
        else:
            write_image(tmp, result)
