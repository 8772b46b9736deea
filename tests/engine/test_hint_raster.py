"""Placing hints: all at once, each colour snapped into gamut on its own."""

import numpy as np
import pytest
import torch

import tinct
from tinct.color import snap_to_gamut
from tinct.engine.hint_raster import place_hints


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
