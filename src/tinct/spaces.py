"""Colour-space plumbing of the inference pipeline (torch, no scikit-image).

A model works in one colour space (``ModelConfig.color_space``): CIELAB,
CIELUV or YUV. This module turns gray or RGB input into that space's
luminance, turns (luminance, chrominance) back into sRGB with gamut clipping,
and snaps hint colours into gamut. The CIELAB path has a fused fast version
(:func:`lab_to_rgb_fast`) because it runs at full resolution on every
re-decode.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tinct import color

__all__ = [
    "SPACES",
    "fit_chroma",
    "lab_to_rgb_fast",
    "lab_to_rgb_in_gamut",
    "lum_from_gray",
    "rgb_to_space",
    "snap_chroma",
    "space_to_rgb",
]

SPACES = ("lab", "luv", "yuv")

_YUV_LUMA = (0.299, 0.587, 0.114)
_D65 = color.D65_WHITE
_DELTA = 6.0 / 29.0


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise ValueError(f"unknown colour space {space!r}; expected one of {SPACES}")


def _space_fn(name: str):
    fn = getattr(color, name, None)
    if fn is None:
        raise NotImplementedError(f"tinct.color.{name} is not available in this build")
    return fn


def lum_from_gray(gray: Tensor, space: str = "lab") -> Tensor:
    """Luminance of a neutral gray image.

    Args:
        gray: ``(..., H, W)`` gamma-encoded sRGB gray values in ``[0, 1]``.
        space: ``"lab"``, ``"luv"`` (L in ``[0, 100]``) or ``"yuv"`` (Y in ``[0, 1]``).

    Returns:
        Luminance, same shape and dtype as ``gray``.
    """
    _check_space(space)
    if space == "yuv":
        return gray.clone()
    y = color.srgb_to_linear(gray)
    eps = 216.0 / 24389.0
    f = torch.where(y > eps, y.clamp_min(eps) ** (1.0 / 3.0), (24389.0 / 27.0 * y + 16.0) / 116.0)
    return 116.0 * f - 16.0


def rgb_to_space(rgb: Tensor, space: str = "lab") -> Tensor:
    """SRGB to the model's colour space.

    Args:
        rgb: ``(..., 3, H, W)`` in ``[0, 1]``.
        space: ``"lab"``, ``"luv"`` or ``"yuv"``.

    Returns:
        ``(..., 3, H, W)``: luminance then the two chrominance channels.
    """
    _check_space(space)
    if space == "lab":
        return color.rgb_to_lab(rgb)
    return _space_fn(f"rgb_to_{space}")(rgb)


def space_to_rgb(x: Tensor, space: str = "lab") -> Tensor:
    """The model's colour space to sRGB, clipped into ``[0, 1]``.

    Args:
        x: ``(..., 3, H, W)`` luminance + chrominance.
        space: ``"lab"``, ``"luv"`` or ``"yuv"``.

    Returns:
        ``(..., 3, H, W)`` sRGB in ``[0, 1]``.
    """
    _check_space(space)
    if space == "lab":
        return lab_to_rgb_fast(x[..., 0:1, :, :], x[..., 1:3, :, :])
    return _space_fn(f"{space}_to_rgb")(x).clamp(0.0, 1.0)


def _f_inv_(t: Tensor) -> Tensor:
    """In-place inverse of the CIE ``f`` on ``t`` (a fresh tensor)."""
    lin = (t - 4.0 / 29.0) * (3.0 * _DELTA * _DELTA)
    cube = t * t * t
    return torch.where(t > _DELTA, cube, lin, out=t)


def _linear_rgb(lum: Tensor, ab: Tensor) -> Tensor:
    """CIELAB to *unclipped* linear sRGB, ``(..., 3, H, W)`` (in gamut: all within [0, 1]).

    Few full-size temporaries: the channels are written into one output in place.
    """
    fy = (lum + 16.0) / 116.0
    fx = _f_inv_(fy + ab[..., 0:1, :, :] / 500.0).mul_(_D65[0])
    fz = _f_inv_(fy - ab[..., 1:2, :, :] / 200.0).mul_(_D65[2])
    y = _f_inv_(fy)
    m = color.RGB_FROM_XYZ
    out = torch.empty(*lum.shape[:-3], 3, *lum.shape[-2:], dtype=lum.dtype, device=lum.device)
    for i in range(3):
        ch = out[..., i : i + 1, :, :]
        torch.mul(fx, m[i][0], out=ch)
        ch.add_(y, alpha=m[i][1]).add_(fz, alpha=m[i][2])
    return out


#: Slack on the sRGB cube of :func:`fit_chroma` (float rounding of neutral colours).
_GAMUT_SLACK = 1e-4


def _out_of_gamut(rgb: Tensor) -> Tensor:
    """``(..., H, W)`` True where unclipped linear ``rgb (..., 3, H, W)`` leaves the cube."""
    return ((rgb < -_GAMUT_SLACK) | (rgb > 1.0 + _GAMUT_SLACK)).any(dim=-3)


def _fitted(lum: Tensor, ab: Tensor, bad: Tensor, iters: int) -> tuple[Tensor, Tensor]:
    """The ``bad`` pixels' chroma shortened into the gamut: ``(ab (N, 2), linear rgb (N, 3))``.

    Bisection on the scale of ``(a, b)`` at each pixel's own L (see :func:`fit_chroma`).
    """
    ab_n = ab.movedim(-3, -1)[bad]  # (N, 2)
    lum_n = lum.movedim(-3, -1)[bad].to(ab.dtype).T[..., None]  # (1, N, 1): a 3-D "image"

    def linear(scale: Tensor) -> Tensor:  # (N, 3)
        return _linear_rgb(lum_n, (ab_n * scale).T[..., None])[..., 0].T

    lo = torch.zeros_like(ab_n[:, :1])
    hi = torch.ones_like(lo)
    for _ in range(iters):
        mid = (lo + hi) * 0.5
        ok = ~_out_of_gamut(linear(mid).T[..., None])[:, 0, None]
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    return ab_n * lo, linear(lo)


def fit_chroma(lum: Tensor, ab: Tensor, iters: int = 10) -> Tensor:
    """Shorten out-of-gamut chrominance until the colour fits sRGB, keeping L and hue.

    Clipping an out-of-gamut colour channel by channel (what :func:`space_to_rgb` does)
    changes its lightness: a saturated orange hint propagated onto a bright highlight
    comes out darker than the photo there. Here each such pixel's ``(a, b)`` is scaled
    by the largest factor in ``[0, 1]`` (bisection to ``2**-iters``) that keeps it in the
    gamut at its own L, so the result keeps the input's lightness and the colour's hue,
    and loses only the chroma the gamut cannot show. In-gamut pixels are unchanged.

    Args:
        lum: ``(..., 1, H, W)`` CIELAB L in ``[0, 100]``.
        ab: ``(..., 2, H, W)`` a, b.
        iters: Bisection steps on the out-of-gamut pixels.

    Returns:
        ``(..., 2, H, W)`` chrominance inside the sRGB gamut at ``lum``.
    """
    bad = _out_of_gamut(_linear_rgb(lum, ab))
    if not bool(bad.any()):
        return ab
    out = ab.movedim(-3, -1).clone()
    out[bad] = _fitted(lum, ab, bad, iters)[0]
    return out.movedim(-1, -3)


def lab_to_rgb_in_gamut(lum: Tensor, ab: Tensor) -> Tensor:
    """CIELAB to sRGB, out-of-gamut colour fitted by :func:`fit_chroma` (L kept), not clipped.

    The same as ``lab_to_rgb_fast(lum, fit_chroma(lum, ab))`` with one full-size conversion.

    Args:
        lum: ``(..., 1, H, W)`` L in ``[0, 100]``.
        ab: ``(..., 2, H, W)`` a, b.

    Returns:
        ``(..., 3, H, W)`` sRGB in ``[0, 1]``.
    """
    rgb = _linear_rgb(lum, ab)
    bad = _out_of_gamut(rgb)
    if bool(bad.any()):
        rgb = rgb.movedim(-3, -1)
        rgb[bad] = _fitted(lum, ab, bad, 10)[1]
        rgb = rgb.movedim(-1, -3)
    return _encode_srgb_(rgb)


def lab_to_rgb_fast(lum: Tensor, ab: Tensor) -> Tensor:
    """CIELAB to clipped sRGB with few full-size temporaries.

    Numerically the same as :func:`tinct.color.lab_to_rgb` (clip=True) up to
    float rounding; this version avoids stacking and ``einsum`` so it is
    cheaper at full resolution.

    Args:
        lum: ``(..., 1, H, W)`` L in ``[0, 100]``.
        ab: ``(..., 2, H, W)`` a, b.

    Returns:
        ``(..., 3, H, W)`` sRGB in ``[0, 1]``.
    """
    return _encode_srgb_(_linear_rgb(lum, ab))


def _encode_srgb_(out: Tensor) -> Tensor:
    """Linear RGB clipped to ``[0, 1]`` and sRGB-encoded, in place."""
    out.clamp_(0.0, 1.0)
    low = out * 12.92
    out.clamp_(min=0.0031308).pow_(1.0 / 2.4).mul_(1.055).sub_(0.055)
    return torch.where(low < 0.0031308 * 12.92, low, out, out=out)


def snap_chroma(lum: Tensor, chroma: Tensor, space: str = "lab", iters: int = 20) -> Tensor:
    """Move chrominance into the sRGB gamut at a fixed luminance.

    Iterates (space -> RGB, clip -> space) keeping the luminance fixed, as
    ideepcolor does for picked colours; each colour stops when its change is
    below 1 unit (Lab/Luv) or 0.01 (YUV), whatever the others do.

    Args:
        lum: ``(N,)`` luminance of each colour.
        chroma: ``(N, 2)`` chrominance.
        space: Colour space of both.
        iters: Maximum iterations.

    Returns:
        ``(N, 2)`` in-gamut chrominance.
    """
    _check_space(space)
    if space == "lab":
        lab = torch.cat((lum[:, None], chroma), 1)[..., None, None]
        return color.snap_to_gamut(lab)[:, 1:, 0, 0]
    tol = 0.01 if space == "yuv" else 1.0
    c = chroma.clone()
    done = torch.zeros(c.shape[0], dtype=torch.bool, device=c.device)
    for _ in range(iters):  # each colour stops on its own (independent of the others)
        if done.all():
            break
        x = torch.cat((lum[:, None], c), 1)[..., None, None]
        rgb = space_to_rgb(x, space)
        back = rgb_to_space(rgb, space)[:, 1:, 0, 0]
        change = (back - c).abs().amax(1)
        c = torch.where(done[:, None], c, back)
        done = done | (change < tol)
    return c
