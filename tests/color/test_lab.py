"""tinct.color.lab: sRGB, CIELAB and LCh conversions, chunking, clipping and the gamut."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinct import color as C


def test_gray_pixels_have_finite_gradients():
    x = torch.zeros(3, 1, 2, dtype=torch.float64, requires_grad=True)
    C.lab_to_lch(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    y = torch.zeros(3, 1, 2, dtype=torch.float64, requires_grad=True)
    C.rgb_to_lab(y).sum().backward()
    assert torch.isfinite(y.grad).all()


def test_large_input_chunked_path_matches(monkeypatch):
    x = torch.rand(3, 40, 30)
    ref = C.rgb_to_lab(x)
    monkeypatch.setattr("tinct.color.lab._CHUNK_PIXELS", 64)
    torch.testing.assert_close(C.rgb_to_lab(x), ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(C.lab_to_rgb(ref), x, atol=1e-4, rtol=0)


def test_lab_to_rgb_clip():
    lab = torch.tensor([50.0, 100.0, -100.0]).view(3, 1, 1)
    assert C.lab_to_rgb(lab).min() >= 0 and C.lab_to_rgb(lab).max() <= 1
    raw = C.lab_to_rgb(lab, clip=False)
    assert raw.min() < 0 or raw.max() > 1


def test_snap_to_gamut():
    lab = torch.tensor([[50.0, 100.0, -100.0], [60.0, 10.0, 20.0], [20.0, -80.0, 80.0]])
    lab = lab.T.reshape(3, 1, 3)
    snapped = C.snap_to_gamut(lab)
    torch.testing.assert_close(snapped[0], lab[0])  # lightness kept
    again = C.rgb_to_lab(C.lab_to_rgb(snapped))
    assert (again[1:] - snapped[1:]).abs().max() < 1.5  # (nearly) in gamut
    torch.testing.assert_close(snapped[:, :, 1], lab[:, :, 1], atol=0.2, rtol=0)  # in-gamut stays


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=3, max_size=3))
def test_property_lab_round_trip_and_range(rgb):
    x = torch.tensor(rgb, dtype=torch.float64).view(3, 1, 1) / 255
    lab = C.rgb_to_lab(x)
    assert -1e-9 <= lab[0].item() <= 100 + 1e-9
    assert lab[1:].abs().max() < 130
    torch.testing.assert_close(C.lab_to_rgb(lab), x, atol=1e-9, rtol=0)
    lch = C.lab_to_lch(lab)
    assert 0 <= lch[2].item() < 2 * np.pi and lch[1].item() >= 0
