"""tinct.color: the conversions of both modules (Lab, LUV, YUV) against scikit-image."""

import numpy as np
import pytest
import torch
from skimage import color as skc

from color_helpers import rgb_cube, to_np, to_t
from tinct import color as C


@pytest.fixture(scope="module")
def cube() -> np.ndarray:
    """103,823 colours spread over the 8-bit RGB cube, as an (N, 1, 3) float64 image."""
    return rgb_cube()


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


#: Every conversion between the package's colour spaces (each has an inverse in the list).
CONVERSIONS = [
    C.rgb_to_lab,
    C.lab_to_rgb,
    C.rgb_to_luv,
    C.luv_to_rgb,
    C.rgb_to_yuv,
    C.yuv_to_rgb,
    C.lab_to_lch,
    C.lch_to_lab,
]


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5), (2, 2, 3, 1, 7)])
@pytest.mark.parametrize(
    "fn",
    CONVERSIONS,
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
    [*CONVERSIONS, C.rgb_to_gray],
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
