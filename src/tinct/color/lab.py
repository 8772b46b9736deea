"""sRGB, linear RGB, CIE XYZ, CIELAB and LCh on torch tensors, and gamut snapping.

Conventions and ranges: see :mod:`tinct.color`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

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
    "rgb_to_lab",
    "snap_to_gamut",
    "srgb_to_linear",
    "xyz_to_lab",
]

Matrix = tuple[tuple[float, ...], ...]


def _inverse(m: Matrix) -> Matrix:
    inv = torch.linalg.inv(torch.tensor(m, dtype=torch.float64))
    return tuple(tuple(row) for row in inv.tolist())


#: sRGB (linear) -> CIE XYZ, D65 white, as used by scikit-image.
XYZ_FROM_RGB: Matrix = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
#: Inverse of :data:`XYZ_FROM_RGB`, computed in float64 at import.
RGB_FROM_XYZ: Matrix = _inverse(XYZ_FROM_RGB)
#: Gamma-encoded sRGB -> BT.601 YUV (scikit-image ``yuv_from_rgb``).
YUV_FROM_RGB: Matrix = (
    (0.299, 0.587, 0.114),
    (-0.14714119, -0.28886916, 0.43601035),
    (0.61497538, -0.51496512, -0.10001026),
)
#: Inverse of :data:`YUV_FROM_RGB`.
RGB_FROM_YUV: Matrix = _inverse(YUV_FROM_RGB)
#: Luminance weights of :func:`~tinct.color.rgb_to_gray` (scikit-image ``rgb2gray``, Rec. 709).
GRAY_FROM_RGB = (0.2125, 0.7154, 0.0721)
#: Reference white (X, Y, Z) for D65 and the CIE 1931 2-degree observer.
D65_WHITE = (0.95047, 1.0, 1.08883)

# Breakpoints and slopes of the CIE companding, rounded as in scikit-image.
_LAB_EPS = 0.008856
_LAB_SLOPE = 7.787
_LAB_FINV_EPS = 0.2068966
_LUV_KAPPA = 903.3
_LUV_L_EPS = 7.999625
_TWO_PI = 2.0 * math.pi


def _check(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (..., 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")


def _matmul(m: Matrix, x: Tensor) -> Tensor:
    """Apply a 3x3 matrix to the channel axis of ``(..., 3, H, W)``."""
    c0, c1, c2 = x.unbind(-3)
    rows = [r[0] * c0 + r[1] * c1 + r[2] * c2 for r in m]
    return torch.stack(rows, dim=-3)


#: Above this many pixels, conversions that need no gradient run in row chunks
#: (bounded temporary memory for very large images).
_CHUNK_PIXELS = 1 << 20


def _chunked(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Apply a per-pixel map ``fn`` in row chunks when no autograd graph is needed."""
    h, w = x.shape[-2], x.shape[-1]
    lead = x[..., 0, 0, 0].numel()
    if x.numel() // 3 <= 2 * _CHUNK_PIXELS or (torch.is_grad_enabled() and x.requires_grad):
        return fn(x)
    rows = max(1, _CHUNK_PIXELS // max(1, w * lead))
    first = fn(x[..., :rows, :])
    out = first.new_empty((*first.shape[:-2], h, w))
    out[..., :rows, :] = first
    for r in range(rows, h, rows):
        out[..., r : r + rows, :] = fn(x[..., r : r + rows, :])
    return out


def _white(x: Tensor) -> Tensor:
    return torch.tensor(D65_WHITE, dtype=x.dtype, device=x.device).view(3, 1, 1)


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
    return torch.where(
        t > _LAB_EPS, t.clamp_min(_LAB_EPS) ** (1.0 / 3.0), _LAB_SLOPE * t + 16.0 / 116.0
    )


def _f_inv(t: Tensor) -> Tensor:
    return torch.where(t > _LAB_FINV_EPS, t**3, (t - 16.0 / 116.0) / _LAB_SLOPE)


def xyz_to_lab(xyz: Tensor) -> Tensor:
    """CIE XYZ (D65) to CIELAB.

    Args:
        xyz: ``(..., 3, H, W)``, Y of the white point = 1.

    Returns:
        Lab ``(..., 3, H, W)``, L in ``[0, 100]``.
    """
    _check(xyz, "xyz")
    fx, fy, fz = _f(xyz / _white(xyz)).unbind(-3)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


def lab_to_xyz(lab: Tensor) -> Tensor:
    """CIELAB to CIE XYZ (D65).

    Args:
        lab: ``(..., 3, H, W)``, L in ``[0, 100]``.

    Returns:
        XYZ, same shape. Negative values (from impossible Lab colours) are kept;
        :func:`lab_to_rgb` with ``clip=True`` deals with them.
    """
    _check(lab, "lab")
    L, a, b = lab.unbind(-3)
    fy = (L + 16.0) / 116.0
    f = torch.stack((fy + a / 500.0, fy, fy - b / 200.0), dim=-3)
    return _f_inv(f) * _white(lab)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """SRGB to CIELAB (D65), as :func:`skimage.color.rgb2lab`.

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
    return _chunked(lambda t: xyz_to_lab(_matmul(XYZ_FROM_RGB, srgb_to_linear(t))), rgb)


def lab_to_rgb(lab: Tensor, *, clip: bool = True) -> Tensor:
    """CIELAB (D65) to sRGB, as :func:`skimage.color.lab2rgb`.

    Args:
        lab: ``(..., 3, H, W)``, L in ``[0, 100]``.
        clip: Clip the result into ``[0, 1]``. Lab colours outside the sRGB
            gamut (possible for any chrominance predicted independently of L)
            otherwise give values below 0 or above 1.

    Returns:
        sRGB ``(..., 3, H, W)``, in ``[0, 1]`` when ``clip`` is true.
    """
    _check(lab, "lab")

    def conv(t: Tensor) -> Tensor:
        rgb = linear_to_srgb(_matmul(RGB_FROM_XYZ, lab_to_xyz(t)))
        return rgb.clamp(0.0, 1.0) if clip else rgb

    return _chunked(conv, lab)


def lab_to_lch(lab: Tensor) -> Tensor:
    """CIELAB to cylindrical LCh, as :func:`skimage.color.lab2lch`.

    Args:
        lab: ``(..., 3, H, W)``, L in ``[0, 100]``.

    Returns:
        ``(..., 3, H, W)``: L unchanged, chroma ``sqrt(a^2 + b^2) >= 0`` and hue
        ``atan2(b, a)`` in radians, in ``[0, 2*pi)``. Grey pixels (a = b = 0)
        get hue 0 and a zero (not NaN) gradient.
    """
    _check(lab, "lab")
    L, a, b = lab.unbind(-3)
    c2 = a * a + b * b
    nz = c2 > 0
    tiny = torch.finfo(lab.dtype).tiny
    chroma = torch.where(nz, c2.clamp_min(tiny).sqrt(), torch.zeros_like(c2))
    h = torch.atan2(torch.where(nz, b, torch.zeros_like(b)), torch.where(nz, a, torch.ones_like(a)))
    h = torch.where(h < 0, h + _TWO_PI, h)
    return torch.stack((L, chroma, h), dim=-3)


def lch_to_lab(lch: Tensor) -> Tensor:
    """Cylindrical LCh to CIELAB, as :func:`skimage.color.lch2lab`.

    Args:
        lch: ``(..., 3, H, W)``: L in ``[0, 100]``, chroma ``>= 0``, hue in radians.

    Returns:
        Lab ``(..., 3, H, W)``.
    """
    _check(lch, "lch")
    L, c, h = lch.unbind(-3)
    return torch.stack((L, c * torch.cos(h), c * torch.sin(h)), dim=-3)


def snap_to_gamut(lab: Tensor, *, max_iter: int = 20, tol: float = 1.0) -> Tensor:
    """Move Lab colours into the sRGB gamut, keeping their lightness.

    Iterates Lab -> RGB (clipped) -> Lab with L reset to its original value;
    each pixel stops at the first round that changes it by less than ``tol``
    (Lab units), or after ``max_iter`` rounds (the snapping used for user colour
    hints in interactive colorization). A pixel's result does not depend on
    the other pixels snapped with it. In-gamut colours come back (almost) unchanged.

    Args:
        lab: ``(..., 3, H, W)``, L in ``[0, 100]``.
        max_iter: Maximum number of rounds.
        tol: Stop when the largest per-pixel Lab change is below this.

    Returns:
        Lab ``(..., 3, H, W)`` with the input L and in-gamut a, b. Not meant
        for back-propagation (detached).
    """
    _check(lab, "lab")
    with torch.no_grad():
        L = lab[..., :1, :, :]
        cur = lab
        done = torch.zeros_like(L, dtype=torch.bool)
        for _ in range(max_iter):
            if done.numel() == 0 or bool(done.all()):
                break
            nxt = rgb_to_lab(lab_to_rgb(cur, clip=True))
            nxt = torch.cat((L, nxt[..., 1:, :, :]), dim=-3)
            change = (nxt - cur).abs().amax(dim=-3, keepdim=True)
            cur = torch.where(done, cur, nxt)
            done = done | (change < tol)
    return cur
