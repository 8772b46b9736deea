"""tinct.engine.tiled: the network pass over overlapping tiles matches the untiled pass."""

import numpy as np
import pytest

from engine_helpers import gradient_image
from tinct.engine.options import ColorizeOptions


def test_tiled_matches_untiled(small):
    img = gradient_image(192, 256)
    untiled = small.colorize(img, options=ColorizeOptions(net_size=128, tile=0)).astype(float)
    before = small.stats.forward_calls
    tiled = small.colorize(img, options=ColorizeOptions(net_size=128, tile=64, tile_overlap=32))
    assert small.stats.forward_calls - before > 4  # global pass + several tiles
    assert np.abs(tiled.astype(float) - untiled).mean() <= 2.0


def test_tiling_runs_for_regression_models(tiny_reg):
    img = gradient_image(100, 140)
    a = tiny_reg.colorize(img, options=ColorizeOptions(net_size=128, tile=0)).astype(float)
    b = tiny_reg.colorize(img, options=ColorizeOptions(net_size=128, tile=48)).astype(float)
    assert np.abs(a - b).mean() <= 2.0


@pytest.mark.parametrize("which", ["tiny", "tiny_reg"])
def test_tile_blend_alone_has_no_seams(which, request, monkeypatch):
    """Without the global pass, tiles of a local model must reproduce the untiled result."""
    from tinct.engine import tiled as tiled_pass

    monkeypatch.setattr(tiled_pass, "GLOBAL_BLEND", 0.0)
    c = request.getfixturevalue(which)
    rng = np.random.default_rng(3)
    img = (rng.random((24, 32)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)  # 192x256
    untiled = c.colorize(img, options=ColorizeOptions(net_size=256, tile=0)).astype(float)
    tiled = c.colorize(img, options=ColorizeOptions(net_size=256, tile=96, tile_overlap=32))
    diff = np.abs(tiled.astype(float) - untiled)
    assert untiled.std() > 20  # a colourful, structured result
    assert diff.mean() <= 1.0 and np.percentile(diff, 99.9) <= 12
