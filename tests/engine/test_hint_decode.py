"""The hints' side of the fusion decoded like a distribution (tinct.engine.hint_decode)."""

import pytest
import torch

from tinct.engine import hint_decode
from tinct.engine.hint_decode import HINT_TEMPERATURE, hint_shift

RED, BLUE = (60.0, 40.0), (-20.0, -60.0)


def two_hints(share: float = 0.6, size: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A mix where every pixel gets ``share`` of the red hint and the rest of the blue one."""
    weights = torch.empty(1, 2, size, size)
    weights[:, 0], weights[:, 1] = share, 1.0 - share
    colours = torch.tensor([[RED, BLUE]])
    return weights, colours, torch.full((1, 1, size, size), 50.0)


def test_hints_are_decoded_colder_than_the_network_so_the_stronger_hint_wins_more():
    mix = two_hints(0.6)
    plain = 0.6 * torch.tensor(RED) + 0.4 * torch.tensor(BLUE)
    shifted = plain.view(1, 2, 1, 1) + hint_shift(mix, "coherent", 1.0)
    # the annealed mean at T = 0.7: weights 0.6^(1/0.7), 0.4^(1/0.7), renormalised
    w = torch.tensor([0.6, 0.4]) ** (1 / HINT_TEMPERATURE)
    expected = (w / w.sum()) @ torch.tensor([RED, BLUE])
    assert 0 < HINT_TEMPERATURE < 1
    assert torch.allclose(shifted[0, :, 3, 3], expected, atol=1e-3)
    assert (shifted[0, :, 3, 3] - torch.tensor(RED)).norm() < (plain - torch.tensor(RED)).norm()


def test_the_decoding_temperature_scales_the_hints_temperature():
    mix = two_hints(0.6)
    colder = hint_shift(mix, "annealed_mean", 0.5)[0, 0, 0, 0]
    default = hint_shift(mix, "annealed_mean", 1.0)[0, 0, 0, 0]
    assert colder > default > 0  # towards the red hint's a = 60


@pytest.mark.parametrize("decoder", ["ab", "mean"])
def test_no_shift_without_a_distribution_decoder(decoder):
    assert torch.count_nonzero(hint_shift(two_hints(), decoder, 0.5)) == 0


def test_at_factor_one_and_temperature_one_it_is_plain_propagation(monkeypatch):
    monkeypatch.setattr(hint_decode, "HINT_TEMPERATURE", 1.0)
    assert torch.count_nonzero(hint_shift(two_hints(), "coherent", 1.0)) == 0


def test_where_the_network_disagrees_with_the_hints_they_are_plain_propagation():
    mix = two_hints(0.6)
    assert torch.count_nonzero(hint_shift(mix, "coherent", 1.0, agreement=torch.zeros(1))) == 0
    half = hint_shift(mix, "coherent", 1.0, agreement=torch.tensor([0.5]))[0, :, 0, 0]
    w = torch.tensor([0.6, 0.4]) ** (1 / (1 - (1 - HINT_TEMPERATURE) * 0.5))
    expected = (w / w.sum()) @ torch.tensor([RED, BLUE]) - (
        0.6 * torch.tensor(RED) + 0.4 * torch.tensor(BLUE)
    )
    assert torch.allclose(half, expected, atol=1e-3)
    full = hint_shift(mix, "coherent", 1.0, agreement=torch.ones(1))
    assert torch.allclose(full, hint_shift(mix, "coherent", 1.0))


def test_the_engine_decodes_a_photos_hints_colder(monkeypatch):
    """On the bundled photo the network agrees with two hints: the factor reaches the output."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    import tinct
    from tinct.engine.colorizer import Colorizer

    photo = Path(tinct.__file__).parent / "data" / "chelsea.png"
    gray = np.asarray(Image.open(photo).convert("L").resize((128, 96)), dtype=np.float32) / 255
    hints = [
        tinct.Hint(row=30, col=40, ab=(12.0, 30.0)),
        tinct.Hint(row=60, col=90, ab=(5.0, 15.0)),
    ]
    c = Colorizer("tinct-base", device="cpu")
    colder = c.colorize(gray, hints)
    entry = next(iter(c._cache.values()))  # the hinted entry (the plain one is cached too)
    agreement = [
        float(e.net.agreement[0]) for e in c._cache.values() if e.net.agreement is not None
    ]
    assert agreement and 0.0 < agreement[0] <= 1.0, entry
    monkeypatch.setattr(hint_decode, "HINT_TEMPERATURE", 1.0)
    plain = c.colorize(gray, hints)  # a re-decode of the cached network output
    assert np.abs(colder.astype(float) - plain.astype(float)).max() > 0
