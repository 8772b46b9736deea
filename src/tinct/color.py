"""Colour-space conversions on torch tensors.

Every function takes and returns tensors shaped ``(..., 3, H, W)`` (channel
third from the end), of any floating dtype, on any device, and is
differentiable: masks are applied with :func:`torch.where`, never by in-place
writes. RGB means gamma-encoded sRGB in ``[0, 1]`` with the D65 white point,
as stored in 8-bit image files divided by 255.

Ranges:
    * CIELAB: L in ``[0, 100]``, a and b roughly ``[-110, 110]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "D65_WHITE",
    "RGB_FROM_XYZ",
    "XYZ_FROM_RGB",
    "lab_to_rgb",
    "lab_to_xyz",
    "linear_to_srgb",
    "rgb_to_lab",
    "srgb_to_linear",
    "xyz_to_lab",
]

#: sRGB (linear) -> CIE XYZ, D65 white, as used by scikit-image.
XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
#: Inverse of :data:`XYZ_FROM_RGB`, computed in float64 at first use.
RGB_FROM_XYZ: tuple[tuple[float, ...], ...] = tuple(
    tuple(row) for row in torch.linalg.inv(torch.tensor(XYZ_FROM_RGB, dtype=torch.float64)).tolist()
)
#: Reference white (X, Y, Z) for D65 and the CIE 1931 2-degree observer.
D65_WHITE = (0.95047, 1.0, 1.08883)

_EPS = 216.0 / 24389.0  # CIE epsilon: (6/29)**3
_KAPPA = 24389.0 / 27.0  # CIE kappa


def _check(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (..., 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")


def _matmul(m: tuple[tuple[float, ...], ...], x: Tensor) -> Tensor:
    mat = torch.tensor(m, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", mat, x)


def srgb_to_linear(rgb: Tensor) -> Tensor:
    """Undo the sRGB transfer curve.

    Args:
        rgb: Gamma-encoded sRGB, ``(..., 3, H, W)`` in ``[0, 1]``.

    Returns:
        Linear RGB, same shape.
    """
    return torch.where(
        rgb > 0.04045, ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92
    )


def linear_to_srgb(rgb: Tensor) -> Tensor:
    """Apply the sRGB transfer curve.

    Args:
        rgb: Linear RGB, ``(..., 3, H, W)``.

    Returns:
        Gamma-encoded sRGB, same shape (not clipped).
    """
    safe = rgb.clamp_min(0.0031308)
    return torch.where(rgb > 0.0031308, 1.055 * safe ** (1 / 2.4) - 0.055, 12.92 * rgb)


def _f(t: Tensor) -> Tensor:
    return torch.where(t > _EPS, t.clamp_min(_EPS) ** (1.0 / 3.0), (_KAPPA * t + 16.0) / 116.0)


def _f_inv(t: Tensor) -> Tensor:
    t3 = t**3
    return torch.where(t3 > _EPS, t3, (116.0 * t - 16.0) / _KAPPA)


def xyz_to_lab(xyz: Tensor) -> Tensor:
    """CIE XYZ (D65) to CIELAB.

    Args:
        xyz: ``(..., 3, H, W)``, Y of the white point = 1.

    Returns:
        Lab, L in ``[0, 100]``.
    """
    _check(xyz, "xyz")
    white = torch.tensor(D65_WHITE, dtype=xyz.dtype, device=xyz.device).view(3, 1, 1)
    f = _f(xyz / white)
    fx, fy, fz = f.unbind(-3)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


def lab_to_xyz(lab: Tensor) -> Tensor:
    """CIELAB to CIE XYZ (D65).

    Args:
        lab: ``(..., 3, H, W)``, L in ``[0, 100]``.

    Returns:
        XYZ, same shape; negative Z (from impossible Lab colours) is kept.
    """
    _check(lab, "lab")
    L, a, b = lab.unbind(-3)
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    white = torch.tensor(D65_WHITE, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    return torch.stack((_f_inv(fx), _f_inv(fy), _f_inv(fz)), dim=-3) * white


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """SRGB to CIELAB (D65).

    Args:
        rgb: ``(..., 3, H, W)`` in ``[0, 1]``.

    Returns:
        Lab ``(..., 3, H, W)``: L in ``[0, 100]``, a and b about ``[-110, 110]``.

    Example:
        >>> import torch
        >>> rgb_to_lab(torch.ones(3, 1, 1)).flatten().round().tolist()
        [100.0, 0.0, 0.0]
    """
    _check(rgb, "rgb")
    return xyz_to_lab(_matmul(XYZ_FROM_RGB, srgb_to_linear(rgb)))


def lab_to_rgb(lab: Tensor, *, clip: bool = True) -> Tensor:
    """CIELAB (D65) to sRGB.

    Args:
        lab: ``(..., 3, H, W)``, L in ``[0, 100]``.
        clip: Clip the result into ``[0, 1]`` (out-of-gamut colours).

    Returns:
        sRGB ``(..., 3, H, W)``.
    """
    _check(lab, "lab")
    rgb = linear_to_srgb(_matmul(RGB_FROM_XYZ, lab_to_xyz(lab)))
    return rgb.clamp(0.0, 1.0) if clip else rgb
