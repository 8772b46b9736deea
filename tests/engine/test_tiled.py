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


def test_a_tiling_of_too_many_tiles_is_refused_before_any_pass():
    """``levin`` (stride 1, 384 network pixels) in tiles of 16 overlapping by 15 would be
    136 161 passes (51 s here; hours on a larger network input): refused up front."""
    from tinct.engine.colorizer import Colorizer
    from tinct.engine.hints import Hint
    from tinct.engine.optionspec import OptionError
    from tinct.engine.tiled import MAX_TILES

    levin = Colorizer("levin", device="cpu")
    img, hints = gradient_image(128, 128), [Hint(10, 10, color=(255, 0, 0))]
    with pytest.raises(OptionError) as err:
        levin.colorize(img, hints=hints, options=ColorizeOptions(tile=16, tile_overlap=15))
    assert levin.stats.forward_calls == 0  # nothing ran
    assert err.value.field == "tile"
    assert err.value.message_for("cli") == (
        "--tile: cuts this image into 136161 tiles (369 x 369 at --net-size 384), "
        f"more than the {MAX_TILES} allowed: choose a larger --tile, a smaller --tile-overlap "
        "or a smaller --net-size, got 16"
    )  # each front end names the other options that change the count its own way
    assert "(369 x 369 at net_size 384)" in str(err.value)
    assert "a smaller tile overlap or a smaller network size" in err.value.message_for("gui")


def test_the_tile_bound_counts_the_tiles_the_pass_runs(small, monkeypatch):
    """At the bound a tiling runs; one tile fewer allowed, the same tiling is refused."""
    from tinct.engine import tiled
    from tinct.engine.optionspec import OptionError

    img = gradient_image(128, 128)
    opts = ColorizeOptions(net_size=128, tile=32, tile_overlap=16)  # stride 32: 4 x 4 tiles
    before = small.stats.forward_calls
    small.colorize(img, options=opts)
    assert small.stats.forward_calls - before == 1 + 16  # the global pass and the tiles
    monkeypatch.setattr(tiled, "MAX_TILES", 15)
    with pytest.raises(OptionError, match=r"16 tiles \(4 x 4 at net_size 128\)"):
        small.colorize(img, options=opts)
    small.colorize(img, options=opts.replace(tile=0))  # one pass: no tiles to count
