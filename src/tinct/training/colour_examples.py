"""Colour examples for fine-tuning: arrays and folders cut to squares, split by source.

Examples are colour images: arrays (napari layers, in any integer or float
range) and/or folders of image files. An array whose shorter side is at least
twice the network's input size is cut into tiles at its own resolution;
smaller arrays and files are resized and centre-cropped to one square, as
``tinct train`` does. Part of the pieces is held out, never trained on: by
source image (the rule of :func:`tinct.training.datasets.split_by_source`: a layer is
its own source, a file's source is its name up to ``_x``/``_s``), or, when
everything comes from one source, the last share of its pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["MAX_EXAMPLE_PIECES", "SIZE", "Examples", "even", "prepare_examples"]

#: Side of the squares the examples are cut into / resized to (the network's input size).
SIZE = 256
#: Most pieces kept from all examples (evenly chosen beyond that): 0.8 GB at 256 px.
MAX_EXAMPLE_PIECES = 4096
_MAX_PIXELS = 2**28
_MIN_SIDE = 32


@dataclass
class Examples:
    """Colour examples cut to squares and split into training and held-out parts.

    Attributes:
        images: ``(N, S, S, 3)`` uint8 pieces.
        sources: Source id of each piece.
        held_out: Indices of the held-out pieces.
        description: What the examples are (for metadata and messages).
    """

    images: np.ndarray
    sources: list[str]
    held_out: list[int]
    description: str

    @property
    def n_train(self) -> int:
        """Number of training pieces."""
        return len(self.images) - len(self.held_out)


def _as_rgb8(array: Any, label: str) -> np.ndarray:
    """A colour example as ``(..., H, W, 3)`` uint8 (a copy; alpha dropped)."""
    a = np.asarray(array)
    if a.ndim < 3 or a.shape[-1] not in (3, 4):
        raise ValueError(
            f"{label}: a colour example is an (H, W, 3) RGB or (H, W, 4) RGBA image, "
            f"got shape {a.shape}"
        )
    h, w = a.shape[-3:-1]
    if min(h, w) < _MIN_SIDE:
        raise ValueError(f"{label}: {h} x {w} is too small (at least {_MIN_SIDE} px a side)")
    if a.size // a.shape[-1] > _MAX_PIXELS:
        raise ValueError(f"{label}: more than {_MAX_PIXELS:,} pixels")
    a = a[..., :3]
    if a.dtype == np.uint8:
        return a.copy()
    if a.dtype.kind == "b" or a.dtype.kind not in "uif":
        raise ValueError(f"{label}: pixel type {a.dtype} is not an image type")
    if a.dtype.kind in "ui":
        top = float(np.iinfo(a.dtype).max)
        return np.clip(np.round(a.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    f = a.astype(np.float64)
    if not np.isfinite(f).all():
        raise ValueError(f"{label}: holds NaN or infinite values")
    scale = 255.0 if f.max(initial=0.0) <= 1.0 else 1.0  # floats in [0, 1], else 0..255
    return np.clip(np.round(f * scale), 0, 255).astype(np.uint8)


def _pieces(rgb: np.ndarray, size: int) -> list[np.ndarray]:
    """Cut ``(..., H, W, 3)`` into planes, and planes of at least 2 x ``size`` a side into tiles."""
    planes = rgb.reshape(-1, *rgb.shape[-3:])
    out = []
    for plane in planes:
        h, w = plane.shape[:2]
        if min(h, w) < 2 * size:
            out.append(plane)
            continue
        out.extend(
            plane[y : y + size, x : x + size]
            for y in range(0, h - size + 1, size)
            for x in range(0, w - size + 1, size)
        )
    return out


def even(indices: list[int], limit: int) -> list[int]:
    """At most ``limit`` of ``indices``, evenly spread (all of them when there are fewer)."""
    if len(indices) <= limit:
        return indices
    return [indices[int(i)] for i in np.linspace(0, len(indices) - 1, limit).round()]


def prepare_examples(
    examples: Sequence[Any] = (),
    folders: Sequence[str | Path] = (),
    *,
    names: Sequence[str] | None = None,
    held_fraction: float = 0.25,
    size: int = SIZE,
    cancel: Any = None,
    report: Callable[[int, int], None] | None = None,
) -> Examples:
    """Cut colour examples into squares and hold out part of them.

    An array whose shorter side is at least ``2 * size`` is cut into
    ``size``-pixel tiles at its own resolution; smaller arrays and image files
    are resized and centre-cropped to one square, as ``tinct train`` does.

    Args:
        examples: RGB(A) arrays ``(H, W, 3|4)`` or stacks ``(..., H, W, 3|4)``;
            uint8, other integers (scaled by their type's maximum) or floats
            (in ``[0, 1]``, else taken as 0..255). Not modified.
        folders: Folders (or files) of colour images, searched recursively.
        names: Source name of each array (napari: its layer name); default ``example <i>``.
        held_fraction: Share of sources (or, from one source, of pieces) held out.
        size: Side of the squares.
        cancel: Object with ``is_set()`` (:mod:`tinct.cancel`), checked between two
            examples and between two files of a folder.
        report: ``report(done, total)`` before each file of the folders is read.

    Returns:
        The pieces and their split.

    Raises:
        ValueError: No examples, an array that is not a colour image, fewer than
            two pieces, or examples without colour.
        FileNotFoundError: A folder that does not exist or holds no image.
        tinct.cancel.Cancelled: ``cancel`` was set.
    """
    from tinct.cancel import check
    from tinct.training.datasets import (
        ImageBank,
        find_images,
        held_out_sources,
        skipped_message,
        source_id,
    )

    if names is not None and len(names) != len(examples):
        raise ValueError(f"{len(names)} names for {len(examples)} examples")
    pieces: list[np.ndarray] = []
    sources: list[str] = []
    parts = []
    for i, ex in enumerate(examples):
        check(cancel)
        label = names[i] if names is not None else f"example {i}"
        cut = _pieces(_as_rgb8(ex, label), size)
        pieces += cut
        sources += [label] * len(cut)
    if examples:
        parts.append(f"{len(examples)} image{'s' * (len(examples) > 1)} ({len(pieces)} pieces)")
    if folders:
        paths = find_images(list(folders))
        bank = ImageBank(paths, size=size, progress=report or False, cancel=cancel)
        pieces += list(bank.images)
        sources += [source_id(p) for p in bank.paths]
        parts.append(f"{', '.join(map(str, folders))} ({len(bank.paths)} files)")
        if bank.skipped:
            parts.append(skipped_message(bank.skipped))
    if not pieces:
        raise ValueError("no colour examples: give images and/or folders of colour images")
    if len(pieces) < 2:
        raise ValueError("one example piece is not enough: give two or more, or a larger image")
    order = even(list(range(len(pieces))), MAX_EXAMPLE_PIECES)
    pieces, sources = [pieces[i] for i in order], [sources[i] for i in order]
    if len(set(sources)) >= 2:
        held_ids = held_out_sources(sources, held_fraction)
        held = [i for i, s in enumerate(sources) if s in held_ids]
        how = f"{len(held_ids)} of {len(set(sources))} sources"
    else:  # one source: its last pieces (the bottom of a tiled image)
        n = max(1, round(len(pieces) * held_fraction)) if held_fraction > 0 else 0
        held = list(range(len(pieces) - n, len(pieces)))
        how = f"the last {n} of {len(pieces)} pieces of one source"
    bank = ImageBank.from_arrays(pieces, size)
    _check_colour(bank.images, [i for i in range(len(pieces)) if i not in set(held)])
    desc = "; ".join(parts) + f": {len(pieces) - len(held)} training, {len(held)} held out ({how})"
    return Examples(bank.images, sources, held, desc)


def _check_colour(images: np.ndarray, train: list[int]) -> None:
    from tinct.color import rgb_to_lab
    from tinct.training.datasets import is_near_gray

    if not train:
        raise ValueError("every example is held out: give more examples or more sources")
    rgb = torch.from_numpy(np.stack([images[i] for i in train[:256]])).permute(0, 3, 1, 2)
    ab = rgb_to_lab(rgb.float() / 255.0)[:, 1:]
    if bool(is_near_gray(ab).all()):
        raise ValueError("the training examples are gray: fine-tuning needs colour examples")
