"""Planning a folder batch: which files to colorize, where their results go, what is done."""

from __future__ import annotations

import os
from pathlib import Path

from tinct.engine.outputs import IMAGE_SUFFIXES, input_suffix, output_path_for

__all__ = ["existing_output", "find_inputs", "is_complete", "plan"]


def find_inputs(in_dir: str | Path, *, exclude: str | Path | None = None) -> list[Path]:
    """Image and video files under a folder, recursively, sorted.

    Hidden files and folders (names starting with ``.``) are ignored, and so
    is everything under ``exclude`` (the output folder when it is nested in
    the input folder).

    Args:
        in_dir: Input folder.
        exclude: Folder to leave out.

    Returns:
        Paths of files with a suffix in :data:`tinct.engine.outputs.IMAGE_SUFFIXES` or
        :data:`tinct.engine.video.VIDEO_SUFFIXES`.
    """
    from tinct.engine.video import VIDEO_SUFFIXES

    suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    root = Path(in_dir)
    skip = Path(exclude).resolve() if exclude is not None else None
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if skip is not None and (here.resolve() == skip or skip in here.resolve().parents):
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and input_suffix(name) in suffixes:
                found.append(here / name)
    return sorted(found)


def existing_output(input_path: str | Path, out_dir: str | Path) -> Path | None:
    """The finished output for an input in ``out_dir``, if any (PNG, TIFF for stacks, MP4).

    An output counts as finished only when it is not empty and decodes; a
    0-byte or truncated file (e.g. from a full disk) is ignored, so a rerun
    colorizes that input again.
    """
    for stack in (False, True):
        p = output_path_for(input_path, out_dir, stack=stack)
        if p.is_file() and is_complete(p):
            return p
    return None


def is_complete(path: str | Path) -> bool:
    """True when ``path`` is a non-empty image file that decodes completely.

    It is read as inputs are (:func:`tinct.engine.imagefiles.read_image`): a file
    that declares more than the pixel limit, or tiles or strips larger than its
    image, is not a finished output, and is refused before it is decoded.

    A video output counts when ffmpeg reads its header and its first frame
    (:func:`tinct.engine.video.is_readable`; the header is written when encoding ends,
    and outputs are renamed into place only once complete).
    """
    p = Path(path)
    try:
        if p.stat().st_size == 0:
            return False
        from tinct.engine.video import is_readable, is_video

        if is_video(p):
            return is_readable(p)
        from tinct.engine.imagefiles import read_image

        read_image(p)  # bounded: what it declares is checked first, never Ghostscript
        return True
    except Exception:  # any decoder error: not a finished output
        return False


def plan(in_dir: str | Path, out_dir: str | Path) -> list[tuple[Path, Path]]:
    """``(input file, output folder)`` pairs, keeping relative sub-folders.

    Args:
        in_dir: Input folder.
        out_dir: Output folder.

    Returns:
        One pair per input from :func:`find_inputs`.
    """
    root, out = Path(in_dir), Path(out_dir)
    return [(p, out / p.parent.relative_to(root)) for p in find_inputs(root, exclude=out)]
