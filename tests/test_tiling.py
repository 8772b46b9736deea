import numpy as np
import pytest

from tinct.tiling import Tile, grid_shape, make_grid


@pytest.mark.parametrize(
    ("h", "w", "tile", "overlap", "multiple"),
    [(256, 256, 64, 16, 8), (100, 37, 32, 8, 1), (96, 320, 64, 32, 32), (64, 64, 128, 0, 8),
     (512, 384, 128, 0, 32), (33, 65, 16, 15, 1)],
)  # fmt: skip
def test_grid_covers_and_weights_sum_to_one(h, w, tile, overlap, multiple):
    grid = make_grid(h, w, tile, overlap, multiple=multiple)
    total = np.zeros((h, w))
    for t, wt in zip(grid.tiles, grid.weights(), strict=True):
        assert 0 <= t.y0 < t.y1 <= h and 0 <= t.x0 < t.x1 <= w
        assert wt.shape == t.shape and (wt >= 0).all()
        total[t.y0 : t.y1, t.x0 : t.x1] += wt
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    rows, cols = grid_shape(h, w, tile, overlap, multiple=multiple)
    assert rows * cols == len(grid.tiles)  # counted without making the tiles


def test_tiles_aligned_and_equal_size():
    grid = make_grid(320, 224, 96, 32, multiple=32)
    assert len({t.shape for t in grid}) == 1
    assert all(t.y0 % 32 == 0 and t.x0 % 32 == 0 for t in grid)
    small = grid.scaled(4)
    assert small.height == 80 and all(t.shape == (24, 24) for t in small)


def test_taper_is_smooth_inside_and_flat_at_borders():
    grid = make_grid(128, 128, 64, 32)
    w = grid.weights()[0]
    assert w[0, 0] == pytest.approx(1.0)  # canvas corner: only this tile
    assert w[-1, -1] < 0.5  # tapered towards the neighbours


def test_single_tile_when_canvas_is_small():
    grid = make_grid(50, 40, 64, 8)
    assert grid.tiles == (Tile(0, 50, 0, 40),)
    np.testing.assert_allclose(grid.weights()[0], 1.0)


@pytest.mark.parametrize(
    "args", [(0, 10, 8, 0), (10, 10, 0, 0), (10, 10, 8, 8), (10, 10, 12, 0, 8)]
)
def test_bad_arguments(args):
    kw = {"multiple": args[4]} if len(args) > 4 else {}
    with pytest.raises(ValueError):
        make_grid(*args[:4], **kw)


def test_scaled_requires_alignment():
    with pytest.raises(ValueError):
        Tile(0, 10, 0, 8).scaled(4)
