"""Training data: folders of colour images -> batches of L, ab and simulated hints.

Images are decoded once into a uint8 array held in memory (and optionally
cached on disk as ``.npy``), so a training step only does cheap tensor work:
random rescale, crop and flip, conversion to CIELAB, and the SIGGRAPH17 hint
simulation (reference §1.9). Everything is seeded and reproducible.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tinct.bins import encode_hard, gamut_bins
from tinct.color import rgb_to_lab, rgb_to_luv, rgb_to_yuv

__all__ = [
    "IMAGE_SUFFIXES",
    "Batch",
    "ImageBank",
    "find_images",
    "global_hint_from_ab",
    "held_out_sources",
    "is_near_gray",
    "simulate_hints",
    "source_id",
    "split_by_source",
]

_SPACES = {"lab": rgb_to_lab, "luv": rgb_to_luv, "yuv": rgb_to_yuv}

#: File suffixes read as images (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


def find_images(root: str | Path | Sequence[str | Path]) -> list[Path]:
    """All image files below one or more folders (recursive), sorted.

    Args:
        root: A folder, an image file, or a sequence of them.

    Returns:
        Sorted list of paths.

    Raises:
        FileNotFoundError: If a root does not exist or holds no image.
    """
    roots = [root] if isinstance(root, (str, Path)) else list(root)
    found: list[Path] = []
    for r in roots:
        p = Path(r).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"no such file or folder: {p}")
        if p.is_file():
            found.append(p)
        else:
            found.extend(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {roots}")
    return sorted(found)


_SOURCE_RE = re.compile(r"^(.+?)_(?:x|s)\d")


def source_id(path: str | Path) -> str:
    """The source image a tile was cut from: its file name up to ``_x`` or ``_s``.

    Files without such a suffix (e.g. one image per file) are their own source.

    Args:
        path: A tile's path, e.g. ``.../TCGA-18-5592-01Z-00-DX1_x116_y372.jpg``.

    Returns:
        The source id, e.g. ``"TCGA-18-5592-01Z-00-DX1"``.
    """
    stem = Path(path).stem
    m = _SOURCE_RE.match(stem)
    return m.group(1) if m else stem


def split_by_source(
    paths: Sequence[str | Path], held_fraction: float = 0.25
) -> tuple[list[Path], list[Path]]:
    """Split tiles into ``(train, held_out)`` so that no source image is in both.

    The held-out part is the tiles of the last ``held_fraction`` of the source
    ids in sorted order (at least one source when there are two or more), the
    rule of the domain benchmarks (issue 17): deterministic, and a model never
    sees another tile of a held-out slide or telescope image.

    Args:
        paths: Tile paths (any order).
        held_fraction: Share of source images held out, in ``[0, 1)``.

    Returns:
        ``(train, held_out)``: sorted path lists.
    """
    by_source: dict[str, list[Path]] = {}
    for p in map(Path, paths):
        by_source.setdefault(source_id(p), []).append(p)
    held_ids = held_out_sources(by_source, held_fraction)
    ids = sorted(by_source)
    train = sorted(p for i in ids if i not in held_ids for p in by_source[i])
    held = sorted(p for i in held_ids for p in by_source[i])
    return train, held


def held_out_sources(ids: Iterable[str], held_fraction: float = 0.25) -> set[str]:
    """The source ids held out by :func:`split_by_source`'s rule.

    The last ``round(n * held_fraction)`` of the ``n`` distinct ids in sorted
    order, and at least one when ``held_fraction > 0`` and there are two or
    more. Front ends whose examples are not files (napari layers) name their
    sources themselves and apply the same rule with this function.

    Args:
        ids: Source ids (repeats allowed).
        held_fraction: Share of sources held out, in ``[0, 1)``.

    Returns:
        The held-out ids.
    """
    if not 0 <= held_fraction < 1:
        raise ValueError(f"held_fraction must be in [0, 1), got {held_fraction}")
    unique = sorted(set(ids))
    n_held = round(len(unique) * held_fraction)
    if held_fraction > 0 and len(unique) >= 2:
        n_held = max(1, n_held)
    return set(unique[len(unique) - n_held :]) if n_held else set()


def _square(im: Any, size: int) -> np.ndarray:
    """A PIL image, shorter side resized to ``size``, centre-cropped: ``(size, size, 3)`` uint8."""
    from PIL import Image

    im = im.convert("RGB")
    w, h = im.size
    s = size / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BICUBIC)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _load_rgb(path: Path, size: int) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return _square(ImageOps.exif_transpose(im), size)


def is_near_gray(ab: Tensor, threshold: float = 5.0) -> Tensor:
    """SIGGRAPH17's gray test: (max-min of a) + (max-min of b) below a threshold.

    Args:
        ab: ``(B, 2, H, W)`` CIELAB chrominance.
        threshold: In ab units (5 in the reference recipe).

    Returns:
        ``(B,)`` bool, True for near-gray images.
    """
    flat = ab.flatten(2)
    spread = (flat.amax(2) - flat.amin(2)).sum(1)
    return spread < threshold


class ImageBank:
    """A set of colour images decoded once to ``(N, S, S, 3)`` uint8.

    Each image is resized so its shorter side is ``size`` and centre-cropped
    to a square. With ``cache_dir`` the decoded array is stored as ``.npy``
    keyed by the file list, so later runs start in a second.

    Args:
        paths: Image files.
        size: Side of the stored squares, in pixels.
        cache_dir: Folder for the decoded-array cache, or None.
        progress: Show a progress bar while decoding.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        size: int = 256,
        cache_dir: str | Path | None = None,
        progress: bool = True,
    ) -> None:
        self.paths = list(paths)
        self.size = size
        key = hashlib.sha256(
            ("\n".join(str(p) for p in self.paths) + f"|{size}").encode()
        ).hexdigest()[:16]
        cache = Path(cache_dir) / f"bank-{key}.npy" if cache_dir else None
        if cache is not None and cache.exists():
            self.images = np.load(cache, mmap_mode="r")
            return
        from tqdm import tqdm

        arr = np.empty((len(self.paths), size, size, 3), dtype=np.uint8)
        for i, p in enumerate(tqdm(self.paths, desc="decoding images", disable=not progress)):
            try:
                arr[i] = _load_rgb(p, size)
            except Exception as exc:  # name the file: one bad image must be findable
                raise ValueError(f"cannot read image {p}: {exc}") from None
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npy")
            np.save(tmp, arr)
            tmp.replace(cache)
        self.images = arr

    @classmethod
    def from_arrays(cls, images: Sequence[np.ndarray], size: int = 256) -> ImageBank:
        """A bank of in-memory images, resized and centre-cropped as files are.

        Args:
            images: ``(H, W, 3)`` uint8 RGB arrays (not modified); arrays that
                are already ``(size, size, 3)`` are copied as they are. One
                ``(N, size, size, 3)`` uint8 array is used as it is (no copy).
            size: Side of the stored squares, in pixels.

        Returns:
            The bank (``paths`` is empty).

        Raises:
            ValueError: An array is not ``(H, W, 3)`` uint8, or there are none.
        """
        from PIL import Image

        if len(images) == 0:
            raise ValueError("ImageBank.from_arrays needs at least one image")
        if (
            isinstance(images, np.ndarray)
            and images.dtype == np.uint8
            and images.shape[1:] == (size, size, 3)
        ):
            bank = cls.__new__(cls)
            bank.paths, bank.size, bank.images = [], size, images
            return bank
        arr = np.empty((len(images), size, size, 3), dtype=np.uint8)
        for i, im in enumerate(images):
            im = np.asarray(im)
            if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise ValueError(
                    f"image {i}: expected an (H, W, 3) uint8 array, got {im.shape} {im.dtype}"
                )
            arr[i] = im if im.shape[:2] == (size, size) else _square(Image.fromarray(im), size)
        bank = cls.__new__(cls)
        bank.paths, bank.size, bank.images = [], size, arr
        return bank

    def __len__(self) -> int:
        return len(self.images)


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
