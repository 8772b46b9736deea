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


def test_inactive_knobs_tells_when_one_far_hint_floods_the_image():
    """One hint the network disagrees with: its colour everywhere, decoding knobs idle.

    The report must be true: the result then does not change with them; with a second
    hint or local hints they act again and nothing is reported.
    """
    from skimage import data
    from skimage.color import rgb2gray

    from tinct.engine.chroma import DECODING_KNOBS

    gray = (rgb2gray(data.coffee()[::2, ::2]) * 255).astype(np.uint8)
    c = Colorizer("tinct-base", device="cpu")
    green = [tinct.Hint(row=30, col=240, color=(0.1, 0.8, 0.1))]
    idle = c.inactive_knobs(gray, hints=green)
    assert set(DECODING_KNOBS) <= set(idle) and "one hint" in idle["temperature"]
    knobs = tinct.ColorizeOptions(temperature=0.1, mrf_weight=5.0)
    a, b = c.colorize(gray, hints=green), c.colorize(gray, hints=green, options=knobs)
    assert np.abs(a.astype(int) - b).max() <= 1  # they really do nothing here
    two = [*green, tinct.Hint(row=125, col=215, color=(0.8, 0.1, 0.1))]
    assert not set(DECODING_KNOBS) & set(c.inactive_knobs(gray, hints=two))
    local = tinct.ColorizeOptions(local_hints=True)
    assert "temperature" not in c.inactive_knobs(gray, hints=green, options=local)
    assert "temperature" not in c.inactive_knobs(gray)  # automatic: static reasons only
