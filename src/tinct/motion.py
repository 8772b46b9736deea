"""Motion between consecutive planes on a low-resolution grid (torch, CPU-cheap).

Used by :mod:`tinct.engine.temporal` to keep colour where content persists. For each
pair of planes ``(previous, current)`` on the network's input grid (about
256 pixels on the long side):

1. **global translation** by phase correlation (Hann window, sub-pixel peak by
   a parabola through the neighbours), which catches pans of any size;
2. **local flow**: a coarse-to-fine dense Lucas-Kanade refinement (three
   pyramid levels, box-filtered structure tensors with a Tikhonov term, so
   flat regions keep the global motion), which follows zooms, rotations and
   moving objects of a few pixels per level;
3. **confidence**: the previous plane warped by the flow is compared with the
   current one; the local mean absolute error passes a Gaussian gate, and
   positions that came from outside the previous plane get zero. Moving
   edges, occlusions, new content and real luminance changes all show up as
   warping error, so colour is never carried across them;
4. **scene cut**: a plane where too little of the image is explained by
   motion (:data:`CUT_CONFIDENCE`).

Flows are *backward*: ``flow[:, :, y, x] = (dy, dx)`` says that the content
at ``(y, x)`` of the current plane was at ``(y + dy, x + dx)`` in the previous
plane, so :func:`warp` samples the previous plane there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tinct.upsample import box_filter

__all__ = [
    "CUT_CONFIDENCE",
    "GATE_SIGMA",
    "Motion",
    "estimate_motion",
    "phase_correlation",
    "pool_flow",
    "warp",
]

#: Gate width of the warping error, in gray units (``[0, 1]``): about 10/255.
GATE_SIGMA = 0.04
#: Largest noise level taken off the warping error (its first quartile over the plane).
NOISE_FLOOR_MAX = 0.03
#: A plane whose mean confidence is below this starts a new shot.
CUT_CONFIDENCE = 0.3
#: Pyramid levels and Lucas-Kanade iterations per level.
LEVELS = 3
ITERS = 3
#: Window radius of the structure tensor (pixels of each level).
LK_RADIUS = 3
#: Tikhonov term added to the structure tensor (squared gray units per pixel): in
#: regions without texture the flow stays at the global translation.
LK_REG = 1e-3


@dataclass
class Motion:
    """Motion from the previous plane to the current ones.

    Attributes:
        flow: ``(B, 2, h, w)`` backward flow ``(dy, dx)`` in pixels of the grid.
        confidence: ``(B, 1, h, w)`` in ``[0, 1]``: how well the warped previous
            plane explains the current one.
        cut: ``(B,)`` bool, a scene cut before each current plane.
        shift: ``(B, 2)`` global translation ``(dy, dx)`` from phase correlation.
    """

    flow: Tensor
    confidence: Tensor
    cut: Tensor
    shift: Tensor


def _grid(flow: Tensor) -> Tensor:
    """Normalised sampling grid for ``grid_sample`` from a backward flow."""
    _, _, h, w = flow.shape
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w)
    y = (ys + flow[:, 0]) * (2.0 / max(h - 1, 1)) - 1.0
    x = (xs + flow[:, 1]) * (2.0 / max(w - 1, 1)) - 1.0
    return torch.stack((x, y), -1)


def warp(x: Tensor, flow: Tensor, *, valid: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Sample ``x`` at ``position + flow`` (bilinear, borders replicated).

    Args:
        x: ``(B, C, h, w)`` the previous plane (any channels, e.g. gray or ab).
        flow: ``(B, 2, h, w)`` backward flow in pixels.
        valid: Also return where the sample lies inside ``x``.

    Returns:
        ``(B, C, h, w)`` warped ``x``; with ``valid``, also ``(B, 1, h, w)`` float
        mask (1 inside, 0 outside).
    """
    g = _grid(flow)
    out = F.grid_sample(x, g, mode="bilinear", padding_mode="border", align_corners=True)
    if not valid:
        return out
    inside = ((g.abs() <= 1.0 + 1e-6).all(-1)).to(x.dtype)[:, None]
    return out, inside


def phase_correlation(prev: Tensor, cur: Tensor) -> Tensor:
    """Global translation between planes by phase correlation.

    Args:
        prev: ``(B, 1, h, w)`` previous planes.
        cur: ``(B, 1, h, w)`` current planes.

    Returns:
        ``(B, 2)`` shift ``(dy, dx)`` with ``cur(y, x) ~ prev(y + dy, x + dx)``,
        sub-pixel, within half the plane size.
    """
    _, _, h, w = cur.shape
    win = torch.outer(torch.hann_window(h, periodic=False), torch.hann_window(w, periodic=False))
    win = win.to(cur)
    a = torch.fft.rfft2((prev - prev.mean((2, 3), keepdim=True)) * win)
    b = torch.fft.rfft2((cur - cur.mean((2, 3), keepdim=True)) * win)
    r = a * b.conj()
    r = r / r.abs().clamp_min(1e-9)
    corr = torch.fft.irfft2(r, s=(h, w))[:, 0]  # peak at (dy, dx) with prev(x + d) = cur(x)
    flat = corr.reshape(corr.shape[0], -1).argmax(1)
    py, px = flat // w, flat % w
    out = torch.empty(corr.shape[0], 2, dtype=cur.dtype, device=cur.device)
    rows = torch.arange(corr.shape[0], device=cur.device)
    for axis, (p, n) in enumerate(((py, h), (px, w))):
        lo = ((p - 1) % n, px) if axis == 0 else (py, (p - 1) % n)
        hi = ((p + 1) % n, px) if axis == 0 else (py, (p + 1) % n)
        c0 = corr[rows, py, px]
        cm, cp = corr[rows, lo[0], lo[1]], corr[rows, hi[0], hi[1]]
        den = cm - 2 * c0 + cp
        frac = torch.where(den.abs() > 1e-9, 0.5 * (cm - cp) / den, torch.zeros_like(den))
        v = p.to(cur.dtype) + frac.clamp(-0.5, 0.5)
        out[:, axis] = torch.where(v > n / 2, v - n, v)
    return out


