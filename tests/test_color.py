import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import color as skc

from tinct import color as C


@pytest.fixture(scope="module")
def cube() -> np.ndarray:
    """103,823 colours spread over the 8-bit RGB cube, as an (N, 1, 3) float64 image."""
    v = np.round(np.linspace(0, 255, 47))
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r, g, b], -1).reshape(-1, 1, 3) / 255.0


def to_t(img: np.ndarray, dtype=torch.float64, device="cpu") -> torch.Tensor:
    return torch.from_numpy(np.moveaxis(img, -1, 0).copy()).to(dtype=dtype, device=device)


def to_np(t: torch.Tensor) -> np.ndarray:
    return np.moveaxis(t.detach().cpu().double().numpy(), 0, -1)


FORWARD = [
    (C.rgb_to_lab, skc.rgb2lab, 0.05),
    (C.rgb_to_luv, skc.rgb2luv, 0.05),
    (C.rgb_to_yuv, skc.rgb2yuv, 1e-5),
]


@pytest.mark.parametrize(("ours", "ref", "tol32"), FORWARD, ids=["lab", "luv", "yuv"])
def test_forward_matches_skimage(cube, dtype, device, ours, ref, tol32):
    tol = 1e-6 if dtype == torch.float64 else tol32
    out = to_np(ours(to_t(cube, dtype, device)))
    np.testing.assert_allclose(out, ref(cube), atol=tol, rtol=0)


@pytest.mark.parametrize(
    ("fwd", "ours", "ref"),
    [(skc.rgb2lab, C.lab_to_rgb, skc.lab2rgb), (skc.rgb2luv, C.luv_to_rgb, skc.luv2rgb)],
    ids=["lab", "luv"],
)
def test_inverse_matches_skimage(cube, fwd, ours, ref):
    x = fwd(cube)
    np.testing.assert_allclose(to_np(ours(to_t(x))), ref(x), atol=1e-6, rtol=0)


def test_yuv_inverse_and_ranges(cube):
    yuv = skc.rgb2yuv(cube)
    np.testing.assert_allclose(to_np(C.yuv_to_rgb(to_t(yuv))), skc.yuv2rgb(yuv), atol=1e-9)
    assert yuv[..., 0].min() >= 0 and yuv[..., 0].max() <= 1 + 1e-9
    assert np.abs(yuv[..., 1]).max() <= 0.437 and np.abs(yuv[..., 2]).max() <= 0.616


def test_lch_and_gray_match_skimage(cube):
    lab = skc.rgb2lab(cube)
    np.testing.assert_allclose(to_np(C.lab_to_lch(to_t(lab))), skc.lab2lch(lab), atol=1e-9)
    np.testing.assert_allclose(to_np(C.lch_to_lab(to_t(skc.lab2lch(lab)))), lab, atol=1e-9)
    gray = C.rgb_to_gray(to_t(cube))
    assert gray.shape == (1, cube.shape[0], 1)
    np.testing.assert_allclose(gray[0].numpy(), skc.rgb2gray(cube), atol=1e-12)


@pytest.mark.parametrize(
    ("fwd", "inv"),
    [(C.rgb_to_lab, C.lab_to_rgb), (C.rgb_to_luv, C.luv_to_rgb), (C.rgb_to_yuv, C.yuv_to_rgb)],
    ids=["lab", "luv", "yuv"],
)
def test_round_trip(cube, dtype, fwd, inv):
    x = to_t(cube, dtype)
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(inv(fwd(x)), x, atol=tol, rtol=0)


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5), (2, 2, 3, 1, 7)])
@pytest.mark.parametrize(
    "fn",
    [
        C.rgb_to_lab,
        C.lab_to_rgb,
        C.rgb_to_luv,
        C.luv_to_rgb,
        C.rgb_to_yuv,
        C.yuv_to_rgb,
        C.lab_to_lch,
        C.lch_to_lab,
    ],
)
def test_shapes_dtype_device(fn, shape, dtype, device):
    x = torch.rand(shape, dtype=dtype, device=device) * 0.9 + 0.05
    y = fn(x)
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("fn", [C.rgb_to_lab, C.lab_to_rgb, C.rgb_to_luv, C.rgb_to_yuv])
def test_errors(fn):
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\)"):
        fn(torch.rand(4, 5, 5))
    with pytest.raises(TypeError):
        fn(np.zeros((3, 2, 2)))
    with pytest.raises(TypeError):
        fn(torch.zeros(3, 2, 2, dtype=torch.int64))


@pytest.mark.parametrize(
    "fn",
    [
        C.rgb_to_lab,
        C.lab_to_rgb,
        C.rgb_to_luv,
        C.luv_to_rgb,
        C.rgb_to_yuv,
        C.yuv_to_rgb,
        C.lab_to_lch,
        C.lch_to_lab,
        C.rgb_to_gray,
    ],
)
def test_gradcheck(fn):
    torch.manual_seed(0)
    if fn in (C.lab_to_rgb, C.luv_to_rgb, C.lab_to_lch, C.lch_to_lab):
        x = C.rgb_to_lab(torch.rand(1, 3, 2, 2, dtype=torch.float64) * 0.8 + 0.1)
        if fn is C.luv_to_rgb:
            x = C.rgb_to_luv(C.lab_to_rgb(x))
        if fn is C.lch_to_lab:
            x = C.lab_to_lch(x)
        if fn in (C.lab_to_rgb, C.luv_to_rgb):
            fn = lambda t, f=fn: f(t, clip=False)  # noqa: E731
    else:
        x = torch.rand(1, 3, 2, 2, dtype=torch.float64) * 0.8 + 0.1
    assert torch.autograd.gradcheck(fn, (x.requires_grad_(),))


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
