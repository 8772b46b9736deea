"""Hints on the network grid: patches placed, encoded as model inputs, and their influence."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from tinct.engine.hints import Hint

__all__ = [
    "HintOutsideImageError",
    "HintPatch",
    "encode_hints",
    "hint_influence",
    "patch_bounds",
    "patch_owners",
    "place_hints",
]


class HintOutsideImageError(ValueError):
    """A hint whose position lies outside the image it is given with."""


@dataclass(frozen=True)
class HintPatch:
    """A hint placed on a network grid.

    Attributes:
        row: Centre row in network pixels.
        col: Centre column in network pixels.
        side: Patch side in network pixels (>= 1).
        chroma: ``(B, 2)`` snapped chrominance per plane (model units).
    """

    row: float
    col: float
    side: float
    chroma: Tensor


def place_hints(
    hints: Sequence[Hint],
    gray: Tensor,
    net_size: tuple[int, int],
    *,
    space: str = "lab",
    default_side: int = 5,
) -> list[HintPatch]:
    """Map hints to the network grid and snap their colours into gamut.

    Args:
        hints: Hints in image pixel coordinates.
        gray: ``(B, 1, H, W)`` full-resolution gray level in ``[0, 1]``.
        net_size: ``(h, w)`` network input size (before padding) the image maps to.
        space: Model colour space.
        default_side: Patch side in network pixels for hints without a size.

    Returns:
        One :class:`HintPatch` per hint.

    Raises:
        HintOutsideImageError: A hint outside the image (a ``ValueError``).
    """
    from tinct import spaces as pipeline

    if not hints:
        return []
    B, _, H, W = gray.shape
    sy, sx = net_size[0] / H, net_size[1] / W
    sides, levels, chromas, rgbs = [], [], [], []
    for h in hints:
        if not (0 <= h.row < H and 0 <= h.col < W):
            raise HintOutsideImageError(
                f"hint at (row={h.row:g}, col={h.col:g}) is outside the {H}x{W} image "
                f"(rows 0-{H - 1}, columns 0-{W - 1})"
            )
        side = default_side if h.size is None else max(1.0, h.size * (sy + sx) / 2)
        half_img = max(0.5, side / ((sy + sx) / 2) / 2)
        r0, r1 = (
            int(max(0, math.floor(h.row - half_img + 0.5))),
            int(min(H, math.floor(h.row + half_img + 0.5))),
        )
        c0, c1 = (
            int(max(0, math.floor(h.col - half_img + 0.5))),
            int(min(W, math.floor(h.col + half_img + 0.5))),
        )
        r1, c1 = max(r1, r0 + 1), max(c1, c0 + 1)
        sides.append(side)
        levels.append(gray[:, 0, r0:r1, c0:c1].mean((-2, -1)))  # (B,)
        chromas.append(None if h.ab is None else torch.tensor(h.ab, dtype=torch.float32))
        if h.ab is None:
            rgbs.append(torch.tensor(h.color, dtype=torch.float32))
    # one colour conversion and one gamut snap for all hints (K x B at once)
    converted = iter(
        pipeline.rgb_to_space(torch.stack(rgbs).view(-1, 3, 1, 1), space)[:, 1:, 0, 0]
        if rgbs
        else ()
    )
    given = [c if c is not None else next(converted) for c in chromas]
    k = len(hints)
    lum = pipeline.lum_from_gray(torch.stack(levels).reshape(k * B), space).float()
    chroma = torch.stack(given)[:, None].expand(k, B, 2).reshape(k * B, 2).to(lum.device)
    snapped = pipeline.snap_chroma(lum, chroma.float(), space).view(k, B, 2)
    return [
        HintPatch((h.row + 0.5) * sy - 0.5, (h.col + 0.5) * sx - 0.5, side, snapped[i])
        for i, (h, side) in enumerate(zip(hints, sides, strict=True))
    ]


def patch_bounds(p: HintPatch, scale: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(r0, r1, c0, c1)``: the pixels a hint covers on a grid ``scale`` x the network grid."""
    side = max(1.0, p.side * scale)
    cy, cx = (p.row + 0.5) * scale - 0.5, (p.col + 0.5) * scale - 0.5
    r0 = math.floor(cy - side / 2 + 0.5)
    c0 = math.floor(cx - side / 2 + 0.5)
    n = max(1, round(side))
    r0 = min(max(r0, 0), shape[0] - 1)
    c0 = min(max(c0, 0), shape[1] - 1)
    return r0, min(shape[0], r0 + n), c0, min(shape[1], c0 + n)


