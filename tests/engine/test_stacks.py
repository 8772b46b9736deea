"""tinct.engine.stacks: a stack colorized a few planes a call gives what one call gives."""

from __future__ import annotations

import numpy as np
import pytest

import tinct
from tinct.engine import stacks, temporal
from tinct.engine.inputs import InputWarning
from tinct.engine.stacks import colorize_stack
from tinct.engine.thread_warnings import collect_warnings


@pytest.fixture(scope="module")
def colorizer(weights):
    return tinct.Colorizer(weights, device="cpu", num_threads=1)


def _stack(dtype: str) -> np.ndarray:
    """Seven 24 x 32 planes that vary, one of them blank (flat), as uint8 or float counts."""
    yy, xx = np.mgrid[0:24, 0:32]
    planes = [np.sin(0.3 * yy + k) * np.cos(0.2 * xx - k) for k in range(7)]
    planes[4] = np.zeros_like(planes[4])
    arr = np.stack(planes)
    if dtype == "uint8":
        return np.clip(127 + 100 * arr, 0, 255).astype(np.uint8)
    arr = (1000 + 800 * arr).astype(np.float32)
    arr[2, :3, :3] = np.nan  # blank pixels, noted once for the stack
    return arr


def _spy(colorizer, monkeypatch) -> list[int]:
    """The planes of every ``colorizer.colorize`` call, recorded."""
    planes: list[int] = []
    call = colorizer.colorize

    def colorize(image, *args, **kwargs):
        planes.append(int(np.prod(np.asarray(image).shape[:-2])))
        return call(image, *args, **kwargs)

    monkeypatch.setattr(colorizer, "colorize", colorize)
    return planes


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_a_stack_in_pieces_is_the_stack_in_one_call(colorizer, monkeypatch, dtype):
    arr = _stack(dtype)
    with collect_warnings(InputWarning) as caught:
        whole = colorizer.colorize(arr)
    once = [str(w.message) for w in caught]
    assert any("planes are nearly constant" in n or "plane 4" in n for n in once)
    monkeypatch.setattr(stacks, "PLANES_PER_CALL", 3)
    planes = _spy(colorizer, monkeypatch)
    with collect_warnings(InputWarning) as caught:
        pieces = colorize_stack(colorizer, arr)
    assert planes == [3, 3, 1]  # never the whole stack: its network output grows with it
    assert pieces.shape == whole.shape and pieces.dtype == whole.dtype
    np.testing.assert_allclose(pieces.astype(np.float32), whole.astype(np.float32), atol=1e-5)
    assert [str(w.message) for w in caught] == once  # the stack's notes, not each piece's


def test_a_small_stack_or_an_image_is_one_call(colorizer, monkeypatch):
    planes = _spy(colorizer, monkeypatch)
    colorize_stack(colorizer, _stack("uint8")[:3])
    colorize_stack(colorizer, _stack("uint8")[0])
    assert planes == [3, 1]


def test_a_temporal_sequence_is_fed_in_pieces(colorizer, monkeypatch):
    arr = _stack("uint8")
    seen: list[int] = []
    feed = temporal.TemporalRun.feed

    def spy(self, planes):
        seen.append(len(planes))
        return feed(self, planes)

    monkeypatch.setattr(temporal.TemporalRun, "feed", spy)
    with collect_warnings(InputWarning) as caught:
        whole = colorizer.colorize(arr, temporal=True)
    once = [str(w.message) for w in caught]
    monkeypatch.setattr(temporal, "FEED_PLANES", 3)
    with collect_warnings(InputWarning) as caught:
        pieces = colorize_stack(colorizer, arr, options=colorizer.options.replace(temporal=True))
    assert seen == [7, 3, 3, 1]  # the sequence fed whole at first, then in pieces
    assert np.abs(pieces.astype(int) - whole.astype(int)).max() <= 2  # as chunked video feeds
    assert [str(w.message) for w in caught] == once


def test_a_larger_network_gets_fewer_planes_a_call(colorizer, monkeypatch):
    # a plane's network output grows with net_size squared: 16 planes at 2048 asked ~20 GB
    assert [stacks.planes_per_call(n) for n in (None, 128, 256, 512, 1024, 4096)] == [
        16, 16, 16, 4, 1, 1,
    ]  # fmt: skip
    planes = _spy(colorizer, monkeypatch)
    colorize_stack(colorizer, _stack("uint8")[:6], options=colorizer.options.replace(net_size=512))
    assert planes == [4, 2]
