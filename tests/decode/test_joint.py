"""tinct.decode.joint: decoders of one distribution over 2-D bin centres (mean, mode, ...)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from decode_helpers import one_hot_logits
from tinct import bins as B
from tinct import decode as D


@pytest.fixture
def centres() -> torch.Tensor:
    return B.gamut_bins(dtype=torch.float64)


@pytest.mark.parametrize("method", sorted(D.DECODERS))
def test_one_hot_decodes_to_centre(method, centres):
    idx = torch.tensor([[[0, 120], [312, 7]]])
    logits = one_hot_logits(idx, 313, scale=200.0)
    out = D.decode(logits, centres, method, temperature=0.38, seed=0)
    assert out.shape == (1, 2, 2, 2)
    torch.testing.assert_close(out, centres[idx].permute(0, 3, 1, 2), atol=1e-6, rtol=0)


def test_log_probs_and_logits_agree(centres):
    torch.manual_seed(0)
    logits = torch.randn(2, 313, 3, 4, dtype=torch.float64)
    logp = torch.log_softmax(logits, 1)
    for m in D.DECODERS:
        torch.testing.assert_close(
            D.decode(logits, centres, m, seed=1), D.decode(logp, centres, m, seed=1)
        )
    probs = logp.exp()
    torch.testing.assert_close(
        D.mean(D.probabilities_to_logits(probs), centres), D.mean(logits, centres)
    )


def test_annealed_mean_limits(centres):
    torch.manual_seed(1)
    logits = torch.randn(2, 313, 4, 4, dtype=torch.float64) * 3
    torch.testing.assert_close(D.annealed_mean(logits, centres, 1.0), D.mean(logits, centres))
    torch.testing.assert_close(D.annealed_mean(logits, centres, 1e-4), D.mode(logits, centres))
    manual = torch.einsum("bqhw,qd->bdhw", torch.softmax(logits / 0.38, 1), centres)
    torch.testing.assert_close(D.decode(logits, centres), manual)


def test_annealed_mean_more_saturated_than_mean(centres):
    torch.manual_seed(2)
    logits = torch.randn(1, 313, 8, 8, dtype=torch.float64) * 2
    chroma = lambda ab: ab.norm(dim=1).mean()  # noqa: E731
    assert chroma(D.annealed_mean(logits, centres, 0.38)) > chroma(D.mean(logits, centres))


def test_median_is_marginal_median():
    cen = torch.tensor([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [20.0, 10.0]], dtype=torch.float64)
    p = torch.tensor([0.3, 0.15, 0.15, 0.4], dtype=torch.float64).view(1, 4, 1, 1)
    out = D.median(p.log(), cen)  # a: cdf 0.3, 0.6 -> 10; b: cdf 0.45, 1.0 -> 10
    assert out.flatten().tolist() == [10.0, 10.0]
    q = torch.tensor([0.6, 0.1, 0.1, 0.2], dtype=torch.float64).view(1, 4, 1, 1)
    assert D.median(q.log(), cen).flatten().tolist() == [0.0, 0.0]


def test_sample_is_seeded_and_follows_distribution(centres):
    torch.manual_seed(3)
    logits = torch.randn(1, 313, 16, 16, dtype=torch.float64)
    a = D.decode(logits, centres, "sample", temperature=1.0, seed=42)
    b = D.sample(logits, centres, seed=42)
    c = D.sample(logits, centres, generator=torch.Generator().manual_seed(42))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(b, c)
    assert not torch.equal(a, D.sample(logits, centres, seed=43))
    on_grid = (a.permute(0, 2, 3, 1).reshape(-1, 1, 2) == centres[None]).all(-1).any(-1)
    assert on_grid.all()
    two = torch.full((1, 2, 1, 1), 0.0, dtype=torch.float64)
    draws = torch.stack([D.sample(two.expand(1, 2, 50, 50), centres[:2], seed=s) for s in range(4)])
    frac = (draws[:, :, 1] == centres[0, 1]).double().mean()
    assert 0.45 < frac < 0.55


def test_decode_errors(centres):
    logits = torch.zeros(1, 313, 2, 2)
    with pytest.raises(
        ValueError, match="valid names: annealed_mean, coherent, mean, median, mode, sample"
    ):
        D.decode(logits, centres, "bogus")
    assert D.decode(logits, centres, "Annealed_Mean").shape == (1, 2, 2, 2)
    with pytest.raises(ValueError):
        D.decode(torch.zeros(1, 312, 2, 2), centres)
    with pytest.raises(ValueError):
        D.annealed_mean(logits, centres, 0.0)
    with pytest.raises(ValueError):
        D.mean(torch.zeros(313, 2, 2), centres)


def test_gradcheck_annealed_mean(centres):
    logits = torch.randn(1, 313, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: D.annealed_mean(x, centres, 0.38), (logits,))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 312), st.floats(0.05, 1.0))
def test_property_decoded_within_hull(i, t):
    g = torch.Generator().manual_seed(i)
    logits = torch.randn(1, 313, 2, 2, generator=g, dtype=torch.float64) * 4
    cen = B.gamut_bins(dtype=torch.float64)
    out = D.annealed_mean(logits, cen, t)
    assert (out[:, 0] >= -90 - 1e-9).all() and (out[:, 0] <= 100 + 1e-9).all()
    assert (out[:, 1] >= -110 - 1e-9).all() and (out[:, 1] <= 100 + 1e-9).all()


def _two_modes(centres, hues_deg, weights, chroma=40.0):
    """Logits of a distribution split between bins nearest the given hues."""
    import math

    logits = torch.full((1, 313, 1, 1), -30.0)
    for deg, w in zip(hues_deg, weights, strict=True):
        target = torch.tensor(
            [chroma * math.cos(math.radians(deg)), chroma * math.sin(math.radians(deg))]
        )
        q = int((centres - target).norm(dim=1).argmin())
        logits[0, q] = math.log(w)
    return logits


def test_coherent_mean_fades_split_hues_and_keeps_one_hue(centres):
    one = _two_modes(centres, [0.0], [1.0])
    split = _two_modes(centres, [0.0, 180.0], [0.5, 0.5])  # red vs green-cyan: mean is gray-ish
    lilac = _two_modes(centres, [-90.0, 30.0], [0.5, 0.5])  # blue + warm: mean is a third hue
    assert D.coherence(one, centres).item() == pytest.approx(1.0, abs=1e-4)
    assert D.coherence(split, centres).item() < 0.05
    keep = D.coherent_mean(one, centres)
    assert torch.allclose(keep, D.mean(one, centres), atol=1e-3)  # a confident colour is kept
    assert D.coherent_mean(lilac, centres).norm() < 1e-3  # R = 0.5: no invented third hue
    assert D.mean(lilac, centres).norm() > 15.0  # whereas the plain mean paints one


def test_coherent_mean_with_fallback_only_adds_agreeing_colour(centres):
    red = _two_modes(centres, [0.0], [1.0])
    fallback = torch.tensor([10.0, 0.0]).reshape(1, 2, 1, 1).expand(1, 2, 4, 4)
    out = D.coherent_mean(red, centres, fallback=fallback)
    assert out.shape == (1, 2, 4, 4)  # the fallback's grid
    assert (out[:, 0] > 10.5).all()  # more of the agreed hue
    opposite = -fallback
    out = D.coherent_mean(red, centres, fallback=opposite)
    assert torch.allclose(out, opposite)  # disagreeing distribution adds nothing
    with pytest.raises(ValueError):
        D.coherent_mean(red, centres, floor=1.0)


def test_small_temperature_gives_the_mode_not_nan():
    """(logits - max) / T: a tiny temperature never overflows to inf - inf = NaN."""
    from tinct.decode.joint import annealed_mean, mode

    centres = torch.tensor([[0.0, 0.0], [40.0, 10.0], [-20.0, 30.0]])
    logits = torch.tensor([1.0, 3.0, 2.5]).view(1, 3, 1, 1).expand(1, 3, 2, 2) * 50
    for t in (1e-3, 1e-30, 1e-39):
        out = annealed_mean(logits, centres, temperature=t)
        assert torch.isfinite(out).all()
        assert torch.allclose(out, mode(logits, centres))
