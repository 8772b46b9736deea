"""Where results go on disk: output names, and writes that are all or nothing.

Shared by ``tinct colorize`` (:mod:`tinct.cli.colorize`) and folder batches
(:mod:`tinct.scale.batch`): :func:`output_path_for` names a result,
:func:`atomic_output` and :func:`write_result` write it under a hidden
temporary name and rename it into place, so a failed write leaves nothing
behind and an existing file is replaced only by a complete one.

Bit depth (``--output-depth``): :func:`output_depth` picks the bits a channel of a
result from what was asked (:data:`OUTPUT_DEPTHS`), the input's dtype and the
output's format. ``"auto"`` keeps an integer input deeper than 8 bits (a uint16
scan) at 16 bits where the format holds them (PNG, TIFF: :data:`DEEP_SUFFIXES`)
and writes everything else as before: 8 bits a channel for an image (uint8 and
float inputs, and JPEG/WebP/BMP/GIF outputs), a stack's TIFF as uint8 for 8-bit
input and float32 in ``[0, 1]`` otherwise. ``"8"`` and ``"16"`` force the depth;
``"16"`` for a format that holds 8 bits is an :class:`OutputDepthError`.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tinct.engine.imagefiles import DEEP_SUFFIXES

__all__ = [
    "DEEP_SUFFIXES",
    "IMAGE_SUFFIXES",
    "OUTPUT_DEPTHS",
    "TMP_MARK",
    "OutputDepthError",
    "atomic_output",
    "check_output_depth",
    "input_stem",
    "input_suffix",
    "output_depth",
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


#: What ``--output-depth`` may ask for: ``auto`` (:func:`output_depth`'s rule), 8 or 16 bits.
OUTPUT_DEPTHS = ("auto", "8", "16")


class OutputDepthError(ValueError):
    """16 bits a channel asked of an output whose format holds 8 (``.jpg``, a video)."""


def check_output_depth(depth: str, path: str | Path) -> None:
    """Refuse a depth the output's format cannot hold, before anything is colorized.

    Args:
        depth: One of :data:`OUTPUT_DEPTHS`.
        path: The output file (its suffix names the format).

    Raises:
        OutputDepthError: ``depth`` is ``"16"`` and ``path`` is not a PNG or TIFF
            (JPEG, WebP, BMP, GIF and videos hold 8 bits a channel).
        ValueError: ``depth`` is not one of :data:`OUTPUT_DEPTHS`.
    """
    if depth not in OUTPUT_DEPTHS:
        raise ValueError(f"output depth must be one of {', '.join(OUTPUT_DEPTHS)}, got {depth!r}")
    suffix = Path(path).suffix.lower()
    if depth == "16" and suffix not in DEEP_SUFFIXES:
        what = f"{suffix} holds" if suffix else "a file without a suffix holds"
        raise OutputDepthError(
            f"{path}: {what} 8 bits a channel; 16 bits need a .png or .tif output "
            "(auto or 8 write it with 8)"
        )


def output_depth(
    depth: str, source_dtype: Any, path: str | Path, *, stack: bool = False
) -> int | None:
    """The bits a channel a result is written with.

    Args:
        depth: One of :data:`OUTPUT_DEPTHS`.
        source_dtype: The dtype of the input image as read (``read_image``).
        path: The output file (its suffix names the format).
        stack: The result is a stack (``(..., H, W, 3|4)``, written as a TIFF).

    Returns:
        8 or 16; ``None`` for the writer's default (:func:`write_result`): what
        ``"auto"`` gives a float or 8-bit input, any stack, and a format that holds
        8 bits. ``"auto"`` gives 16 for an integer input of more than 8 bits
        (uint16, int16, uint32, ...) written as PNG or TIFF.

    Raises:
        OutputDepthError: ``"16"`` for a format that holds 8 bits (:func:`check_output_depth`).
    """
    check_output_depth(depth, path)
    if depth != "auto":
        return int(depth)
    dt = np.dtype(source_dtype)
    deep = dt.kind in "iu" and dt.itemsize > 1
    return 16 if deep and not stack and Path(path).suffix.lower() in DEEP_SUFFIXES else None


def write_result(path: str | Path, result: Any, *, depth: int | None = None) -> None:
    """Write a result atomically: a hidden temporary file next to it, then a rename.

    An existing file at ``path`` is replaced only by a complete new one; a
    failed write leaves no temporary file behind.

    Args:
        path: Destination (``.tif`` for stacks, an image suffix otherwise).
        result: ``(H, W, 3|4)`` image or ``(..., H, W, 3|4)`` stack: uint8, or
            float32 in ``[0, 1]`` (what :meth:`tinct.Colorizer.colorize` returns).
        depth: Bits a channel (:func:`output_depth`): ``None`` writes an image
            with 8 and a stack as it is (uint8, or float32 in ``[0, 1]``); 8 or 16
            write either as uint8 or uint16 (16: PNG or TIFF only; a float result
            goes to 16 bits directly, never through 8).

    Raises:
        ValueError: ``depth`` is 16 for a format that holds 8 bits.
    """
    from tinct.engine.imagefiles import to_uint8, to_uint16, write_image

    with atomic_output(path) as tmp:
        if result.ndim > 3:
            import tifffile

            if depth == 8:
                result = to_uint8(result)
            elif depth == 16:
                result = to_uint16(result)
            tifffile.imwrite(tmp, result, photometric="rgb")
        elif depth == 16:
            write_image(tmp, result, bits=16)
        else:
            write_image(tmp, result)
