"""Colour-space helpers of the pipeline (tinct.spaces)."""

from __future__ import annotations

import torch

from tinct import spaces
from tinct.color import rgb_to_lab


def test_fit_chroma_keeps_lightness_and_hue_where_clipping_would_not():
    gen = torch.Generator().manual_seed(0)
    lum = torch.rand(1, 1, 32, 48, generator=gen) * 100
    ab = (torch.rand(1, 2, 32, 48, generator=gen) - 0.5) * 220  # mostly out of gamut
    fitted = spaces.fit_chroma(lum, ab)
    back = rgb_to_lab(spaces.lab_to_rgb_fast(lum, fitted))
    assert (back[:, 0] - lum[:, 0]).abs().max() < 0.2  # the lightness stays
    clipped = rgb_to_lab(spaces.lab_to_rgb_fast(lum, ab))
    assert (clipped[:, 0] - lum[:, 0]).abs().max() > 10  # what clipping does instead
    # the same hue, a shorter chroma
    scale = fitted.norm(dim=1) / ab.norm(dim=1)
    assert (scale <= 1 + 1e-6).all()
    assert torch.allclose(fitted, ab * scale[:, None], atol=1e-4)


def test_fit_chroma_leaves_in_gamut_colours_alone():
    lum = torch.full((1, 1, 4, 4), 60.0)
    ab = torch.tensor([10.0, -20.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4).clone()
    assert torch.equal(spaces.fit_chroma(lum, ab), ab)
    lum[..., 0, 0] = 99.0  # near white: little chroma fits; the rest of the image untouched
    out = spaces.fit_chroma(lum, ab)
    assert out[..., 0, 0].norm() < ab[..., 0, 0].norm() and torch.equal(
        out[..., 1:, :], ab[..., 1:, :]
    )


def test_lab_to_rgb_in_gamut_is_the_fitted_colour_converted_once():
    gen = torch.Generator().manual_seed(1)
    lum = torch.rand(2, 1, 16, 24, generator=gen) * 100
    ab = (torch.rand(2, 2, 16, 24, generator=gen) - 0.5) * 220
    want = spaces.lab_to_rgb_fast(lum, spaces.fit_chroma(lum, ab))
    assert torch.allclose(spaces.lab_to_rgb_in_gamut(lum, ab), want, atol=1e-5)
    mid, small = lum * 0.6 + 20, ab * 0.05  # in gamut: the plain conversion
    assert torch.equal(spaces.lab_to_rgb_in_gamut(mid, small), spaces.lab_to_rgb_fast(mid, small))
