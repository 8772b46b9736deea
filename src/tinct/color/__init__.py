"""Colour-space conversions on torch tensors.

Every function takes and returns tensors shaped ``(..., 3, H, W)`` (channel
third from the end), of any floating dtype, on any device, and is
differentiable: masks are applied with :func:`torch.where`, never by in-place
writes. RGB means gamma-encoded sRGB in ``[0, 1]`` with the D65 white point
(CIE 1931 2-degree observer), as stored in 8-bit image files divided by 255.

The constants (matrices, the ``0.008856`` / ``7.787`` / ``903.3`` breakpoints)
are those of :mod:`skimage.color`, so results agree with ``rgb2lab``,
``rgb2luv`` and ``rgb2yuv`` to float64 rounding; pretrained colorization
networks were trained on exactly those conversions.

Ranges:
    * CIELAB: L in ``[0, 100]``, a and b roughly ``[-110, 110]``.
    * CIELUV: L in ``[0, 100]``, u about ``[-84, 176]``, v about ``[-135, 108]``.
    * YUV (BT.601): Y in ``[0, 1]``, U in ``[-0.436, 0.436]``, V in ``[-0.615, 0.615]``.
    * LCh (from Lab): L in ``[0, 100]``, chroma ``>= 0``, hue in radians ``[0, 2*pi)``.

The conversions live in :mod:`tinct.color.lab` (sRGB, XYZ, CIELAB, LCh, gamut)
and :mod:`tinct.color.luv_yuv` (CIELUV, YUV, gray); import them from here.
"""

from __future__ import annotations

from tinct.color.lab import (
    D65_WHITE,
    GRAY_FROM_RGB,
    RGB_FROM_XYZ,
    RGB_FROM_YUV,
    XYZ_FROM_RGB,
    YUV_FROM_RGB,
    lab_to_lch,
    lab_to_rgb,
    lab_to_xyz,
    lch_to_lab,
    linear_to_srgb,
    rgb_to_lab,
    snap_to_gamut,
    srgb_to_linear,
    xyz_to_lab,
)
from tinct.color.luv_yuv import (
    luv_to_rgb,
    luv_to_xyz,
    rgb_to_gray,
    rgb_to_luv,
    rgb_to_yuv,
    xyz_to_luv,
    yuv_to_rgb,
)

__all__ = [
    "D65_WHITE",
    "GRAY_FROM_RGB",
    "RGB_FROM_XYZ",
    "RGB_FROM_YUV",
    "XYZ_FROM_RGB",
    "YUV_FROM_RGB",
    "lab_to_lch",
    "lab_to_rgb",
    "lab_to_xyz",
    "lch_to_lab",
    "linear_to_srgb",
    "luv_to_rgb",
    "luv_to_xyz",
    "rgb_to_gray",
    "rgb_to_lab",
    "rgb_to_luv",
    "rgb_to_yuv",
    "snap_to_gamut",
    "srgb_to_linear",
    "xyz_to_lab",
    "xyz_to_luv",
    "yuv_to_rgb",
]