def _gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """Central differences ``(d/dy, d/dx)`` with replicated borders."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gy = 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
    gx = 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2])
    return gy, gx


def _lk_refine(prev: Tensor, cur: Tensor, flow: Tensor, iters: int) -> Tensor:
    """Dense Lucas-Kanade updates of a backward flow on one pyramid level."""
    for _ in range(iters):
        w = warp(prev, flow)
        gy, gx = _gradients(0.5 * (w + cur))  # type: ignore[operator]
        it = w - cur  # type: ignore[operator]
        sxx = box_filter(gx * gx, LK_RADIUS) + LK_REG
        syy = box_filter(gy * gy, LK_RADIUS) + LK_REG
        sxy = box_filter(gx * gy, LK_RADIUS)
        sxt = box_filter(gx * it, LK_RADIUS)
        syt = box_filter(gy * it, LK_RADIUS)
        det = sxx * syy - sxy * sxy
        dx = -(syy * sxt - sxy * syt) / det
        dy = -(sxx * syt - sxy * sxt) / det
        step = torch.cat((dy, dx), 1).clamp(-2.0, 2.0)  # a level corrects a few pixels at most
        flow = flow + step
    return flow


def estimate_motion(prev: Tensor, cur: Tensor) -> Motion:
    """Backward flow, confidence and scene cuts between pairs of planes.

    Args:
        prev: ``(B, 1, h, w)`` previous planes, gray in ``[0, 1]``.
        cur: ``(B, 1, h, w)`` current planes (same grid).

    Returns:
        The :class:`Motion` of each pair.
    """
    prev, cur = prev.float(), cur.float()
    B, _, h, w = cur.shape
    shift = phase_correlation(prev, cur)
    pyr = [(prev, cur)]
    for _ in range(LEVELS - 1):
        p, c = pyr[-1]
        if min(p.shape[-2:]) < 32:
            break
        pyr.append((F.avg_pool2d(p, 2, ceil_mode=True), F.avg_pool2d(c, 2, ceil_mode=True)))
    flow = None
    for p, c in reversed(pyr):
        lh, lw = p.shape[-2:]
        if flow is None:
            scale = torch.tensor([lh / h, lw / w], dtype=cur.dtype, device=cur.device)
            flow = (shift * scale).view(B, 2, 1, 1).expand(B, 2, lh, lw).contiguous()
        else:
            sy, sx = lh / flow.shape[-2], lw / flow.shape[-1]
            flow = F.interpolate(flow, size=(lh, lw), mode="bilinear", align_corners=False)
            flow = flow * torch.tensor([sy, sx], dtype=flow.dtype, device=flow.device).view(
                1, 2, 1, 1
            )
        flow = _lk_refine(p, c, flow, ITERS)
    assert flow is not None
    warped, inside = warp(prev, flow, valid=True)
    err = box_filter((warped - cur).abs(), 2)
    # the error of well-matched content is the frames' noise: take it off (up to a limit)
    sub = err.reshape(B, -1)[:, ::7]
    floor = sub.kthvalue(max(1, sub.shape[1] // 4), dim=1).values.clamp(max=NOISE_FLOOR_MAX)
    err = (err - floor.view(B, 1, 1, 1)).clamp_(min=0.0)
    conf = torch.exp(-0.5 * (err / GATE_SIGMA) ** 2) * inside
    cut = conf.mean((1, 2, 3)) < CUT_CONFIDENCE
    return Motion(flow, conf, cut, shift)


def pool_flow(motion: Motion, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Flow and confidence resampled onto a coarser (or finer) grid.

    The flow is averaged and rescaled to the new pixel units; the confidence
    takes the *minimum* over each coarse cell, so a cell that straddles a
    motion edge or an occlusion is not trusted.

    Args:
        motion: Motion on the fine grid.
        size: ``(h, w)`` of the target grid.

    Returns:
        ``(flow (B, 2, *size), confidence (B, 1, *size))``.
    """
    h, w = motion.flow.shape[-2:]
    if (h, w) == tuple(size):
        return motion.flow, motion.confidence
    sy, sx = size[0] / h, size[1] / w
    if sy < 1 or sx < 1:
        flow = F.interpolate(motion.flow, size=size, mode="area")
    else:
        flow = F.interpolate(motion.flow, size=size, mode="bilinear", align_corners=False)
    flow = flow * torch.tensor([sy, sx], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
    if sy < 1 or sx < 1:
        conf = -F.adaptive_max_pool2d(-motion.confidence, size)
    else:
        conf = F.interpolate(motion.confidence, size=size, mode="bilinear", align_corners=False)
    return flow, conf
