"""The paths of ``tinct colorize``: which inputs can be read, and where each result goes.

:func:`unusable_inputs` sorts out the inputs that are not regular files; :func:`destinations`
names every result (``-o`` a file or a folder, the rules of :mod:`tinct.cli.colorize`'s
help) and refuses, before anything runs, a name that would overwrite an input, two
inputs written to one name, a video written as an image (or the reverse) and a stack
written into a format that holds one image; :func:`prepare_output` creates the folder.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from tinct.cli._options import UsageError, check_input_file, make_folder
from tinct.engine.imagefiles import FITS_SUFFIXES, fits_shape, tiff_shape
from tinct.engine.outputs import IMAGE_SUFFIXES, output_path_for

__all__ = ["STACK_SUFFIXES", "destinations", "prepare_output", "unusable_inputs"]

#: Output suffixes that hold a stack of images.
STACK_SUFFIXES = (".tif", ".tiff")


def unusable_inputs(inputs: list[Path]) -> dict[Path, str]:
    """Inputs that are there but are not regular files, each with why (several inputs only).

    One input that is missing, a folder, a FIFO or a broken link is a usage error naming
    ``IN``, and so is a missing one among several (a typo: nothing has run yet). Among
    several (``scans/*`` matching a sub-folder or a broken link) a name that is there but
    is not a regular file fails as that file, reported in its turn; the rest are written.

    Raises:
        UsageError: As :func:`~tinct.cli._options.check_input_file` says.
    """
    unusable: dict[Path, str] = {}
    for path in inputs:
        try:
            check_input_file(path, "IN")
        except UsageError as exc:
            if len(inputs) == 1 or not os.path.lexists(path):
                raise
            unusable[path] = _said(exc.message, path)
    return unusable


def _is_dir_target(output: str, n_inputs: int) -> bool:
    """Whether ``-o`` names a folder (as typed: ``Path`` drops a trailing ``/``)."""
    from tinct.engine.video import VIDEO_SUFFIXES

    out = Path(output)
    if out.is_dir() or output.endswith(("/", "\\", os.sep)):
        return True
    suffix = out.suffix.lower()
    if n_inputs > 1 and suffix in IMAGE_SUFFIXES + VIDEO_SUFFIXES:  # e.g. a glob gave several
        raise UsageError(
            "-o", f"{n_inputs} inputs need an output folder, and {out} names a file; "
            "end it with / to write into a folder of that name",
        )  # fmt: skip
    if n_inputs > 1:
        return True
    if suffix in FITS_SUFFIXES:
        raise UsageError(
            "-o", f"{out}: FITS is read, not written; name the output .png or .tif"
        )  # fmt: skip
    if suffix and suffix not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:  # most likely a typo
        raise UsageError(
            "-o",
            f"{out}: {suffix!r} is not an image or video format (use .png, .tif, .jpg, "
            ".mp4, ...; end the path with / to write into a folder of that name)",
        )
    return not suffix


def _declared_stack(path: Path) -> int:
    """How many planes a TIFF or FITS input declares (0: not a stack, or not known yet)."""
    if path.name.lower().endswith(FITS_SUFFIXES):
        shape = fits_shape(path) or ()  # a 3-D FITS is a cube: a stack of planes
    elif path.suffix.lower() in STACK_SUFFIXES:
        try:  # planar colour samples counted last, as the file is read
            shape = tiff_shape(path)
        except Exception:  # unreadable: reported as that file's failure when it is read
            return 0
    else:
        return 0
    if len(shape) > 3 or (len(shape) == 3 and shape[-1] not in (3, 4)):
        return math.prod(shape[:-3] if shape[-1] in (3, 4) else shape[:-2])
    return 0


def _check_stack_name(inputs: list[Path], out: Path, to_dir: bool) -> None:
    """An explicit output file for a stack must be a TIFF (the only format here holding one)."""
    if to_dir or out.suffix.lower() in STACK_SUFFIXES:
        return
    planes = _declared_stack(inputs[0])
    if planes:
        raise UsageError(
            "-o", f"{inputs[0]} is a stack of {planes} image{'s' * (planes != 1)} and "
            f"{out.suffix} holds one; "
            "a stack needs a .tif or .tiff output name",
        )  # fmt: skip


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (a link, another spelling)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_not_inputs(inputs: list[Path], dests: dict[Path, Path], to_dir: bool) -> None:
    """No output may be an input: the input is never modified."""
    for dest in dests.values():
        names = [dest]
        if to_dir and dest.suffix.lower() == ".png":  # a stack result is named .tif
            names.append(dest.with_suffix(".tif"))
        for name in names:
            for src in inputs:
                if _same_file(name, src):
                    raise UsageError(
                        "-o", f"would overwrite the input {src}; choose another output name"
                    )  # fmt: skip


def _destinations(inputs: list[Path], out: Path, to_dir: bool) -> dict[Path, Path]:
    """Output path of each input; clashes are a usage error."""
    if not to_dir:
        return {inputs[0]: out}
    dests: dict[Path, Path] = {}
    claimed: dict[Path, Path] = {}
    for src in inputs:
        dest = output_path_for(src, out)
        key = dest.with_suffix("")
        if key in claimed and claimed[key] != src:
            raise UsageError(
                "IN", f"{claimed[key]} and {src} would both be written to {dest}; "
                "colorize them into different folders or rename one",
            )  # fmt: skip
        claimed[key] = src
        dests[src] = dest
    return dests


def _check_kinds(inputs: list[Path], out: Path, to_dir: bool) -> None:
    """A video is written as a video, an image as an image (one input, ``-o`` a file)."""
    from tinct.engine.video import is_video

    if not to_dir and is_video(inputs[0]) != is_video(out):
        kind = "a video file (.mp4) or a folder" if is_video(inputs[0]) else "an image file"
        raise UsageError("-o", f"the output for {inputs[0]} must be {kind}, got {out}")


def prepare_output(out: Path, to_dir: bool) -> None:
    """Create ``-o``'s folder (``out`` itself, or the folder of the output file)."""
    folder = out if to_dir else (out.parent if str(out.parent) else Path("."))
    if folder.exists() and not folder.is_dir():
        raise UsageError("-o", f"{folder} is a file, not a folder")
    if to_dir and out.exists() and not out.is_dir():
        raise UsageError("-o", f"{out} is a file, not a folder")
    make_folder(folder, "-o")


def destinations(inputs: list[Path], output: str) -> tuple[bool, dict[Path, Path]]:
    """Where each input's result goes; ``(to_dir, {input: output file})``.

    Args:
        inputs: The input files, as given.
        output: ``-o`` as typed (a trailing ``/`` names a folder).

    Raises:
        UsageError: Naming ``-o`` or ``IN``: a name the rules refuse, an output that is
            an input, two inputs written to one name.
    """
    if not output.strip():  # Path("") is ".": the results went into the working folder
        raise UsageError("-o", "is empty; name an output file or folder")
    out = Path(output)
    to_dir = _is_dir_target(output, len(inputs))
    _check_kinds(inputs, out, to_dir)
    dests = _destinations(inputs, out, to_dir)
    _check_not_inputs(inputs, dests, to_dir)
    _check_stack_name(inputs, out, to_dir)
    return to_dir, dests


def _said(message: str, path: Path) -> str:
    """A message about ``path`` without the name in front (``a directory, not a file``)."""
    prefix = f"{path} is "
    return message[len(prefix) :] if message.startswith(prefix) else message
