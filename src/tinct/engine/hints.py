"""User colour hints: the value type, converters from napari/GIMP/files, and rasterisation.

A :class:`Hint` says "around image pixel (row, col) the colour is this". It is
napari-free and shared by every front end:

* napari Points layers -> :func:`hints_from_points`;
* a painted RGBA hint layer (the GIMP bridge) -> :func:`hints_from_rgba`;
* CSV/JSON files (the CLI) -> :func:`read_hints_file`.

:func:`encode_hints` rasterises hints into a network's input grid the way
SIGGRAPH17 / ideepcolor do (a square patch of hint chrominance with mask 1,
also for gray hints), after snapping each colour into the sRGB gamut at the
luminance of the image under the hint. :func:`hint_influence` gives the
spatial weight map the engine uses to make models without hint inputs (and
regression heads) honour hints too.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Hint",
    "HintPatch",
    "encode_hints",
    "hint_influence",
    "hints_digest",
    "hints_from_points",
    "hints_from_rgba",
    "patch_bounds",
    "read_hints_file",
]


@dataclass(frozen=True)
class Hint:
    """A colour hint at an image pixel.

    Give exactly one of ``color`` and ``ab``.

    Attributes:
        row: Row of the hint centre in image pixels (``0 <= row < H``).
        col: Column of the hint centre in image pixels.
        color: sRGB colour: floats all within ``[0, 1]`` are read as ``[0, 1]``;
            otherwise values are read as ``0..255``. Stored normalised to ``[0, 1]``.
        ab: Chrominance in the model's colour space (CIELAB a, b for Lab models).
        size: Side of the square hint patch in image pixels; ``None`` = the
            options' ``hint_size`` in network pixels (5 by default).
    """

    row: float
    col: float
    color: tuple[float, float, float] | None = None
    ab: tuple[float, float] | None = None
    size: float | None = None

    def __post_init__(self) -> None:
        if (self.color is None) == (self.ab is None):
            raise ValueError("a Hint needs exactly one of color=(r, g, b) and ab=(a, b)")
        for name in ("row", "col"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
                raise TypeError(f"Hint.{name} must be a number, got {v!r}")
            if not math.isfinite(v):
                raise ValueError(f"Hint.{name} must be finite, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.color is not None:
            c = tuple(float(x) for x in self.color)
            if len(c) not in (3, 4) or not all(math.isfinite(x) for x in c):
                raise ValueError(f"Hint.color must be (r, g, b), got {self.color!r}")
            c = c[:3]
            is_float = all(isinstance(x, (float, np.floating)) for x in self.color[:3])
            if not (is_float and max(c) <= 1.0):
                c = tuple(x / 255.0 for x in c)
            if min(c) < 0.0 or max(c) > 1.0:
                raise ValueError(f"Hint.color out of range: {self.color!r}")
            object.__setattr__(self, "color", c)
        if self.ab is not None:
            ab = tuple(float(x) for x in self.ab)
            if len(ab) != 2 or not all(math.isfinite(x) for x in ab):
                raise ValueError(f"Hint.ab must be (a, b), got {self.ab!r}")
            object.__setattr__(self, "ab", ab)
        if self.size is not None:
            if not (isinstance(self.size, (int, float, np.number)) and self.size >= 1):
                raise ValueError(f"Hint.size must be >= 1 pixel, got {self.size!r}")
            object.__setattr__(self, "size", float(self.size))

    def key(self) -> tuple[Any, ...]:
        """A hashable, exact description (for cache keys)."""
        return (self.row, self.col, self.color, self.ab, self.size)


def hints_digest(hints: Iterable[Hint]) -> str:
    """Stable text digest of a hint list (order matters: later hints overwrite earlier)."""
    return repr([h.key() for h in hints])


# ----------------------------------------------------------------------------- converters


def hints_from_points(
    coords: Any, colors: Any, size: float | Sequence[float] | None = None
) -> list[Hint]:
    """Hints from napari Points data.

    Args:
        coords: ``(N, 2)`` (row, col) positions; for ``(N, D)`` data from an n-D
            viewer, the last two columns are used.
        colors: ``(N, 3)`` or ``(N, 4)`` face colours as floats in ``[0, 1]``
            (alpha is ignored).
        size: Patch side in image pixels: one value, one per point, or ``None``.

    Returns:
        One hint per point.
    """
    pts = np.asarray(coords, dtype=np.float64)
    cols = np.asarray(colors, dtype=np.float64)
    if pts.size == 0:
        return []
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise ValueError(f"coords must be (N, 2), got shape {pts.shape}")
    if cols.ndim == 1:
        cols = np.broadcast_to(cols, (len(pts), cols.shape[0]))
    if cols.shape[0] != len(pts) or cols.shape[1] not in (3, 4):
        raise ValueError(f"colors must be (N, 3|4) for N={len(pts)} points, got {cols.shape}")
    if cols.min() < 0.0 or cols.max() > 1.0:
        raise ValueError("colors must be floats in [0, 1]")
    sizes = np.broadcast_to(np.asarray(size if size is not None else np.nan, float), (len(pts),))
    return [
        Hint(
            float(p[-2]),
            float(p[-1]),
            color=tuple(float(x) for x in c[:3]),
            size=None if not np.isfinite(s) else max(1.0, float(s)),
        )
        for p, c, s in zip(pts, cols, sizes, strict=True)
    ]


def hints_from_rgba(rgba: Any, *, min_alpha: int = 1) -> list[Hint]:
    """Hints from a painted RGBA layer: one hint per connected opaque blob.

    Pixels with alpha ``>= min_alpha`` are hint pixels; 8-connected blobs of
    them become one hint each, centred on the blob's centroid, with the blob's
    mean colour and a patch side of ``sqrt(area)`` (at least 1).

    Args:
        rgba: ``(H, W, 4)`` uint8 layer (GIMP's colour-mask layer).
        min_alpha: Opacity threshold (1..255).

    Returns:
        The hints, in blob label order (row-major by first pixel).
    """
    from scipy import ndimage

    a = np.asarray(rgba)
    if a.ndim != 3 or a.shape[-1] != 4:
        raise ValueError(f"rgba must be (H, W, 4), got shape {a.shape}")
    if a.dtype != np.uint8:
        raise TypeError(f"rgba must be uint8, got {a.dtype}")
    mask = a[..., 3] >= min_alpha
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    area = ndimage.sum_labels(mask, labels, idx)
    rr, cc = np.nonzero(mask)
    lab = labels[rr, cc]
    rows = np.bincount(lab, rr, n + 1)[1:] / area
    cols = np.bincount(lab, cc, n + 1)[1:] / area
    means = [
        np.bincount(lab, a[rr, cc, ch].astype(np.float64), n + 1)[1:] / area for ch in range(3)
    ]
    return [
        Hint(
            float(rows[i]),
            float(cols[i]),
            color=(
                float(means[0][i]) / 255.0,
                float(means[1][i]) / 255.0,
                float(means[2][i]) / 255.0,
            ),
            size=max(1.0, math.sqrt(float(area[i]))),
        )
        for i in range(n)
    ]


def read_hints_file(path: str | Path) -> list[Hint]:
    """Read hints from a CSV or JSON file.

    CSV: one hint per line. A header line names the columns (``row``, ``col``,
    ``r``, ``g``, ``b`` and optionally ``size``, in any order; ``y``/``x`` are
    accepted for ``row``/``col``); without a header the columns are ``row,
    col, r, g, b[, size]``. Colours are ``0..255`` (or floats in ``[0, 1]``);
    lines starting with ``#`` are comments. JSON: a list of such rows, or of
    objects ``{"row":, "col":, "color": [r, g, b] | "r":, "g":, "b":, "ab":
    [a, b], "size":}``.

    Args:
        path: ``.csv`` or ``.json`` file.

    Returns:
        The hints (at least one).

    Raises:
        ValueError: No hints, an unknown or missing column, or a malformed row
            (the message gives its number).
    """
    path = Path(path)
    text = path.read_text()
    rows: list[Any]
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        rows = data.get("hints", data) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of hints")
    else:
        rows = [
            [x.strip() for x in r]
            for r in csv.reader(
                line for line in text.splitlines() if not line.lstrip().startswith("#")
            )
            if r and any(x.strip() for x in r)
        ]
        if rows and not _is_number(rows[0][0]):
            columns = _csv_columns(rows[0], path)
            rows = [dict(zip(columns, r, strict=False)) for r in rows[1:]]
            for i, r in enumerate(rows, 1):
                if any(c not in r for c in ("row", "col", "r", "g", "b")):
                    raise ValueError(f"{path}: hint {i} has fewer values than the header")
    if not rows:
        raise ValueError(f"{path}: no hints in the file")
    hints = []
    for i, r in enumerate(rows, 1):
        try:
            hints.append(_hint_from_row(r))
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: hint {i} ({r!r}) is invalid: {exc}") from None
    return hints


#: CSV header names and the hint fields they mean.
_CSV_NAMES = {
    "row": "row", "y": "row", "col": "col", "column": "col", "x": "col",
    "r": "r", "red": "r", "g": "g", "green": "g", "b": "b", "blue": "b", "size": "size",
}  # fmt: skip


def _csv_columns(header: list[str], path: Path) -> list[str]:
    """Hint field of each CSV column, from its header (raises for unknown/missing ones)."""
    cols = []
    for name in header:
        key = _CSV_NAMES.get(name.strip().lower())
        if key is None:
            raise ValueError(
                f"{path}: unknown column {name.strip()!r} in the header; "
                "use row, col, r, g, b[, size]"
            )
        cols.append(key)
    missing = [c for c in ("row", "col", "r", "g", "b") if c not in cols]
    if missing:
        raise ValueError(f"{path}: the header lacks column(s) {', '.join(missing)}")
    return cols


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _num(x: Any) -> float | int:
    if isinstance(x, str):
        f = float(x)
        return int(f) if f.is_integer() and "." not in x else f
    if isinstance(x, bool):
        raise TypeError("not a number")
    return x


def _hint_from_row(r: Any) -> Hint:
    if isinstance(r, dict):
        size = r.get("size")
        size = None if size in (None, "") else _num(size)
        if "ab" in r:
            return Hint(_num(r["row"]), _num(r["col"]), ab=tuple(r["ab"]), size=size)
        c = r["color"] if "color" in r else (r["r"], r["g"], r["b"])
        return Hint(_num(r["row"]), _num(r["col"]), color=tuple(_num(x) for x in c), size=size)
    vals = [_num(x) for x in r]
    if len(vals) not in (5, 6):
        raise ValueError("expected row, col, r, g, b[, size]")
    return Hint(vals[0], vals[1], color=tuple(vals[2:5]), size=vals[5] if len(vals) == 6 else None)


# ----------------------------------------------------------------------------- rasterisation


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
        ValueError: A hint outside the image.
    """
    from tinct import spaces as pipeline

    if not hints:
        return []
    B, _, H, W = gray.shape
    sy, sx = net_size[0] / H, net_size[1] / W
    out = []
    for h in hints:
        if not (0 <= h.row < H and 0 <= h.col < W):
            raise ValueError(f"hint at (row={h.row}, col={h.col}) is outside the {H}x{W} image")
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
        v = gray[:, 0, r0:r1, c0:c1].mean((-2, -1))  # (B,)
        lum = pipeline.lum_from_gray(v, space)
        if h.ab is not None:
            chroma = torch.tensor(h.ab, dtype=torch.float32).expand(B, 2)
        else:
            rgb = torch.tensor(h.color, dtype=torch.float32).view(1, 3, 1, 1)
            chroma = pipeline.rgb_to_space(rgb, space)[:, 1:, 0, 0].expand(B, 2)
        chroma = pipeline.snap_chroma(lum.float(), chroma.contiguous().float(), space)
        out.append(HintPatch((h.row + 0.5) * sy - 0.5, (h.col + 0.5) * sx - 0.5, side, chroma))
    return out


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
