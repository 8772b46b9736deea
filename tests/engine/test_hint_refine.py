"""The refiner on the engine's fused hint colour (tinct.engine.hint_refine)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tinct
from tinct.engine.colorizer import Colorizer
from tinct.engine.hint_refine import hint_cues
from tinct.models.hint_refiner import HintRefiner
from tinct.models.tinct_base import TinctUNet

HINTS = [tinct.Hint(row=30, col=40, ab=(12.0, 30.0)), tinct.Hint(row=60, col=90, ab=(5.0, 15.0))]


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    photo = Path(tinct.__file__).parent / "data" / "chelsea.png"
    img = Image.open(photo).convert("L").resize((128, 96))
    return np.asarray(img, dtype=np.float32) / 255


def _shifting_head() -> HintRefiner:
    """A refiner that adds +20 to a everywhere (its correction's bias)."""
    head = HintRefiner()
    with torch.no_grad():
        head.net[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 2.0, 0.0]))
    return head.eval()


def _colorize(gray, monkeypatch, head, hints=HINTS, **opts) -> np.ndarray:
    monkeypatch.setattr(TinctUNet, "refiner", lambda self: head)
    c = Colorizer("tinct-base", device="cpu")
    # with a head the model keeps its decoder features for it (the model is shared: restored)
    monkeypatch.setattr(c.model, "refine_head", head)
    c.clear_cache()
    return np.asarray(c.colorize(gray, hints, **opts)).astype(np.float64)


def _a_channel(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(np.clip(rgb[..., :3], 0, 1))[..., 1]  # the float output is in [0, 1]


def test_a_refiner_changes_the_hinted_colour_but_not_at_the_hints(gray, monkeypatch):
    plain = _colorize(gray, monkeypatch, None)
    refined = _colorize(gray, monkeypatch, _shifting_head())
    shift = _a_channel(refined) - _a_channel(plain)
    assert np.median(shift) > 10  # about +20 a away from the hints
    for h in HINTS:  # the hint patches' pull is applied after the refiner
        assert abs(shift[int(h.row), int(h.col)]) < 5  # (the render's upsampling blurs it)


def test_no_refiner_without_hints_or_with_local_hints(gray, monkeypatch):
    head = _shifting_head()
    assert np.array_equal(
        _colorize(gray, monkeypatch, None, hints=[]), _colorize(gray, monkeypatch, head, hints=[])
    )
    assert np.array_equal(
        _colorize(gray, monkeypatch, None, local_hints=True),
        _colorize(gray, monkeypatch, head, local_hints=True),
    )


def test_the_cues_mark_the_hints_and_their_distance(gray, monkeypatch):
    monkeypatch.setattr(TinctUNet, "refiner", lambda self: _shifting_head())
    c = Colorizer("tinct-base", device="cpu")
    monkeypatch.setattr(c.model, "refine_head", _shifting_head())
    c.colorize(gray, HINTS)
    net = next(e.net for e in c._cache.values() if e.net.patches)
    assert net.refiner is not None and net.fusion.features is not None
    cues = hint_cues(net, tuple(net.fusion.gate.shape[-2:]))
    assert cues.shape == (1, 6, *net.fusion.gate.shape[-2:])
    gate, lum, cover, dist, agree, count = cues[0]
    assert float(gate.min()) >= 0 and float(gate.max()) <= 1
    assert float(cover.max()) == 1.0 and float(dist[cover == 1].max()) == 0.0
    assert float(dist.max()) > 0.5  # log1p(distance) / 4 grows away from the hints
    assert torch.allclose(agree, net.agreement.view(1, 1).expand_as(agree))
    assert torch.allclose(count, torch.full_like(count, float(np.log(2) / 4)))
    assert 0 < float(lum.mean()) < 1


def test_the_shipped_tinct_base_refines_its_hinted_colour(gray, monkeypatch):
    c = Colorizer("tinct-base", device="cpu")
    assert c.model.refiner() is not None  # trained on this very trunk
    c.clear_cache()
    refined = np.asarray(c.colorize(gray, HINTS)).astype(np.float64)
    monkeypatch.setattr(TinctUNet, "refiner", lambda self: None)
    c.clear_cache()
    plain = np.asarray(c.colorize(gray, HINTS)).astype(np.float64)
    diff = np.abs(refined - plain)
    assert 0 < diff.mean() < 0.05  # a finishing touch, not a repaint
