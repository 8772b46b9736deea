"""A flat or nearly flat input comes back gray, not painted (tinct.engine.contrast).

A uniform gray layer carries no information about colour; the network's prior on it
was a strong tint (mean CIELAB chroma about 23, three times a photo's).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tinct
from tinct import color
from tinct.engine import contrast
from tinct.engine import inputs as _in
from tinct.engine.colorizer import Colorizer
from tinct.engine.thread_warnings import collect_warnings

RNG = np.random.default_rng(0)
#: Mean chroma a neutral result may have (rounding of uint8 output).
NEUTRAL = 1.0


@pytest.fixture(scope="module")
def base():
    return Colorizer("tinct-base", device="cpu")


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean CIELAB chroma of ``(..., H, W, 3)`` uint8 or float ``[0, 1]`` RGB."""
    x = rgb.astype(np.float32) / (255.0 if rgb.dtype == np.uint8 else 1.0)
    lab = color.rgb_to_lab(torch.from_numpy(x.reshape(-1, *x.shape[-3:])).permute(0, 3, 1, 2))
    return float(lab[:, 1:].norm(dim=1).mean())


def _flat(value, dtype):
    return np.full((128, 128), value, dtype)


def _flicker(value, dtype, levels):
    return (value + RNG.integers(0, levels, (128, 128))).astype(dtype)


FLAT = {
    "float32 0.5": _flat(0.5, np.float32),
    "uint8 128": _flat(128, np.uint8),
    "uint16 128": _flat(128, np.uint16),
    "uint16 32768": _flat(32768, np.uint16),
    "float64 1000": _flat(1000.0, np.float64),
    "uint8 128 +- 1": _flicker(128, np.uint8, 2),
}


@pytest.mark.parametrize("name", list(FLAT))
@pytest.mark.parametrize("normalize", ["auto", "dtype", "percentile"])
def test_a_flat_or_nearly_flat_image_comes_back_neutral_and_is_warned(base, name, normalize):
    image = FLAT[name]
    with collect_warnings(_in.InputWarning) as caught:
        out = base.colorize(image, options=base.options.replace(normalize=normalize))
    assert mean_chroma(out) < NEUTRAL, name
    if normalize == "percentile" and name == "uint8 128 +- 1":
        return  # asked for: stretched to black and white, as a 0/1 mask is (not warned)
    assert any("nearly constant" in str(w.message) for w in caught), name


def test_a_flat_plane_of_a_stack_is_neutral_and_the_others_are_coloured(base):
    photo = np.asarray(Image.open(Path(tinct.__file__).parent / "data" / "chelsea.png")
                       .convert("L").resize((128, 96)))  # fmt: skip
    stack = np.stack([photo, np.full_like(photo, 128)])
    out = base.colorize(stack)
    assert mean_chroma(out[1]) < NEUTRAL
    assert mean_chroma(out[0]) > 3.0


def test_a_hint_still_colours_a_flat_image(base):
    out = base.colorize(_flat(128, np.uint8), [tinct.Hint(row=64, col=64, color=(200, 40, 40))])
    assert mean_chroma(out) > 10.0


def test_a_photo_is_unchanged(base, monkeypatch):
    photo = np.asarray(
        Image.open(Path(tinct.__file__).parent / "data" / "chelsea.png").convert("L")
    )
    for image in (photo, photo.astype(np.uint16) * 257, photo.astype(np.float32) / 255):
        after = base.colorize(image)
        assert not bool(base._cache[next(reversed(base._cache))].prepared.featureless.any())
        with monkeypatch.context() as m:
            m.setattr(contrast, "featureless_planes", lambda g: torch.zeros(len(g), dtype=bool))
            m.setattr(_in, "featureless_planes", contrast.featureless_planes)
            base.clear_cache()
            before = base.colorize(image)
        base.clear_cache()
        if image.dtype == np.uint8:
            np.testing.assert_array_equal(after, before)
        else:  # float output of two fresh runs differs in the 6th digit anyway
            np.testing.assert_allclose(after, before, rtol=0, atol=1e-5)
