"""The image files of an evaluation folder: which can be read, colorized and scored."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["read_all", "read_rgb"]


def read_rgb(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB (``ValueError`` naming the file otherwise).

    Read as training reads it (:func:`tinct.training.datasets.load_rgb`), with the
    engine's bounds: a TIFF by any name as ``tinct colorize`` reads it
    (:func:`tinct.engine.imagefiles.read_image`; Pillow reads a 16-bit TIFF stored as
    colour planes as wrong colours, and a TIFF past tifffile's bounds), anything else
    with :func:`~tinct.engine.imagefiles.pillow_formats` only (never EPS), turned as a
    viewer shows it. 16-bit values keep their high byte, as Pillow makes 8-bit RGB of
    16-bit RGB; a stack gives its first image, as Pillow opens it.
    """
    from tinct.training.datasets import file_reason, load_rgb

    try:
        return load_rgb(path)
    except Exception as exc:  # the file named once: the reader's message names it too
        raise ValueError(f"cannot read image {path}: {file_reason(path, exc)}") from None


def read_all(
    paths: Sequence[Path], log: Callable[[str], None]
) -> tuple[list[Path], list[np.ndarray]]:
    """The images that can be read, colorized and scored; the others are named in a log line.

    A gray image (R = G = B) is left out too: every method's PSNR on it is infinite.

    Raises:
        ValueError: Not one of the files can be used.
    """
    from tinct.training.datasets import file_reason, load_rgb, skipped_message

    kept: list[Path] = []
    images: list[np.ndarray] = []
    skipped: list[tuple[Path, str]] = []
    gray: list[tuple[Path, str]] = []
    for p in paths:
        try:
            rgb = load_rgb(p)  # as read_rgb reads it, the reason kept apart from the name
        except Exception as exc:
            skipped.append((p, file_reason(p, exc)))
            continue
        if min(rgb.shape[:2]) < 2:
            skipped.append((p, f"{rgb.shape[1]}x{rgb.shape[0]} pixels, smaller than 2x2"))
        elif (rgb == rgb[..., :1]).all():
            gray.append((p, "no colour to measure"))
        else:
            kept.append(p)
            images.append(rgb)
    for left, kind in ((skipped, "unreadable"), (gray, "gray")):
        if left:  # the reasons, on the line above the error if all
            log(skipped_message(left, kind=kind))
    skipped += gray
    if not images:
        first, why = skipped[0]
        raise ValueError(f"none of the {len(paths)} images can be used (first: {first}: {why})")
    return kept, images
