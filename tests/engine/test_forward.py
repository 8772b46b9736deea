"""The network pass of :mod:`tinct.engine.forward` (hint placement on padded grids)."""

from __future__ import annotations

import numpy as np
from skimage import color

import tinct


def _two_bands(height: int, width: int, edge: int) -> np.ndarray:
    """A dark band above ``edge`` and a light one below, with a little texture."""
    rng = np.random.default_rng(0)
    gray = np.where(np.arange(height)[:, None] < edge, 60.0, 190.0) * np.ones((1, width))
    return np.clip(gray + rng.normal(0, 2, (height, width)), 0, 255).astype(np.uint8)


def test_hints_of_a_non_square_image_propagate_from_where_they_were_placed():
    """A hint near an edge stays on its side of it on a padded network input.

    A 400 x 600 photo becomes a 171 x 256 network input, padded to 192 x 256; the
    hints' propagation grid covers the padded input, so a hint at row 195 of 400 must
    land there, above the edge at row 212 (placed by the unpadded height it landed
    12 % lower, below the edge, and its red flooded the light band).
    """
    gray = _two_bands(400, 600, edge=212)
    hints = [
        tinct.Hint(row=195, col=300, color=(0.85, 0.1, 0.1)),  # red, dark band
        tinct.Hint(row=380, col=300, color=(0.1, 0.3, 0.9)),  # blue, light band
    ]
    out = tinct.Colorizer("tinct-base", device="cpu").colorize(gray, hints=hints)
    lab = color.rgb2lab(out)
    top, bottom = lab[20:180].reshape(-1, 3), lab[240:].reshape(-1, 3)
    assert np.median(top[:, 1]) > 20, "the dark band takes the red hint"
    assert np.median(bottom[:, 2]) < -15, "the light band takes the blue hint"
    assert np.median(bottom[:, 1]) < 30, "the red hint (a about 48) does not flood it"
