"""A pure tile grid with overlap and taper blending weights.

Nothing here knows about models: :func:`make_grid` covers a ``(height,
width)`` canvas with equally sized, overlapping tiles and
:meth:`TileGrid.weights` gives one weight map per tile that tapers linearly
across the overlaps and sums to exactly 1 at every pixel. The engine runs the
network on each tile and blends the per-tile outputs (log-probabilities or
chrominance) with these weights, so there are no seams.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["Tile", "TileGrid", "grid_shape", "make_grid"]


@dataclass(frozen=True)
class Tile:
    """One tile: rows ``[y0, y1)`` and columns ``[x0, x1)`` of the canvas."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the tile."""
        return self.y1 - self.y0, self.x1 - self.x0

    def scaled(self, factor: int) -> Tile:
        """The same tile on a canvas ``factor`` times smaller (coordinates must divide)."""
        coords = (self.y0, self.y1, self.x0, self.x1)
        if any(c % factor for c in coords):
            raise ValueError(f"tile {coords} is not aligned to a multiple of {factor}")
        return Tile(*(c // factor for c in coords))


def _starts(length: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Start offsets along one axis: step ``tile - overlap``, last tile flush with the end."""
    if tile >= length:
        return [0]
    step = max(multiple, ((tile - overlap) // multiple) * multiple)
    starts = [*range(0, length - tile, step), length - tile]
    return sorted(set(starts))


@dataclass(frozen=True)
class TileGrid:
    """Overlapping tiles covering a canvas.

    Attributes:
        height: Canvas height in pixels.
        width: Canvas width in pixels.
        tiles: The tiles, row-major.
        overlap: Nominal overlap between neighbours (the last tile of a row or
            column may overlap more so that it ends flush with the canvas).
    """

    height: int
    width: int
    tiles: tuple[Tile, ...]
    overlap: int

    def __len__(self) -> int:
        return len(self.tiles)

    def __iter__(self) -> Iterator[Tile]:
        return iter(self.tiles)

    def scaled(self, factor: int) -> TileGrid:
        """The grid on a canvas ``factor`` times smaller (e.g. a network's logits grid)."""
        if self.height % factor or self.width % factor:
            raise ValueError(f"canvas {self.height}x{self.width} is not a multiple of {factor}")
        return TileGrid(
            self.height // factor,
            self.width // factor,
            tuple(t.scaled(factor) for t in self.tiles),
            self.overlap // factor,
        )

    def weights(self) -> list[np.ndarray]:
        """Taper weights, one ``(tile_h, tile_w)`` float32 map per tile, summing to 1 everywhere.

        Each tile's raw weight is the outer product of two 1-D ramps that rise
        linearly over the overlap on every side that borders another tile and
        stay at 1 on canvas borders; the raw weights are then divided by their
        sum over all tiles.

        Returns:
            The normalised weight maps, in the order of :attr:`tiles`.
        """
        raw = [self._raw_weight(t) for t in self.tiles]
        total = np.zeros((self.height, self.width), np.float64)
        for t, w in zip(self.tiles, raw, strict=True):
            total[t.y0 : t.y1, t.x0 : t.x1] += w
        if not np.all(total > 0):
            raise RuntimeError("tile grid does not cover the canvas")  # pragma: no cover
        return [
            (w / total[t.y0 : t.y1, t.x0 : t.x1]).astype(np.float32)
            for t, w in zip(self.tiles, raw, strict=True)
        ]

    def _raw_weight(self, t: Tile) -> np.ndarray:
        ramp = max(1, self.overlap)
        wy = _ramp(t.y1 - t.y0, ramp, t.y0 > 0, t.y1 < self.height)
        wx = _ramp(t.x1 - t.x0, ramp, t.x0 > 0, t.x1 < self.width)
        return np.outer(wy, wx)


def _ramp(n: int, ramp: int, rise: bool, fall: bool) -> np.ndarray:
    """1-D taper of length ``n``: linear from ~0 to 1 over ``ramp`` samples at tapered ends."""
    w = np.ones(n, np.float64)
    k = min(ramp, n)
    up = (np.arange(k, dtype=np.float64) + 0.5) / k
    if rise:
        w[:k] = np.minimum(w[:k], up)
    if fall:
        w[n - k :] = np.minimum(w[n - k :], up[::-1])
    return w


def make_grid(
    height: int, width: int, tile: int, overlap: int = 0, *, multiple: int = 1
) -> TileGrid:
    """Cover a ``height x width`` canvas with overlapping ``tile x tile`` tiles.

    Args:
        height: Canvas height (> 0).
        width: Canvas width (> 0).
        tile: Tile side; tiles are clipped to the canvas when it is smaller.
        overlap: Overlap between neighbouring tiles (``0 <= overlap < tile``).
        multiple: Tile starts (and, where the canvas allows, sizes) are
            multiples of this (a network's stride), so the grid can be scaled
            down to the network's output grid exactly.

    Returns:
        The grid; every pixel is covered by at least one tile.

    Raises:
        ValueError: Bad sizes.
    """
    ys, xs = _grid_starts(height, width, tile, overlap, multiple)
    th, tw = min(tile, height), min(tile, width)
    tiles = tuple(Tile(y, y + th, x, x + tw) for y in ys for x in xs)
    return TileGrid(height, width, tiles, overlap)


def grid_shape(
    height: int, width: int, tile: int, overlap: int = 0, *, multiple: int = 1
) -> tuple[int, int]:
    """How many rows and columns of tiles :func:`make_grid` makes, without making them.

    Args:
        height: Canvas height (> 0).
        width: Canvas width (> 0).
        tile: Tile side.
        overlap: Overlap between neighbouring tiles (``0 <= overlap < tile``).
        multiple: As for :func:`make_grid`.

    Returns:
        ``(rows, columns)``; ``len(make_grid(...).tiles) == rows * columns``.

    Raises:
        ValueError: Bad sizes.
    """
    ys, xs = _grid_starts(height, width, tile, overlap, multiple)
    return len(ys), len(xs)


def _grid_starts(
    height: int, width: int, tile: int, overlap: int, multiple: int
) -> tuple[list[int], list[int]]:
    """The tiles' row and column starts, after checking the sizes."""
    if height <= 0 or width <= 0:
        raise ValueError(f"canvas must be non-empty, got {height}x{width}")
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(
            f"need tile > 0 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}"
        )
    if multiple <= 0 or tile % multiple:
        raise ValueError(f"tile ({tile}) must be a positive multiple of {multiple}")
    th, tw = min(tile, height), min(tile, width)
    return _starts(height, th, overlap, multiple), _starts(width, tw, overlap, multiple)
