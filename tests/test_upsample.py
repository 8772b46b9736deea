import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinct.upsample import (
    AffineUpsampler,
    BilateralUpsampler,
    box_filter,
    guide_stats,
    guided_filter,
    resize,
    upsample_rows,
)


def test_box_filter_matches_brute_force():
    x = torch.rand(1, 2, 13, 17)
    r = 3
    out = box_filter(x, r)
    xn = x.numpy()
    for y, xx in [(0, 0), (6, 8), (12, 16), (2, 15)]:
        ref = xn[0, :, max(0, y - r) : y + r + 1, max(0, xx - r) : xx + r + 1].mean((1, 2))
        np.testing.assert_allclose(out[0, :, y, xx].numpy(), ref, rtol=1e-5)
    assert box_filter(x, 0) is x


def test_upsample_rows_equals_interpolate():
    x = torch.rand(1, 6, 9, 11)
    full = F.interpolate(x, size=(70, 50), mode="bilinear", align_corners=False)
    for rows in [(0, 70), (0, 13), (13, 41), (69, 70)]:
        torch.testing.assert_close(
            upsample_rows(x, (70, 50), rows), full[..., rows[0] : rows[1], :]
        )


def _edge_scene(n=256):
    """Luminance step at column n/2 + 3 (not aligned to the low-res grid), chroma follows it."""
    lum = torch.full((1, 1, n, n), 30.0)
    lum[..., n // 2 + 3 :] = 70.0
    ab = torch.zeros(1, 2, n, n)
    ab[:, 0, :, : n // 2 + 3] = 60.0
    ab[:, 1, :, n // 2 + 3 :] = -60.0
    return lum, ab


def test_guided_filter_smooths_flat_and_keeps_strong_edges():
    lum, ab = _edge_scene(64)
    noisy = ab + torch.randn_like(ab)
    out = guided_filter(noisy, guide_stats(lum / 100, 2), 1e-3)
    assert (out - ab).abs().mean() < (noisy - ab).abs().mean()
    assert out[0, 0, 10, 10] > 55 and out[0, 1, 10, 60] < -55


def test_bilateral_upsampling_keeps_colour_edges():
    lum, ab = _edge_scene()
    low = resize(ab, (16, 16))
    plain = resize(low, (256, 256))
    sharp = BilateralUpsampler(lum, (16, 16))(low)
    band = slice(256 // 2 - 24, 256 // 2 + 30)
    err_plain = (plain - ab)[..., band].abs().mean()
    err_sharp = (sharp - ab)[..., band].abs().mean()
    assert err_sharp < 0.4 * err_plain
    # constant colour stays constant
    flat = BilateralUpsampler(torch.rand(1, 1, 40, 40) * 100, (10, 10))(
        torch.full((1, 2, 10, 10), 7.0)
    )
    torch.testing.assert_close(flat, torch.full((1, 2, 40, 40), 7.0))


@pytest.mark.parametrize(("work", "factor"), [((24, 20), 2), ((12, 10), 4), ((48, 40), 1)])
def test_affine_upsampler_neutral_and_colour(work, factor):
    gray = torch.rand(1, 1, 96, 80)
    up = AffineUpsampler(gray, work, radius=1)
    neutral = up.gray_work.expand(1, 3, *work)
    assert up.factor == factor
    out = up.apply(up.fit(neutral), (0, 96))
    # a neutral result reproduces the full-resolution gray closely
    assert out.shape == (96, 80, 3)
    assert (out - gray[0, 0, :, :, None]).abs().max() < 1e-5
    tinted = torch.cat((up.gray_work, up.gray_work * 0.5, up.gray_work * 0.25), 1)
    out = up.apply(up.fit(tinted), (8, 51))
    assert out.shape == (43, 80, 3)
    ratio = out[..., 1].mean() / out[..., 0].mean()
    assert ratio == pytest.approx(0.5, abs=0.05)


def test_affine_identity_when_full_resolution():
    gray = torch.rand(2, 1, 20, 30)
    up = AffineUpsampler(gray, (20, 30))
    rgb = torch.rand(2, 3, 20, 30)
    torch.testing.assert_close(up.apply(up.fit(rgb), (5, 9), 1), rgb[1, :, 5:9].permute(1, 2, 0))


@pytest.mark.parametrize("shape", [(1, 3, 37, 50), (2, 1, 5, 7), (1, 1, 2, 9), (1, 2, 1, 1)])
@pytest.mark.parametrize("r", [0, 1, 2, 5])
def test_box_filter_matches_avg_pool_without_padding_counts(shape, r):
    """The shifted-sum box filter equals torch's border-clipped average pooling."""
    x = torch.rand(shape, generator=torch.Generator().manual_seed(r))
    ref = x
    ry, rx = min(r, shape[-2] - 1), min(r, shape[-1] - 1)
    if ry > 0:
        ref = F.avg_pool2d(ref, (2 * ry + 1, 1), 1, (ry, 0), count_include_pad=False)
    if rx > 0:
        ref = F.avg_pool2d(ref, (1, 2 * rx + 1), 1, (0, rx), count_include_pad=False)
    torch.testing.assert_close(box_filter(x, r), ref, rtol=1e-6, atol=1e-6)
