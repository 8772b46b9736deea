"""tinct.color.luv_yuv: CIELUV, YUV and gray conversions."""

import numpy as np
import pytest
from skimage import color as skc

from color_helpers import rgb_cube, to_np, to_t
from tinct import color as C


@pytest.fixture(scope="module")
def cube() -> np.ndarray:
    """103,823 colours spread over the 8-bit RGB cube, as an (N, 1, 3) float64 image."""
    return rgb_cube()


def test_yuv_inverse_and_ranges(cube):
    yuv = skc.rgb2yuv(cube)
    np.testing.assert_allclose(to_np(C.yuv_to_rgb(to_t(yuv))), skc.yuv2rgb(yuv), atol=1e-9)
    assert yuv[..., 0].min() >= 0 and yuv[..., 0].max() <= 1 + 1e-9
    assert np.abs(yuv[..., 1]).max() <= 0.437 and np.abs(yuv[..., 2]).max() <= 0.616
