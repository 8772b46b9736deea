import threading

import pytest
import torch

from tinct import bins as B
from tinct import decode as D
from tinct import mrf as M
from tinct.cancel import Cancelled, scope


@pytest.fixture
def centres() -> torch.Tensor:
    return B.gamut_bins(dtype=torch.float64)


def noisy_field(centres, h=12, w=12, seed=0, flip=0.3):
    """Left half one colour, right half another, with random wrong bins; flat L per half."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.full((1, h, w), 120)
    idx[..., w // 2 :] = 200
    noise = torch.randint(0, 313, (1, h, w), generator=g)
    idx = torch.where(torch.rand(1, h, w, generator=g) < flip, noise, idx)
    logits = torch.nn.functional.one_hot(idx, 313).permute(0, 3, 1, 2).double() * 6.0
    lum = torch.full((1, 1, h, w), 30.0, dtype=torch.float64)
    lum[..., w // 2 :] = 70.0
    return logits, lum


def test_weight_zero_is_identity(centres):
    logits, lum = noisy_field(centres)
    assert M.smooth(logits, centres, lum, weight=0.0) is logits
    assert torch.equal(M.smooth(logits, centres, lum, weight=0.0), logits)
    assert M.smooth(logits, centres, lum, weight=1.0, iterations=0) is logits


def test_smoothing_lowers_pairwise_energy_and_stays_distribution(centres):
    logits, lum = noisy_field(centres)
    out = M.smooth(logits, centres, lum, weight=3.0, iterations=5)
    assert out.shape == logits.shape
    probs = out.exp()
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 12, 12, dtype=torch.float64))
    before = M.pairwise_energy(torch.softmax(logits, 1), centres, lum)
    after = M.pairwise_energy(probs, centres, lum)
    assert after < before
    # the majority colour wins back most noisy pixels
    truth = torch.full((1, 12, 12), 120)
    truth[..., 6:] = 200
    acc_before = (logits.argmax(1) == truth).double().mean()
    acc_after = (out.argmax(1) == truth).double().mean()
    assert acc_after > acc_before


def test_edges_stop_bleeding(centres):
    logits, lum = noisy_field(centres, flip=0.0)
    strong = M.smooth(logits, centres, lum, weight=3.0, iterations=8, edge_sensitivity=1e4)
    weak = M.smooth(logits, centres, lum, weight=3.0, iterations=8, edge_sensitivity=0.0)
    border = (slice(None), slice(None), slice(None), 5)
    d_strong = (D.mean(strong, centres)[border] - centres[120].view(1, 2, 1)).norm(dim=1).max()
    d_weak = (D.mean(weak, centres)[border] - centres[120].view(1, 2, 1)).norm(dim=1).max()
    assert d_strong < d_weak


def test_lum_resized_and_errors(centres):
    logits, _ = noisy_field(centres, h=8, w=8)
    lum = torch.rand(1, 1, 32, 32, dtype=torch.float64) * 100
    assert M.smooth(logits, centres, lum, weight=1.0, iterations=2).shape == logits.shape
    with pytest.raises(ValueError):
        M.smooth(logits, centres[:10], lum, weight=1.0)
    with pytest.raises(ValueError):
        M.smooth(logits, centres, lum, weight=-1.0)
    with pytest.raises(ValueError):
        M.smooth(logits, centres, torch.zeros(2, 1, 8, 8), weight=1.0)


def test_factored_compatibility_matches_dense(centres):
    q = torch.rand(2, 313, 3, 5, dtype=torch.float64)
    op = M._Compat(centres, None, q)
    assert op.dense is None  # the ab grid is factored
    dense = M.compatibility(centres).double()
    ref = torch.einsum("qk,bkhw->bqhw", dense, q)
    torch.testing.assert_close(op(q), ref)
    k = M.compatibility(centres)
    assert k.shape == (313, 313) and torch.allclose(k.diagonal(), torch.ones(313, dtype=k.dtype))
    assert torch.allclose(k, k.T)


def test_gradcheck_smooth():
    cen = B.grid_bins(dtype=torch.float64)[::53][:6]
    logits = torch.randn(1, 6, 3, 3, dtype=torch.float64, requires_grad=True)
    lum = torch.rand(1, 1, 3, 3, dtype=torch.float64) * 100
    fn = lambda x: M.smooth(x, cen, lum, weight=0.7, iterations=2)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (logits,))


def test_smooth_channels():
    cen = torch.stack([B.uniform_bins(25, -110, 110, dtype=torch.float64)] * 2)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 50, 10, 10, generator=g, dtype=torch.float64) * 2
    lum = torch.full((1, 1, 10, 10), 50.0, dtype=torch.float64)
    assert M.smooth_channels(logits, cen, lum, weight=0.0) is logits
    out = M.smooth_channels(logits, cen, lum, weight=2.0, iterations=5)
    probs = out.exp().view(1, 2, 25, 10, 10)
    torch.testing.assert_close(probs.sum(2), torch.ones(1, 2, 10, 10, dtype=torch.float64))
    for j in range(2):
        sl = slice(25 * j, 25 * (j + 1))
        before = M.pairwise_energy(torch.softmax(logits[:, sl], 1), cen[j], lum)
        after = M.pairwise_energy(out[:, sl].exp(), cen[j], lum)
        assert after < before
    with pytest.raises(ValueError):
        M.smooth_channels(logits[:, :49], cen, lum, weight=1.0)


def _set_after(seconds):
    ev = threading.Event()
    threading.Timer(seconds, ev.set).start()
    return ev


@pytest.mark.timeout(60)  # a million sweeps, uncancelled, take hours
def test_cancel_stops_a_long_smoothing(centres):
    logits = torch.randn(1, 313, 48, 48)
    lum = torch.rand(1, 1, 48, 48) * 100
    ev = _set_after(0.3)
    with pytest.raises(Cancelled):
        M.smooth(logits, centres.float(), lum, weight=1.0, iterations=10**6, cancel=ev)
    with pytest.raises(Cancelled), scope(ev):  # the flag of the enclosing scope
        M.smooth_channels(torch.randn(1, 8, 4, 4), torch.rand(2, 4), lum, weight=1.0)
    assert M.smooth(logits[..., :4, :4], centres.float(), lum, weight=1.0).isfinite().all()
