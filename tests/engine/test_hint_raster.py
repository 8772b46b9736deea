"""Placing hints: all at once, each colour snapped into gamut on its own."""

import numpy as np
import pytest
import torch

import tinct
from tinct.color import snap_to_gamut
from tinct.engine.hint_raster import HintPatch, patch_bounds, patch_owners, place_hints


@pytest.mark.parametrize("space", ["lab", "luv", "yuv"])
def test_a_hint_colour_does_not_depend_on_the_other_hints(space):
    gray = torch.rand(2, 1, 60, 90, generator=torch.Generator().manual_seed(0))
    rng = np.random.default_rng(1)
    hints = [
        tinct.Hint(float(r), float(c), color=tuple(int(x) for x in rng.integers(0, 256, 3)))
        for r, c in rng.uniform(0, 59, (6, 2))
    ]
    hints.append(tinct.Hint(5.0, 80.0, ab=(60.0, -90.0), size=4))  # far out of gamut
    together = place_hints(hints, gray, (40, 60), space=space)
    for h, p in zip(hints, together, strict=True):
        alone = place_hints([h], gray, (40, 60), space=space)[0]
        assert (alone.row, alone.col, alone.side) == (p.row, p.col, p.side)
        torch.testing.assert_close(alone.chroma, p.chroma, atol=1e-3, rtol=1e-5)
        assert p.chroma.shape == (2, 2)


def test_snap_to_gamut_stops_each_pixel_on_its_own():
    lab = torch.tensor([[50.0, 100.0, -100.0], [60.0, 5.0, 5.0]]).T.reshape(1, 3, 1, 2)
    both = snap_to_gamut(lab)
    for i in range(2):
        torch.testing.assert_close(snap_to_gamut(lab[..., i : i + 1]), both[..., i : i + 1])
    torch.testing.assert_close(both[:, :, 0, 1], lab[:, :, 0, 1], atol=1e-3, rtol=0)  # in gamut


def _patch(row: float, col: float, side: float) -> HintPatch:
    return HintPatch(row, col, side, torch.zeros(1, 2))


def test_patch_owners_marks_each_hint_and_the_later_one_wins_on_overlaps():
    patches = [_patch(8, 8, 6), _patch(10, 10, 4), _patch(28, 2, 3)]
    for scale, shape in ((1.0, (32, 32)), (0.5, (16, 16)), (0.37, (12, 12))):
        owner = patch_owners(patches, scale, shape)
        assert owner.shape == shape and owner.dtype == np.int64
        expected = np.full(shape, -1)
        for i, p in enumerate(patches):  # the loop both Levin masks used to repeat
            r0, r1, c0, c1 = patch_bounds(p, scale, shape)
            expected[r0:r1, c0:c1] = i
        np.testing.assert_array_equal(owner, expected)
        assert set(np.unique(owner)) == {-1, 0, 1, 2}
    assert (patch_owners([], 1.0, (4, 5)) == -1).all()
