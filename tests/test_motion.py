import numpy as np
import pytest
import torch

from tinct import motion as M


def texture(h: int = 96, w: int = 128, seed: int = 0) -> torch.Tensor:
    """A smooth random texture in [0, 1], (1, 1, h, w), larger than needed for crops."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, h // 4, w // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return x.clamp(0, 1)


def crop(x: torch.Tensor, y0: int, x0: int, h: int = 64, w: int = 80) -> torch.Tensor:
    return x[..., y0 : y0 + h, x0 : x0 + w].contiguous()


@pytest.mark.parametrize("dy,dx", [(0, 5), (-3, 2), (7, -6)])
def test_phase_correlation_finds_the_translation(dy, dx):
    big = texture()
    prev, cur = crop(big, 16, 16), crop(big, 16 + dy, 16 + dx)
    shift = M.phase_correlation(prev, cur)[0]
    # cur(y, x) = prev(y + dy, x + dx)
    assert shift.tolist() == pytest.approx([dy, dx], abs=0.3)


def test_estimate_motion_on_a_noisy_pan():
    big = texture()
    g = torch.Generator().manual_seed(1)
    prev = crop(big, 16, 16) + 0.012 * torch.randn(1, 1, 64, 80, generator=g)
    cur = crop(big, 16, 24) + 0.012 * torch.randn(1, 1, 64, 80, generator=g)
    m = M.estimate_motion(prev, cur)
    inner = m.flow[..., 4:-4, 4:-12]
    assert inner[0, 0].mean().item() == pytest.approx(0.0, abs=0.2)
    assert inner[0, 1].mean().item() == pytest.approx(8.0, abs=0.2)
    assert not bool(m.cut[0])
    # content that entered from the right was not in the previous plane
    assert m.confidence[..., :, -4:].mean() < 0.2
    assert m.confidence[..., 8:-8, 8:-16].mean() > 0.9


def test_estimate_motion_follows_a_zoom():
    big = texture(160, 160, seed=3)
    prev = torch.nn.functional.interpolate(
        crop(big, 20, 20, 120, 120), size=(96, 96), mode="bilinear", align_corners=True
    )
    cur = torch.nn.functional.interpolate(
        crop(big, 26, 26, 108, 108), size=(96, 96), mode="bilinear", align_corners=True
    )
    m = M.estimate_motion(prev, cur)
    # cur pixel y shows image row 26 + y * 107/95, which is prev row (6 + y * 107/95) * 95/119
    ys = torch.arange(96.0)
    expect = (6 + ys * 107 / 95) * 95 / 119 - ys
    got = m.flow[0, 0].mean(1)
    assert torch.allclose(got[12:-12], expect[12:-12], atol=0.6)
    assert m.confidence[..., 12:-12, 12:-12].mean() > 0.8


def test_a_scene_cut_is_detected():
    a, b = crop(texture(seed=0), 0, 0), crop(texture(seed=5), 0, 0)
    m = M.estimate_motion(torch.cat((a, a)), torch.cat((a, b)))
    assert m.cut.tolist() == [False, True]
    assert m.confidence[1].mean() < M.CUT_CONFIDENCE


def test_a_moving_object_is_tracked_and_its_uncovered_background_distrusted():
    bg = crop(texture(seed=2), 0, 0)
    obj = torch.zeros_like(bg)
    obj[..., 20:40, 20:40] = 1.0
    prev = torch.where(obj > 0, 0.9 + 0.05 * torch.sin(torch.arange(80.0) / 2), bg)
    obj2 = torch.roll(obj, 4, -1)
    cur = torch.where(obj2 > 0, torch.roll(prev, 4, -1), bg)
    m = M.estimate_motion(prev, cur)
    assert m.flow[0, 1, 24:36, 28:40].mean().item() == pytest.approx(-4.0, abs=1.0)
    assert m.flow[0, 1, 50:, 50:].abs().mean().item() < 0.5
    # background uncovered at columns 20..23 was under the object in the previous plane
    assert m.confidence[0, 0, 24:36, 20:24].mean() < 0.5
    assert not bool(m.cut[0])


def test_warp_samples_the_previous_plane_and_marks_outside():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    flow = torch.zeros(1, 2, 3, 4)
    flow[:, 1] = 1.0  # every pixel looks one column to the right
    out, inside = M.warp(x, flow, valid=True)
    assert torch.allclose(out[..., :3], x[..., 1:])
    assert inside[0, 0, :, :3].eq(1).all() and inside[0, 0, :, 3].eq(0).all()


def test_pool_flow_rescales_vectors_and_keeps_the_worst_confidence():
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 1] = 4.0
    conf = torch.ones(1, 1, 8, 8)
    conf[..., 0, 0] = 0.1
    m = M.Motion(flow, conf, torch.tensor([False]), torch.zeros(1, 2))
    f, c = M.pool_flow(m, (4, 4))
    assert torch.allclose(f[:, 1], torch.full((1, 4, 4), 2.0))
    assert c[0, 0, 0, 0].item() == pytest.approx(0.1)
    assert c[0, 0, 1:, 1:].eq(1).all()
    f2, _ = M.pool_flow(m, (16, 16))
    assert torch.allclose(f2[:, 1], torch.full((1, 16, 16), 8.0))


def test_inputs_are_not_modified():
    a, b = crop(texture(), 0, 0), crop(texture(), 2, 3)
    a0, b0 = a.clone(), b.clone()
    M.estimate_motion(a, b)
    assert torch.equal(a, a0) and torch.equal(b, b0)
    assert np.isfinite(M.phase_correlation(a, a).numpy()).all()
