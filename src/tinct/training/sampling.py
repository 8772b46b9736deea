"""Training batches: random crops, simulated user hints and global hints from an image bank."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tinct.bins import encode_hard, gamut_bins
from tinct.color import rgb_to_lab
from tinct.training.datasets import _SPACES, ImageBank, is_near_gray

__all__ = [
    "Batch",
    "BatchSampler",
    "global_hint_from_ab",
    "simulate_hints",
]


@dataclass
class Batch:
    """One training batch (all tensors on the same device).

    Attributes:
        lum: ``(B, 1, H, W)`` CIELAB L in ``[0, 100]``.
        ab: ``(B, 2, H, W)`` ground-truth a, b.
        hint_ab: ``(B, 2, H, W)`` simulated hint chrominance, 0 outside hints.
        hint_mask: ``(B, 1, H, W)`` 1 on hint patches.
        global_hint: ``(B, 314)`` image's own 313-bin histogram + flag (zeros when
            not given).
        keep: ``(B,)`` float, 0 for near-gray images (excluded from the loss).
    """

    lum: Tensor
    ab: Tensor
    hint_ab: Tensor
    hint_mask: Tensor
    global_hint: Tensor
    keep: Tensor


def simulate_hints(
    ab: Tensor,
    counts: Sequence[int],
    generator: torch.Generator,
    *,
    max_patch: int = 9,
    spread: float = 0.25,
) -> tuple[Tensor, Tensor]:
    """SIGGRAPH17 hint simulation: square patches carrying their mean ab.

    Patch side is uniform in ``1..max_patch``; the top-left corner is drawn
    from a normal distribution centred on the image with standard deviation
    ``spread * (side - P + 1)``, clipped to the image.

    Args:
        ab: ``(B, 2, H, W)`` ground-truth chrominance.
        counts: Number of hints for each image of the batch.
        generator: Random generator (CPU) for reproducibility.
        max_patch: Largest patch side, in pixels.
        spread: Relative standard deviation of the patch positions.

    Returns:
        ``(hint_ab (B, 2, H, W), hint_mask (B, 1, H, W))``.
    """
    b, _, h, w = ab.shape
    hint_ab = torch.zeros_like(ab)
    mask = torch.zeros(b, 1, h, w, dtype=ab.dtype, device=ab.device)
    pooled: dict[int, Tensor] = {}
    for i, n in enumerate(counts):
        if n <= 0:
            continue
        sizes = torch.randint(1, max_patch + 1, (n,), generator=generator).tolist()
        for p in set(sizes) - pooled.keys():
            pooled[p] = F.avg_pool2d(ab, p, stride=1)
        noise = torch.randn(n, 2, generator=generator).tolist()
        for p, (ny, nx) in zip(sizes, noise, strict=True):
            ry, rx = h - p + 1, w - p + 1
            y = int(min(max(round(ry / 2 + ny * spread * ry), 0), ry - 1))
            x = int(min(max(round(rx / 2 + nx * spread * rx), 0), rx - 1))
            hint_ab[i, :, y : y + p, x : x + p] = pooled[p][i, :, y, x, None, None]
            mask[i, :, y : y + p, x : x + p] = 1.0
    return hint_ab, mask


def global_hint_from_ab(ab: Tensor) -> Tensor:
    """SIGGRAPH17 global hint: 313-bin histogram of 4x4-pooled ab + a 1 flag.

    Args:
        ab: ``(B, 2, H, W)`` chrominance of the reference image(s).

    Returns:
        ``(B, 314)``: normalised histogram over the gamut bins, then 1.
    """
    pooled = F.avg_pool2d(ab, 4, ceil_mode=True)
    idx = encode_hard(pooled, gamut_bins(device=ab.device))
    hist = F.one_hot(idx.flatten(1), 313).to(ab.dtype).mean(1)
    return torch.cat((hist, torch.ones_like(hist[:, :1])), dim=1)


def _hint_counts(batch: int, generator: torch.Generator, p_none: float, p_geom: float) -> list[int]:
    """Mixture: no hints / geometric(p=1/8) / log-uniform in [1, 200]."""
    counts = []
    for _ in range(batch):
        u = float(torch.rand((), generator=generator))
        if u < p_none:
            counts.append(0)
        elif u < p_none + p_geom:
            v = float(torch.rand((), generator=generator))
            counts.append(int(math.log(max(v, 1e-12)) / math.log(1 - 1 / 8)))
        else:
            v = float(torch.rand((), generator=generator))
            counts.append(round(math.exp(v * math.log(200))))
    return counts


class BatchSampler:
    """Endless seeded stream of augmented training batches from an ImageBank.

    Args:
        bank: Decoded images.
        batch_size: Images per batch.
        crop: Side of the square training crops.
        scale: Range of the random rescale factor applied before cropping.
        p_no_hints: Probability that an image gets no hints (automatic mode).
        p_geometric: Probability of SIGGRAPH17's geometric hint count.
        p_global: Probability that an image gets its own histogram as global hint.
        seed: Random seed.
        indices: Subset of the bank to draw from (e.g. one DDP shard).
        device: Where batches are built.
        color_space: ``"lab"``, ``"luv"`` or ``"yuv"``: the space of ``lum``,
            ``ab`` and the hints (global hints and the gray test always use Lab).
    """

    def __init__(
        self,
        bank: ImageBank,
        batch_size: int = 16,
        crop: int = 128,
        scale: tuple[float, float] = (0.5, 1.0),
        p_no_hints: float = 0.3,
        p_geometric: float = 0.45,
        p_global: float = 0.1,
        seed: int = 0,
        indices: Sequence[int] | None = None,
        device: torch.device | str = "cpu",
        color_space: str = "lab",
    ) -> None:
        if color_space not in _SPACES:
            raise ValueError(f"color_space must be one of {sorted(_SPACES)}, got {color_space!r}")
        self.color_space = color_space
        self.bank = bank
        self.batch_size = batch_size
        self.crop = crop
        self.scale = scale
        self.p_no_hints = p_no_hints
        self.p_geometric = p_geometric
        self.p_global = p_global
        self.indices = torch.as_tensor(
            list(indices) if indices is not None else range(len(bank)), dtype=torch.long
        )
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.next()

    def next(self) -> Batch:
        """Draw one batch."""
        g = self.generator
        pick = self.indices[torch.randint(len(self.indices), (self.batch_size,), generator=g)]
        rgb = torch.from_numpy(np.stack([self.bank.images[int(i)] for i in pick]))
        rgb = rgb.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        lo, hi = self.scale
        s = lo + (hi - lo) * float(torch.rand((), generator=g))
        side = max(self.crop, round(rgb.shape[-1] * s))
        if side != rgb.shape[-1]:
            rgb = F.interpolate(rgb, size=(side, side), mode="bilinear", antialias=True)
        y, x = (int(torch.randint(side - self.crop + 1, (), generator=g)) for _ in range(2))
        rgb = rgb[:, :, y : y + self.crop, x : x + self.crop].clamp(0.0, 1.0)
        flip = torch.rand(self.batch_size, generator=g) < 0.5
        rgb = torch.where(flip.to(self.device)[:, None, None, None], rgb.flip(-1), rgb)
        lab = rgb_to_lab(rgb)
        space = lab if self.color_space == "lab" else _SPACES[self.color_space](rgb)
        lum, ab = space[:, :1], space[:, 1:]
        counts = _hint_counts(self.batch_size, g, self.p_no_hints, self.p_geometric)
        hint_ab, hint_mask = simulate_hints(ab, counts, g)
        use_global = torch.rand(self.batch_size, generator=g) < self.p_global
        global_hint = ab.new_zeros(self.batch_size, 314)
        if use_global.any():
            sel = use_global.nonzero().flatten().to(self.device)
            global_hint[sel] = global_hint_from_ab(lab[sel, 1:])
        keep = (~is_near_gray(lab[:, 1:])).float()
        return Batch(lum, ab, hint_ab, hint_mask, global_hint, keep)