def patch_owners(patches: Sequence[HintPatch], scale: float, shape: tuple[int, int]) -> np.ndarray:
    """Which hint covers each pixel of a grid ``scale`` x the network grid.

    The hint masks of the Levin solves on the fusion grid (the hint weights of
    :func:`tinct.engine.fusion.hint_weights`, the reach of
    :func:`tinct.engine.reach.hint_reach`) are read from this one map.

    Args:
        patches: Placed hints (network input coordinates).
        scale: Grid pixels per network input pixel.
        shape: ``(h, w)`` of the grid.

    Returns:
        ``(h, w)`` int64: the index in ``patches`` of the hint covering each pixel
        (a later hint wins where patches overlap, as in :func:`encode_hints`), ``-1``
        where no hint is.
    """
    owner = np.full(shape, -1, dtype=np.int64)
    for i, p in enumerate(patches):
        r0, r1, c0, c1 = patch_bounds(p, scale, shape)
        owner[r0:r1, c0:c1] = i
    return owner


def encode_hints(
    patches: Sequence[HintPatch], shape: tuple[int, int], batch: int
) -> tuple[Tensor, Tensor]:
    """SIGGRAPH17-style hint tensors on the network input grid.

    Args:
        patches: Placed hints (:func:`place_hints`); later ones overwrite earlier.
        shape: ``(h, w)`` network input size.
        batch: ``B``, number of planes.

    Returns:
        ``hint_ab (B, 2, h, w)`` (chrominance inside the patches, 0 elsewhere)
        and ``hint_mask (B, 1, h, w)`` (1 inside the patches, also for gray hints).
    """
    ab = torch.zeros(batch, 2, *shape)
    mask = torch.zeros(batch, 1, *shape)
    for p in patches:
        r0, r1, c0, c1 = patch_bounds(p, 1.0, shape)
        ab[:, :, r0:r1, c0:c1] = p.chroma.view(batch, 2, 1, 1)
        mask[:, :, r0:r1, c0:c1] = 1.0
    return ab, mask


def hint_influence(
    patches: Sequence[HintPatch], shape: tuple[int, int], scale: float, batch: int, spread: float
) -> tuple[Tensor, Tensor] | None:
    """Spatial influence of hints on an output grid.

    Inside a hint's patch the influence is 1; outside it falls off as a
    Gaussian of the distance to the patch with standard deviation ``spread``
    output pixels. Where hints overlap, the strongest wins.

    Args:
        patches: Placed hints (network input coordinates).
        shape: ``(h, w)`` of the output grid.
        scale: Output pixels per network input pixel (e.g. 1/4 for logits).
        batch: ``B``.
        spread: Falloff (output pixels); ``0`` keeps the influence to the patch.

    Returns:
        ``(weight (B, 1, h, w) in [0, 1], target chroma (B, 2, h, w))``, or
        ``None`` without hints.
    """
    if not patches:
        return None
    h, w = shape
    yy = torch.arange(h, dtype=torch.float32).view(h, 1)
    xx = torch.arange(w, dtype=torch.float32).view(1, w)
    weight = torch.zeros(batch, 1, h, w)
    target = torch.zeros(batch, 2, h, w)
    for p in patches:
        r0, r1, c0, c1 = patch_bounds(p, scale, shape)
        dy = torch.clamp(torch.maximum(r0 - yy, yy - (r1 - 1)), min=0.0)
        dx = torch.clamp(torch.maximum(c0 - xx, xx - (c1 - 1)), min=0.0)
        d2 = dy * dy + dx * dx
        s = (d2 == 0).float() if spread <= 0 else torch.exp(-d2 / (2.0 * spread * spread))
        s = s.expand(batch, 1, h, w)
        stronger = s >= weight
        weight = torch.where(stronger, s, weight)
        target = torch.where(stronger, p.chroma.view(batch, 2, 1, 1).expand(batch, 2, h, w), target)
    return weight, target
