"""CIELUV, YUV (BT.601) and gray from sRGB, as :mod:`skimage.color` computes them."""

from __future__ import annotations

import torch
from torch import Tensor

from tinct.color.lab import (
    _LAB_EPS,
    _LUV_KAPPA,
    _LUV_L_EPS,
    D65_WHITE,
    GRAY_FROM_RGB,
    RGB_FROM_XYZ,
    RGB_FROM_YUV,
    XYZ_FROM_RGB,
    YUV_FROM_RGB,
    _check,
    _chunked,
    _matmul,
    linear_to_srgb,
    srgb_to_linear,
)

__all__ = [
    "luv_to_rgb",
    "luv_to_xyz",
    "rgb_to_gray",
    "rgb_to_luv",
    "rgb_to_yuv",
    "xyz_to_luv",
    "yuv_to_rgb",
]


def _uv_white(x: Tensor) -> tuple[float, float]:
    xw, yw, zw = D65_WHITE
    den = xw + 15.0 * yw + 3.0 * zw
    return 4.0 * xw / den, 9.0 * yw / den


def xyz_to_luv(xyz: Tensor) -> Tensor:
    """CIE XYZ (D65) to CIELUV.

    Args:
        xyz: ``(..., 3, H, W)``, Y of the white point = 1.

    Returns:
        Luv ``(..., 3, H, W)``: L in ``[0, 100]``.
    """
    _check(xyz, "xyz")
    eps = torch.finfo(xyz.dtype).eps
    x, y, z = xyz.unbind(-3)
    yr = y / D65_WHITE[1]
    L = torch.where(
        yr > _LAB_EPS, 116.0 * yr.clamp_min(_LAB_EPS) ** (1.0 / 3.0) - 16.0, _LUV_KAPPA * yr
    )
    den = x + 15.0 * y + 3.0 * z + eps
    u0, v0 = _uv_white(xyz)
    u = 13.0 * L * (4.0 * x / den - u0)
    v = 13.0 * L * (9.0 * y / den - v0)
    return torch.stack((L, u, v), dim=-3)


def luv_to_xyz(luv: Tensor) -> Tensor:
    """CIELUV to CIE XYZ (D65).

    Args:
        luv: ``(..., 3, H, W)``, L in ``[0, 100]``.

    Returns:
        XYZ, same shape.
    """
    _check(luv, "luv")
    eps = torch.finfo(luv.dtype).eps
    L, u, v = luv.unbind(-3)
    y = torch.where(L > _LUV_L_EPS, ((L + 16.0) / 116.0) ** 3, L / _LUV_KAPPA) * D65_WHITE[1]
    u0, v0 = _uv_white(luv)
    a = u0 + u / (13.0 * L + eps)
    b = v0 + v / (13.0 * L + eps)
    c = 3.0 * y * (5.0 * b - 3.0)
    z = ((a - 4.0) * c - 15.0 * a * b * y) / (12.0 * b)
    x = -(c / b + 3.0 * z)
    return torch.stack((x, y, z), dim=-3)


def rgb_to_luv(rgb: Tensor) -> Tensor:
    """SRGB to CIELUV (D65), as :func:`skimage.color.rgb2luv`.

    Args:
        rgb: ``(..., 3, H, W)`` in ``[0, 1]``.

    Returns:
        Luv ``(..., 3, H, W)``: L in ``[0, 100]``, u about ``[-84, 176]``,
        v about ``[-135, 108]``.
    """
    _check(rgb, "rgb")
    return _chunked(lambda t: xyz_to_luv(_matmul(XYZ_FROM_RGB, srgb_to_linear(t))), rgb)


def luv_to_rgb(luv: Tensor, *, clip: bool = True) -> Tensor:
    """CIELUV (D65) to sRGB, as :func:`skimage.color.luv2rgb`.

    Args:
        luv: ``(..., 3, H, W)``, L in ``[0, 100]``.
        clip: Clip the result into ``[0, 1]``.

    Returns:
        sRGB ``(..., 3, H, W)``.
    """
    _check(luv, "luv")

    def conv(t: Tensor) -> Tensor:
        rgb = linear_to_srgb(_matmul(RGB_FROM_XYZ, luv_to_xyz(t)))
        return rgb.clamp(0.0, 1.0) if clip else rgb

    return _chunked(conv, luv)


def rgb_to_yuv(rgb: Tensor) -> Tensor:
    """SRGB to BT.601 YUV, as :func:`skimage.color.rgb2yuv` (no gamma removal).

    Args:
        rgb: ``(..., 3, H, W)`` in ``[0, 1]``.

    Returns:
        YUV ``(..., 3, H, W)``: Y in ``[0, 1]``, U in ``[-0.436, 0.436]``,
        V in ``[-0.615, 0.615]``.
    """
    _check(rgb, "rgb")
    return _matmul(YUV_FROM_RGB, rgb)


def yuv_to_rgb(yuv: Tensor, *, clip: bool = False) -> Tensor:
    """BT.601 YUV to sRGB, as :func:`skimage.color.yuv2rgb`.

    Args:
        yuv: ``(..., 3, H, W)``: Y in ``[0, 1]``, U in ``[-0.436, 0.436]``,
            V in ``[-0.615, 0.615]``.
        clip: Clip the result into ``[0, 1]`` (skimage does not).

    Returns:
        sRGB ``(..., 3, H, W)``.
    """
    _check(yuv, "yuv")
    rgb = _matmul(RGB_FROM_YUV, yuv)
    return rgb.clamp(0.0, 1.0) if clip else rgb


def rgb_to_gray(rgb: Tensor) -> Tensor:
    """Luminance of gamma-encoded sRGB, as :func:`skimage.color.rgb2gray`.

    Args:
        rgb: ``(..., 3, H, W)`` in ``[0, 1]``.

    Returns:
        ``(..., 1, H, W)`` in ``[0, 1]``: ``0.2125 R + 0.7154 G + 0.0721 B``.
    """
    _check(rgb, "rgb")
    r, g, b = rgb.unbind(-3)
    w = GRAY_FROM_RGB
    return (w[0] * r + w[1] * g + w[2] * b).unsqueeze(-3)
