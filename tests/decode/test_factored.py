"""tinct.decode.factored: decoders of per-channel and hue/chroma (Larsson) bins."""

import math

import pytest
import torch

from decode_helpers import one_hot_logits
from tinct import bins as B
from tinct import decode as D


@pytest.mark.parametrize("method", sorted(D.DECODERS))
def test_decode_channels(method):
    cen = torch.stack([B.uniform_bins(50, -100, 100, dtype=torch.float64)] * 2)
    idx = torch.tensor([[[3, 49]]])
    logits = torch.cat([one_hot_logits(idx, 50, 200.0), one_hot_logits(idx.flip(-1), 50, 200.0)], 1)
    out = D.decode_channels(logits, cen, method, seed=0)
    assert out.shape == (1, 2, 1, 2)
    assert out[0, :, 0].tolist() == [[-86.0, 98.0], [98.0, -86.0]]


def test_decode_channels_errors():
    cen = torch.zeros(2, 50)
    with pytest.raises(ValueError):
        D.decode_channels(torch.zeros(1, 99, 2, 2), cen)
    with pytest.raises(ValueError, match="valid names"):
        D.decode_channels(torch.zeros(1, 100, 2, 2), cen, "nope")


def test_hue_chroma_larsson():
    hue, chroma = B.hue_bins(32, dtype=torch.float64), B.chroma_bins(32, dtype=torch.float64)
    hl = torch.zeros(1, 32, 1, 2, dtype=torch.float64)
    hl[0, 4, 0, 0] = 100.0  # confident hue -> full chroma
    cl = torch.zeros(1, 32, 1, 2, dtype=torch.float64)
    cl[0, 10] = 100.0
    ab = D.decode_hue_chroma(torch.cat([hl, cl], 1), hue, chroma)
    c10, h4 = chroma[10].item(), hue[4].item()
    torch.testing.assert_close(
        ab[0, :, 0, 0], torch.tensor([c10 * math.cos(h4), c10 * math.sin(h4)], dtype=torch.float64)
    )
    # pixel 1: uniform hue -> resultant ~0 -> chroma faded to ~0
    assert ab[0, :, 0, 1].norm() < 1e-6
    for m in D.DECODERS:
        out = D.decode_hue_chroma(torch.cat([hl, cl], 1), hue, chroma, m, seed=0)
        assert out.shape == (1, 2, 1, 2)
        torch.testing.assert_close(out[0, :, 0, 0], ab[0, :, 0, 0], atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        D.decode_hue_chroma(torch.zeros(1, 63, 1, 1), hue, chroma)
