"""The result's pixels without sockets (tinct.bridge.result): engine output to the asked layout."""

import numpy as np
import pytest

from tinct.bridge.backend import ColorizeJob
from tinct.bridge.request import encode_result as encode_result_of_request
from tinct.bridge.result import encode_result


def _job(result_format="rgb8", alpha=None):
    return ColorizeJob(
        image=np.zeros((2, 3), np.uint8), alpha=alpha, result_format=result_format, request_id="x"
    )


def test_encode_result_converts_dtypes_and_layouts():
    gray = np.array([[0, 128, 255], [1, 2, 3]], np.uint8)
    np.testing.assert_array_equal(encode_result(_job(), gray), np.dstack([gray] * 3))
    floats = np.full((2, 3, 4), 0.5, np.float32)
    assert (encode_result(_job(), floats) == 128).all()
    wide = np.full((2, 3, 3), 65535, np.uint16)
    assert (encode_result(_job(), wide) == 255).all()
    out = encode_result(_job("rgba8"), np.zeros((2, 3, 3), np.uint8))
    assert out.shape == (2, 3, 4) and (out[..., 3] == 255).all()
    alpha16 = np.full((2, 3), 65535, np.uint16)
    assert (encode_result(_job("rgba8", alpha16), floats)[..., 3] == 255).all()
    assert encode_result(_job(), floats).flags.c_contiguous


def test_a_16_bit_result_keeps_the_engines_precision():
    """A float result in rgb16/rgba16 keeps 65536 levels (little-endian); 8-bit alphas widen."""
    ramp = np.linspace(0.300, 0.302, 3 * 2, dtype=np.float32).reshape(2, 3)
    out = encode_result(_job("rgb16"), ramp)
    assert out.dtype == np.dtype("<u2") and out.shape == (2, 3, 3)
    assert len(np.unique(out[..., 0])) == 6  # rgb8 gives them one level
    assert len(np.unique(encode_result(_job(), ramp)[..., 0])) == 1
    np.testing.assert_array_equal(out[..., 0], (ramp * 65535 + 0.5).astype(np.uint16))
    alpha8 = np.array([[0, 128, 255], [1, 2, 3]], np.uint8)
    rgba = encode_result(_job("rgba16", alpha8), np.zeros((2, 3, 3), np.uint8))
    np.testing.assert_array_equal(rgba[..., 3], alpha8.astype(np.uint16) * 257)
    assert (encode_result(_job("rgba16"), ramp)[..., 3] == 65535).all()
    assert (encode_result(_job("rgb16"), np.full((2, 3), 255, np.uint8)) == 65535).all()


def test_encode_result_refuses_wrong_shapes():
    with pytest.raises(RuntimeError, match="expected"):
        encode_result(_job(), np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(RuntimeError, match="shape"):
        encode_result(_job(), np.zeros((2, 3, 2), np.uint8))


def test_encode_result_is_still_importable_from_the_request_module():
    assert encode_result_of_request is encode_result
