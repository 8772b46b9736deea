"""tinct.engine.chroma: colour suggestions at a pixel and hint propagation."""

import numpy as np
import pytest
import torch

import tinct
from engine_helpers import gradient_image
from tinct import color
from tinct.engine.colorizer import Colorizer


def test_suggest_colors(tiny, tiny_reg):
    img = gradient_image()
    s = tiny.suggest_colors(img, 20, 30, k=9)
    assert s.shape == (9, 3) and s.dtype == np.uint8
    assert len({tuple(x) for x in s}) > 3
    cur = tiny.colorize(img)[20, 30].astype(int)
    np.testing.assert_array_equal(s[0], cur)
    np.testing.assert_array_equal(s, tiny.suggest_colors(img, 20, 30, k=9))  # seeded
    assert tiny_reg.suggest_colors(img, 3, 3, k=4).shape == (4, 3)
    with pytest.raises(ValueError):
        tiny.suggest_colors(img, 64, 0)


def test_hint_propagation_spreads_a_hint_over_its_region():
    # left half dark, right half bright; one red hint in the left half
    gray = np.full((64, 64), 60, np.uint8)
    gray[:, 32:] = 200
    c = Colorizer("tinct-small", device="cpu", pretrained=False)
    hint = [tinct.Hint(32, 8, color=(200, 30, 30), size=4)]
    off = c.colorize(gray, hints=hint, decoder="ab", propagation=0.0)
    on = c.colorize(gray, hints=hint, decoder="ab", propagation=1e-4)
    lab_on = color.rgb_to_lab(torch.from_numpy(on).permute(2, 0, 1).float()[None] / 255)
    lab_off = color.rgb_to_lab(torch.from_numpy(off).permute(2, 0, 1).float()[None] / 255)
    far_left = (slice(None), 1, slice(8, 56), slice(20, 28))  # a* far from the hint, same region
    assert lab_on[far_left].mean() > lab_off[far_left].mean() + 5
    assert c.stats.network_passes == 1  # propagation is part of the re-decode
