import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import color as skc

from tinct import bins as B

REFERENCE_B_RANGES = {
    -90: (50, 90), -80: (20, 90), -70: (0, 90), -60: (-20, 90), -50: (-30, 100),
    -40: (-40, 100), -30: (-50, 100), -20: (-50, 100), -10: (-60, 100), 0: (-70, 100),
    10: (-80, 90), 20: (-80, 90), 30: (-90, 90), 40: (-100, 90), 50: (-100, 80),
    60: (-110, 80), 70: (-110, 80), 80: (-110, 70), 90: (-110, 70), 100: (-90, 0),
}  # fmt: skip


def test_gamut_bins_exact_table():
    g = B.gamut_bins()
    assert g.shape == (313, 2)
    assert g[0].tolist() == [-90, 50] and g[120].tolist() == [0, 0] and g[312].tolist() == [100, 0]
    ref = [(a, b) for a, (lo, hi) in REFERENCE_B_RANGES.items() for b in range(lo, hi + 1, 10)]
    assert g.tolist() == [list(map(float, p)) for p in ref]
    for a, (lo, hi) in REFERENCE_B_RANGES.items():
        col = g[g[:, 0] == a, 1]
        assert col.min() == lo and col.max() == hi and len(col) == (hi - lo) // 10 + 1


def test_grid_bins_a_major_and_contains_gamut():
    g = B.grid_bins()
    assert g.shape == (529, 2)
    for a in range(-110, 111, 10):
        for b in (-110, 0, 110):
            assert g[((a + 110) // 10) * 23 + (b + 110) // 10].tolist() == [a, b]
    grid = {tuple(p) for p in g.tolist()}
    assert all(tuple(p) in grid for p in B.gamut_bins().tolist())


def test_gamut_bins_cover_srgb():
    v = np.linspace(0, 1, 24)
    rgb = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(-1, 1, 3)
    ab = torch.from_numpy(skc.rgb2lab(rgb)[..., 1:]).permute(2, 0, 1)[None].float()
    idx = B.encode_hard(ab, B.gamut_bins())
    nearest = B.gamut_bins()[idx[0, :, 0]]
    assert (nearest - ab[0, :, :, 0].T).abs().max() <= 15.0


def test_uniform_hue_chroma_bins():
    u = B.uniform_bins(50, -100, 100)
    assert u.shape == (50,) and u[0] == -98 and u[-1] == 98
    assert torch.allclose(u.diff(), torch.full((49,), 4.0))
    assert B.uniform_bins(20, -0.5, 0.5, dtype=torch.float64).sum().abs() < 1e-12
    h = B.hue_bins()
    assert h.shape == (32,) and h.min() > 0 and h.max() < 2 * math.pi
    c = B.chroma_bins(32, max_chroma=128)
    assert c[0] == 2 and c[-1] == 126
    with pytest.raises(ValueError):
        B.uniform_bins(0, 0, 1)
    with pytest.raises(ValueError):
        B.uniform_bins(3, 1, 1)


def test_encode_centres_to_themselves():
    g = B.gamut_bins()
    ab = g.T.reshape(1, 2, 313, 1)
    assert B.encode_hard(ab, g)[0, :, 0].tolist() == list(range(313))
    soft = B.encode_soft(ab, g, k=5, sigma=5.0)
    assert soft.shape == (1, 313, 313, 1)
    assert torch.allclose(soft.sum(1), torch.ones(1, 313, 1))
    assert (soft[0, :, :, 0].argmax(0) == torch.arange(313)).all()
    assert ((soft > 0).sum(1) <= 5).all()


def test_encode_shape_errors():
    with pytest.raises(ValueError):
        B.encode_hard(torch.zeros(1, 3, 2, 2), B.gamut_bins())
    with pytest.raises(ValueError):
        B.encode_soft(torch.zeros(2, 2, 2), B.gamut_bins())


@settings(max_examples=20, deadline=None)
@given(st.floats(-110, 110), st.floats(-110, 110), st.integers(1, 10))
def test_property_soft_encoding(a, b, k):
    g = B.gamut_bins(dtype=torch.float64)
    ab = torch.tensor([a, b], dtype=torch.float64).view(1, 2, 1, 1)
    s = B.encode_soft(ab, g, k=k)
    assert abs(s.sum().item() - 1) < 1e-9 and (s >= 0).all()
    assert s.argmax(1).item() == B.encode_hard(ab, g).item() or k > 1


def test_channel_encoding():
    cen = torch.stack([B.uniform_bins(50, -100, 100)] * 2)
    x = torch.tensor([[-99.0, 0.5], [97.0, 150.0]]).T.reshape(1, 2, 2, 1)
    hard = B.encode_hard_channels(x, cen)
    assert hard[0, :, :, 0].tolist() == [[0, 49], [25, 49]]
    soft = B.encode_soft_channels(x, cen, k=3, sigma=2.0)
    assert soft.shape == (1, 100, 2, 1)
    assert torch.allclose(soft.view(1, 2, 50, 2, 1).sum(2), torch.ones(1, 2, 2, 1))
    hue = B.hue_bins(8).view(1, 8)
    h = torch.tensor([6.2, 0.05]).view(1, 1, 2, 1)
    assert B.encode_hard_channels(h, hue, period=2 * math.pi)[0, 0, :, 0].tolist() == [7, 0]
    with pytest.raises(ValueError):
        B.encode_hard_channels(x, cen[:1])


def test_empirical_prior_and_rebalancing():
    g = B.gamut_bins()
    ab = torch.tensor([[0.0, 0.0]] * 6 + [[10.0, 0.0]] * 3 + [[-90.0, 50.0]])
    p = B.empirical_prior(ab, g)
    assert p.shape == (313,) and abs(p.sum().item() - 1) < 1e-12
    assert p[120] == 0.6 and p[0] == 0.1
    img = ab.T.reshape(1, 2, 10, 1)
    torch.testing.assert_close(B.empirical_prior(img, g, chunk=3), p)
    smooth = B.empirical_prior(ab, g, sigma=5.0)
    assert abs(smooth.sum().item() - 1) < 1e-9 and (smooth > 0).sum() > 3
    for lam in (0.5, 1.0, 0.1):
        w = B.rebalance_weights(p, lam)
        assert abs((p * w).sum().item() - 1) < 1e-9
        assert lam == 1.0 or w[0] > w[120]  # rarer bins weigh more
    torch.testing.assert_close(B.rebalance_weights(p, 1.0)[[0, 120]], torch.ones(2).double())
    with pytest.raises(ValueError):
        B.rebalance_weights(p, 0.0)
    with pytest.raises(ValueError):
        B.rebalance_weights(-p)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=5, max_size=40), st.floats(0.05, 1.0))
def test_property_rebalance_expectation_one(vals, lam):
    p = torch.tensor(vals, dtype=torch.float64)
    if p.sum() <= 1e-6:
        return
    w = B.rebalance_weights(p, lam)
    assert abs(((p / p.sum()) * w).sum().item() - 1) < 1e-9
    assert (w > 0).all()
