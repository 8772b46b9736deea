"""Colorization by optimization (Levin, Lischinski & Weiss, SIGGRAPH 2004).

The classical baseline for hint-based colorization: neighbouring pixels with
similar luminance should have similar colours. Every pixel without a hint
takes the affinity-weighted average of the chrominance of its 3x3
neighbours,

    ab(r) = sum_s w_rs ab(s),   w_rs ~ exp(-(L_r - L_s)^2 / (2 sigma_r^2)),

with ``sigma_r^2`` the variance of L in the 3x3 window around ``r`` and the
weights of each pixel normalised to sum to 1; hint pixels keep their hint.
This is one sparse linear system per image (shared by the a and b channels),
solved directly with SuperLU in a nested-dissection order. Large images are solved at a reduced size
(at most ``max_pixels``, default 384 x 384) and the result is upsampled; the exact hints are
then put back.

:class:`~tinct.models.classical.LevinColorizer` wraps the solver as a
:class:`~tinct.models.ColorModel`
registered as ``levin``: it needs hints (without any it returns gray, ab = 0).

A ``cancel`` flag (``is_set()``; by default the enclosing
:func:`tinct.cancel.scope`'s) is checked before and after each factorisation,
so a cancelled batch stops after at most one solve (about 0.1-0.5 s at the
default ``max_pixels`` on a laptop CPU) with :class:`tinct.cancel.Cancelled`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import splu
from torch import Tensor

from tinct import affinity as _affinity
from tinct import cancel as _cancel

__all__ = [
    "levin_colorize",
    "propagate_batch",
    "propagate_values",
]


def levin_colorize(
    lum: np.ndarray,
    hint_ab: np.ndarray,
    hint_mask: np.ndarray,
    *,
    max_pixels: int = 384 * 384,
    sigma_scale: float = 0.1,
    min_variance: float = 0.02,
    prior_ab: np.ndarray | None = None,
    prior_weight: float | np.ndarray = 0.0,
    cancel: Any = None,
) -> np.ndarray:
    """Propagate hint colours over a gray image (Levin et al. 2004).

    Args:
        lum: ``(H, W)`` luminance, CIELAB L in ``[0, 100]`` (any luminance works;
            ``min_variance`` is in its squared units).
        hint_ab: ``(H, W, 2)`` chrominance of the hints (read where
            ``hint_mask`` is set).
        hint_mask: ``(H, W)`` bool, True at hint pixels.
        max_pixels: Images with more pixels are solved at a reduced size with
            the same aspect ratio, then upsampled bilinearly.
        sigma_scale: ``sigma_r^2 = sigma_scale * local variance``. With 1.0 an
            edge pixel gives its across-edge neighbours a weight of about 0.1
            whatever the contrast (the variance grows with the step), so
            colours bleed; 0.1 (default; best of 1.0 / 0.3 / 0.1 / 0.03 on 30
            BSDS500 images with 50 hints, ``benchmarks/levin_eval.py``) keeps
            strong edges tight.
        min_variance: Floor of ``sigma_r^2`` (flat areas), in squared L units.
        prior_ab: Optional ``(H, W, 2)`` prior chrominance (e.g. a network's
            prediction). With ``prior_weight`` lambda > 0 every free pixel solves
            ``(1 + lambda) ab(r) - sum_s w_rs ab(s) = lambda prior(r)``: hints
            propagate along similar luminance over a screening length of about
            ``1 / sqrt(lambda)`` pixels, beyond which the prior takes over
            (lambda = 0 is plain Levin et al.). Without hints the result is the
            prior smoothed along the same affinities.
        prior_weight: lambda, the strength of the prior (>= 0): a number or an
            ``(H, W)`` array of per-pixel strengths (e.g. the network's confidence).
        cancel: Object with ``is_set()`` checked around the solve; ``None`` =
            the enclosing :func:`tinct.cancel.scope`'s flag, if any.

    Returns:
        ``(H, W, 2)`` float64 chrominance: the hints at hint pixels and their
        propagation elsewhere; all zeros (gray) when there is no hint.

    Raises:
        ValueError: On inconsistent shapes.
        tinct.cancel.Cancelled: ``cancel`` was set.
    """
    with _cancel.scope(cancel):
        return _levin(
            lum, hint_ab, hint_mask, max_pixels, sigma_scale, min_variance, prior_ab, prior_weight
        )


def _levin(
    lum: np.ndarray,
    hint_ab: np.ndarray,
    hint_mask: np.ndarray,
    max_pixels: int,
    sigma_scale: float,
    min_variance: float,
    prior_ab: np.ndarray | None,
    prior_weight: float | np.ndarray,
) -> np.ndarray:
    lum = np.asarray(lum, dtype=np.float64)
    hint_ab = np.asarray(hint_ab, dtype=np.float64)
    mask = np.asarray(hint_mask, dtype=bool)
    if lum.ndim != 2 or hint_ab.shape != (*lum.shape, 2) or mask.shape != lum.shape:
        raise ValueError(
            f"expected lum (H, W), hint_ab (H, W, 2), hint_mask (H, W); got {lum.shape}, "
            f"{hint_ab.shape}, {mask.shape}"
        )
    h, w = lum.shape
    weight = np.asarray(prior_weight, dtype=np.float64)
    if weight.ndim not in (0, 2) or (weight.ndim == 2 and weight.shape != (h, w)):
        raise ValueError(f"prior_weight must be a number or (H, W) = {(h, w)}, got {weight.shape}")
    if not np.isfinite(weight).all() or (weight < 0).any():
        raise ValueError("prior_weight must be finite and >= 0")
    prior = None
    if prior_ab is not None and weight.max() > 0:
        prior = np.asarray(prior_ab, dtype=np.float64)
        if prior.shape != (h, w, 2):
            raise ValueError(f"prior_ab must be (H, W, 2) = {(h, w, 2)}, got {prior.shape}")
    if not mask.any() and prior is None:
        return np.zeros((h, w, 2))
    if h * w > max_pixels:
        scale = np.sqrt(max_pixels / (h * w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        small_l, small_ab, small_mask = _downscale(lum, hint_ab, mask, size)
        small_prior = None if prior is None else _resize_ab(prior, size)
        small_w = weight if weight.ndim == 0 else _resize_ab(weight[..., None], size)[..., 0]
        ab = _solve(small_l, small_ab, small_mask, sigma_scale, min_variance, small_prior, small_w)
        if prior is not None:  # upsample the correction, keep the prior's full-res detail
            ab = prior + _upscale(ab - small_prior, (h, w))
        else:
            ab = _upscale(ab, (h, w))
        ab[mask] = hint_ab[mask]
        return ab
    return _solve(lum, hint_ab, mask, sigma_scale, min_variance, prior, weight)


def propagate_values(
    lum: np.ndarray,
    values: np.ndarray,
    mask: np.ndarray,
    *,
    max_pixels: int = 384 * 384,
    sigma_scale: float = 0.1,
    min_variance: float = 0.02,
    screen: float = 0.0,
    affinity: str = "levin",
) -> np.ndarray:
    """Propagate any number of channels from the hint pixels (one factorisation).

    The same optimisation as :func:`levin_colorize`, for ``C`` channels at once
    and without a prior: e.g. one indicator channel per hint gives every pixel
    the convex weights with which the hints' colours reach it.

    Args:
        lum: ``(H, W)`` luminance (CIELAB L in ``[0, 100]``).
        values: ``(H, W, C)`` values, read where ``mask`` is set.
        mask: ``(H, W)`` bool, True at hint pixels (at least one).
        max_pixels: Larger images are solved at reduced size and upsampled.
        sigma_scale: Edge sensitivity (see :func:`levin_colorize`).
        min_variance: Floor of the affinity variance (see :func:`levin_colorize`).
        screen: Pull of every free pixel towards 0, ``>= 0`` (a screened
            propagation: ``(1 + screen) x_i = sum_j w_ij x_j``). 0 = none: the values
            are convex combinations of the hints' everywhere; with a pull, a hint's
            reach fades with distance and across luminance edges (about
            ``1 / sqrt(screen)`` pixels of flat image).
        affinity: ``"levin"`` (this module's averaging) or ``"matting"`` (colour
            locally affine in luminance; :mod:`tinct.affinity`). With
            ``"matting"`` the values are affine, not convex, combinations of the
            hints' (weights summing to 1, possibly slightly outside ``[0, 1]``).

    Returns:
        ``(H, W, C)`` float64 propagated values.
    """
    if not screen >= 0:
        raise ValueError(f"screen must be >= 0, got {screen}")
    lum = np.asarray(lum, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if (
        lum.ndim != 2
        or values.ndim != 3
        or values.shape[:2] != lum.shape
        or mask.shape != lum.shape
    ):
        raise ValueError(
            f"expected lum (H, W), values (H, W, C), mask (H, W); got {lum.shape}, "
            f"{values.shape}, {mask.shape}"
        )
    if not mask.any():
        raise ValueError("propagate_values needs at least one hint pixel")
    h, w = lum.shape
    if h * w > max_pixels:
        scale = np.sqrt(max_pixels / (h * w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        small_l, small_v, small_m = _downscale(lum, values, mask, size)
        small = _solve(
            small_l, small_v, small_m, sigma_scale, min_variance, screen=screen, affinity=affinity
        )
        out = _upscale(small, (h, w))
        out[mask] = values[mask]
        return out
    return _solve(lum, values, mask, sigma_scale, min_variance, screen=screen, affinity=affinity)


@torch.no_grad()
def propagate_batch(
    lum: Tensor,
    hint_ab: Tensor,
    hint_mask: Tensor,
    *,
    prior_ab: Tensor | None = None,
    prior_weight: float | Tensor = 0.0,
    cancel: Any = None,
    **kwargs: Any,
) -> Tensor:
    """:func:`levin_colorize` for each image of a batch of tensors (CPU, scipy).

    Args:
        lum: ``(B, 1, H, W)`` L in ``[0, 100]``.
        hint_ab: ``(B, 2, H, W)`` hint chrominance.
        hint_mask: ``(B, 1, H, W)``; > 0.5 at hint pixels.
        prior_ab: Optional ``(B, 2, H, W)`` prior chrominance.
        prior_weight: Strength of the prior (see :func:`levin_colorize`): a
            number, or ``(B, 1, H, W)`` per-pixel strengths (>= 0).
        cancel: Object with ``is_set()`` checked before and after each image's
            solve (see :func:`levin_colorize`).
        **kwargs: ``max_pixels``, ``sigma_scale``, ``min_variance``.

    Returns:
        ``(B, 2, H, W)`` float32 ab on ``lum``'s device; zeros for images
        without hints (and without a prior).
    """
    out = torch.zeros(lum.shape[0], 2, *lum.shape[-2:])
    for i in range(lum.shape[0]):
        mask = (hint_mask[i, 0] > 0.5).cpu().numpy()
        prior = None if prior_ab is None else prior_ab[i].float().cpu().double()
        if not mask.any() and prior is None:
            continue
        weight = prior_weight
        if isinstance(weight, Tensor):
            weight = weight[i, 0].float().cpu().double().numpy()  # type: ignore[assignment]
        ab = levin_colorize(
            lum[i, 0].float().cpu().double().numpy(),
            hint_ab[i].float().cpu().double().permute(1, 2, 0).numpy(),
            mask,
            prior_ab=None if prior is None else prior.permute(1, 2, 0).numpy(),
            prior_weight=weight,  # type: ignore[arg-type]
            cancel=cancel,
            **kwargs,
        )
        out[i] = torch.from_numpy(ab).permute(2, 0, 1)
    return out.to(lum.device)


def _solve(
    lum: np.ndarray,
    hint_ab: np.ndarray,
    mask: np.ndarray,
    scale: float,
    min_var: float,
    prior: np.ndarray | None = None,
    prior_weight: float | np.ndarray = 0.0,
    screen: float = 0.0,
    affinity: str = "levin",
) -> np.ndarray:
    """Solve the sparse system directly (LU in nested-dissection order).

    ``hint_ab`` may hold any number of channels ``(H, W, C)``: one factorisation
    propagates them all (``C = 2`` with a prior); returns ``(H, W, C)``. ``screen``
    pulls every free pixel towards 0 (see :func:`propagate_values`); ``affinity`` picks
    the rows (:func:`tinct.affinity.rows`).
    """
    h, w = lum.shape
    a, rhs = _system(lum, hint_ab, mask, scale, min_var, affinity)
    if screen > 0:
        a = a + sp.diags(screen * (~mask.reshape(-1)).astype(np.float64), format="csc")
    weight = np.broadcast_to(np.asarray(prior_weight, dtype=np.float64), (h, w)).reshape(-1)
    if prior is not None and weight.max() > 0:
        free = ~mask.reshape(-1) * weight
        a = a + sp.diags(free, format="csc")
        rhs = rhs + free[:, None] * prior.reshape(-1, 2)
    lu, perm = _factorise(a, h, w)
    x = np.empty_like(rhs)
    x[perm] = lu.solve(rhs[perm])
    return x.reshape(h, w, -1)


def _factorise(a: sp.spmatrix, h: int, w: int) -> tuple[Any, np.ndarray]:
    """LU of the ``h x w`` grid system ``a`` in nested-dissection order: ``(lu, order)``.

    Checks the cancel flag before and after (the factorisation is the slow part).
    """
    perm = _nested_dissection(h, w)
    _cancel.check()
    # Levin's rows are diagonally dominant and the matting Laplacian's free block is
    # symmetric positive definite (hint rows are identity rows): diagonal pivots are stable.
    lu = splu(
        a[perm][:, perm].tocsc(),
        permc_spec="NATURAL",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )
    _cancel.check()
    return lu, perm


def _nested_dissection(h: int, w: int, leaf: int = 8) -> np.ndarray:
    """Fill-reducing order of an ``h x w`` grid (:func:`tinct.affinity.nested_dissection`)."""
    return _affinity.nested_dissection(h, w, leaf)


def _system(
    lum: np.ndarray,
    hint_ab: np.ndarray,
    mask: np.ndarray,
    scale: float,
    min_var: float,
    affinity: str = "levin",
) -> tuple[sp.csc_matrix, np.ndarray]:
    """Rows of :func:`tinct.affinity.rows`, identity rows at hints; right-hand sides ``(N, C)``."""
    h, w = lum.shape
    n = h * w
    free = _affinity.rows(lum, affinity, sigma_scale=scale, min_variance=min_var)
    flat = mask.reshape(-1)
    a = (sp.diags((~flat).astype(np.float64)) @ free + sp.diags(flat.astype(np.float64))).tocsc()
    a.eliminate_zeros()
    rhs = np.where(mask[..., None], hint_ab, 0.0).reshape(n, -1)
    return a, rhs


def _downscale(
    lum: np.ndarray, hint_ab: np.ndarray, mask: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-average L; average hint ab over the hint pixels of each coarse cell."""
    t = torch.from_numpy
    m = t(mask.astype(np.float64))[None, None]
    ab = t(np.where(mask[..., None], hint_ab, 0.0)).permute(2, 0, 1)[None]
    small_l = torch.nn.functional.adaptive_avg_pool2d(t(lum)[None, None], size)[0, 0]
    small_m = torch.nn.functional.adaptive_avg_pool2d(m, size)
    small_ab = torch.nn.functional.adaptive_avg_pool2d(ab, size) / small_m.clamp_min(1e-12)
    return (
        small_l.numpy(),
        small_ab[0].permute(1, 2, 0).numpy(),
        (small_m[0, 0] > 0).numpy(),
    )


def _resize_ab(ab: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(ab)).permute(2, 0, 1)[None]
    x = torch.nn.functional.adaptive_avg_pool2d(x, size)
    return x[0].permute(1, 2, 0).numpy().copy()


def _upscale(ab: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(ab)).permute(2, 0, 1)[None]
    x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x[0].permute(1, 2, 0).numpy().copy()
