"""How hints and the network's own colour are combined after the network pass.

A hint-fusing model (``tinct-base``) blends its regression colour with the
propagated hints through a learned per-pixel gate,
and returns the terms of that blend (:class:`tinct.models.base.FusionTerms`).
Two things happen here, on the cached network output:

* :func:`refuse` puts a *decoded* colour (any decoder, temperature, MRF) in the
  place of the model's regression colour, so every decoding knob acts with
  hints too.
* :func:`hint_weights` (and :func:`tinct.engine.hint_decode.hint_shift`) treat the
  propagated hints as a distribution too: every pixel receives each hint's colour with a weight (the
  propagation of one indicator per hint, :mod:`tinct.affinity`), and the decoder
  and temperature decide how those colours compete. At ``T = 1`` with the mean
  it is plain propagation; a lower temperature lets the dominant hint win where
  two hints meet, and ``mode`` gives each pixel its strongest hint's colour.
* :func:`hint_reliability` / :func:`trust_propagation` fall back to plain
  propagation where the network's prior is unreliable. The gate was learned on
  photographs; on an unfamiliar domain (an H&E slide, a telescope image) it
  trusts a network that paints olive stains and amber stars. The hints tell
  how wrong the network is: the network's *automatic* colour (no hints) is
  compared with the hint colours under the hint patches, and when that error
  is large the gate opens fully to the propagated hints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tinct.engine.hint_raster import HintPatch, hint_influence, patch_owners
from tinct.models.base import FusionTerms

__all__ = [
    "MANY_HINTS",
    "MANY_HINTS_TRUST",
    "MATTING_FULL",
    "MATTING_UNTIL",
    "MAX_MIXED_HINTS",
    "MULTISCALE_FACTORS",
    "MULTISCALE_FROM",
    "MULTISCALE_FULL",
    "RELIABLE_ERROR",
    "UNRELIABLE_ERROR",
    "apply_trust",
    "hint_reliability",
    "hint_weights",
    "matting_share",
    "multiscale_share",
    "refuse",
    "trust_ceiling",
    "trust_propagation",
]

#: Coarser grids (relative to the fusion grid) whose propagations are averaged with
#: the fusion grid's when there are many hints: with hints a few pixels apart a
#: 3 x 3 affinity at one scale stops colour at every texture edge; solving also at
#: 1/2 and 3/4 of the grid and averaging interpolates between neighbouring hints
#: more smoothly (held-out training photos: +0.24 dB at 40 hints, +0.33 at 100;
#: with 10 hints it floods and costs 0.15 dB, so it is phased in by hint count).
MULTISCALE_FACTORS = (0.5, 0.75)
#: Hint count up to which only the fusion grid is used ...
MULTISCALE_FROM = 10
#: ... and from which the multi-scale average is used in full (linear in between).
MULTISCALE_FULL = 40

#: Up to this many hints they spread by the matting Laplacian (:mod:`tinct.affinity`),
#: from :data:`MATTING_UNTIL` on by Levin's averaging, blended in between (docs/engine.md).
MATTING_FULL = 10
MATTING_UNTIL = 30

#: Hints beyond this count are not given their own weight map (the propagated
#: colour is then used as it is, whatever the decoder and temperature).
MAX_MIXED_HINTS = 64

#: Mean ab error of the automatic colour under the hints up to which the
#: network gets its full trust (photographs: median about 12). Tuned, with the
#: two constants below, at 1, 10 and 100 hints on held-out training photographs
#: and the training splits of the H&E and telescope tiles (issue 15).
RELIABLE_ERROR = 10.0
#: Error from which only the propagated hints are used (H&E: median about 45).
UNRELIABLE_ERROR = 50.0
#: Full trust with one hint; from :data:`MANY_HINTS` hints on, the propagated
#: hints always keep at least ``1 - MANY_HINTS_TRUST`` of the gate: the more
#: hints, the better plain propagation is, and on photographs too a blend beats
#: the learned gate alone (+0.07 dB at 10 hints on held-out training photos).
MANY_HINTS = 10
MANY_HINTS_TRUST = 0.6


def hint_reliability(
    auto_ab: Tensor, patches: Sequence[HintPatch], net_size: tuple[int, int]
) -> Tensor:
    """Trust in the network per plane, from its automatic colour under the hints.

    Args:
        auto_ab: ``(B, 2, h, w)`` the network's colour without hints (model units).
        patches: Placed hints (network input coordinates).
        net_size: ``(height, width)`` of the network input.

    Returns:
        ``(B,)`` trust in ``[0, 1]``: the hint count's ceiling (1 for one hint,
        falling linearly to :data:`MANY_HINTS_TRUST` at :data:`MANY_HINTS` hints)
        while the mean error under the hints is at most :data:`RELIABLE_ERROR`,
        falling linearly to 0 at :data:`UNRELIABLE_ERROR`; 1 for planes without
        hints.
    """
    b, _, h, w = auto_ab.shape
    infl = hint_influence(patches, (h, w), h / net_size[0], b, 0.0)
    if infl is None:
        return auto_ab.new_ones(b)
    weight, target = (t.to(auto_ab) for t in infl)
    err = (auto_ab.float() - target).norm(dim=1, keepdim=True)
    mass = weight.sum((1, 2, 3))
    mean = (weight * err).sum((1, 2, 3)) / mass.clamp_min(1e-6)
    trust = (UNRELIABLE_ERROR - mean) / (UNRELIABLE_ERROR - RELIABLE_ERROR)
    trust = trust.clamp(0.0, 1.0) * trust_ceiling(len(patches))
    return torch.where(mass > 0, trust, torch.ones_like(trust))


def apply_trust(net: Any, auto_ab: Tensor, *, local: bool = False) -> None:
    """Open a network output's gate where the network is not trusted (in place).

    Also sets ``net.auto_ab`` and ``net.agreement``: the trust without the hint
    count's ceiling (how well the automatic colour agrees with the hints), which sets
    how cold the hints are decoded (:func:`tinct.engine.hint_decode.hint_shift`).

    Args:
        net: The hinted :class:`~tinct.engine.forward.NetOutput` (with fusion terms).
        auto_ab: ``(B, 2, h, w)`` the network's colour without hints.
        local: Local hints: the gate also stops at the hints' reach
            (:func:`tinct.engine.reach.hint_reach`).
    """
    from tinct.engine.reach import hint_reach

    trust = hint_reliability(auto_ab, net.patches, net.net_size)
    net.auto_ab = auto_ab
    net.agreement = (trust / trust_ceiling(len(net.patches))).clamp(max=1.0)
    mix = net.hint_mix if local else None
    reach = None if mix is None else hint_reach(mix[2], net.patches, net.net_size)
    net.fusion = trust_propagation(net.fusion, trust, reach)
    net.ab = refuse(net.fusion, net.fusion.own, net.ab_pull)


def trust_ceiling(count: int) -> float:
    """Most trust the network gets with ``count`` hints, in ``[MANY_HINTS_TRUST, 1]``."""
    if count <= 1:
        return 1.0
    step = (1.0 - MANY_HINTS_TRUST) * (count - 1) / (MANY_HINTS - 1)
    return max(MANY_HINTS_TRUST, 1.0 - step)


def trust_propagation(
    terms: FusionTerms, trust: Tensor, reach: Tensor | None = None
) -> FusionTerms:
    """Open the gate towards the propagated hints where the network is not trusted.

    Args:
        terms: The model's fusion terms (``(B, ...)`` maps).
        trust: ``(B,)`` trust in ``[0, 1]`` (1 = the learned gate as is).
        reach: Optional ``(B, 1, h', w')`` :func:`hint_reach` in ``[0, 1]``: beyond
            the hints' reach the network's own colour is kept (local hints).

    Returns:
        Terms with ``gate' = 1 - (1 - gate) * trust`` on planes that have hints
        (``gate > 0`` somewhere) and the correction scaled by ``trust``; both
        then multiplied by ``reach``.
    """
    t = trust.to(terms.gate).view(-1, 1, 1, 1)
    hinted = terms.gate.flatten(1).amax(1).view(-1, 1, 1, 1) > 0
    t = torch.where(hinted, t, torch.ones_like(t))
    gate = torch.where(hinted, 1 - (1 - terms.gate) * t, terms.gate)
    correction = terms.correction * t
    if reach is not None:
        r = reach.to(gate)
        if r.shape[-2:] != gate.shape[-2:]:
            r = torch.nn.functional.interpolate(
                r, size=gate.shape[-2:], mode="bilinear", align_corners=False
            )
        gate, correction = gate * r, correction * r
    return dataclasses.replace(terms, gate=gate, correction=correction)


def hint_weights(
    lum: Tensor, patches: Sequence[HintPatch], net_size: tuple[int, int]
) -> tuple[Tensor, Tensor, Tensor] | None:
    """How strongly each hint's colour reaches every pixel (:mod:`tinct.affinity`).

    With more than :data:`MULTISCALE_FROM` hints the weights are blended with their
    average over the grid and the coarser grids of :data:`MULTISCALE_FACTORS`
    (:func:`multiscale_share`).

    Args:
        lum: ``(B, 1, h, w)`` CIELAB L on the grid of the fusion terms.
        patches: Placed hints (network input coordinates), ``K`` of them.
        net_size: ``(height, width)`` of the network input.

    Returns:
        ``(weights (B, K, h, w) summing to 1 over K, colours (B, K, 2), lum)``, or
        ``None`` without hints or with more than :data:`MAX_MIXED_HINTS`. Blended by
        :func:`matting_share`; the matting rows' weights may be slightly negative.
    """
    found = _hint_weights_at(lum, patches, net_size)
    if found is None:
        return None
    weights, colours, _ = found

    def solve(grid: Tensor) -> Tensor:
        coarse = _hint_weights_at(grid, patches, net_size)
        assert coarse is not None  # the same patches as on the fusion grid
        return coarse[0]

    mixed = _across_grids(weights, lum, len(patches), solve)
    return mixed / mixed.sum(1, keepdim=True).clamp_min(1e-12), colours, lum


def matting_share(count: int) -> float:
    """Weight of the matting Laplacian's propagation for ``count`` hints, in ``[0, 1]``."""
    return min(1.0, max(0.0, (MATTING_UNTIL - count) / (MATTING_UNTIL - MATTING_FULL)))


def multiscale_share(count: int) -> float:
    """Weight of the multi-scale average for ``count`` hints, in ``[0, 1]``."""
    return min(1.0, max(0.0, (count - MULTISCALE_FROM) / (MULTISCALE_FULL - MULTISCALE_FROM)))


def _across_grids(
    first: Tensor, lum: Tensor, count: int, solve: Callable[[Tensor], Tensor]
) -> Tensor:
    """``first`` (solved on ``lum``'s grid) blended with its average over the coarse grids.

    ``solve(grid_lum)`` gives the same quantity on a coarser luminance grid; each result
    is resized back bilinearly and the average is weighted by :func:`multiscale_share`.
    """
    share = multiscale_share(count)
    if share == 0.0:
        return first
    h, w = lum.shape[-2:]
    solved = [first]
    for f in MULTISCALE_FACTORS:
        size = (max(4, round(h * f)), max(4, round(w * f)))
        coarse = solve(torch.nn.functional.interpolate(lum, size=size, mode="area"))
        solved.append(
            torch.nn.functional.interpolate(
                coarse.to(first), size=first.shape[-2:], mode="bilinear", align_corners=False
            )
        )
    return torch.lerp(first, torch.stack(solved).mean(0), share)


def _hint_weights_at(
    lum: Tensor, patches: Sequence[HintPatch], net_size: tuple[int, int]
) -> tuple[Tensor, Tensor, Tensor] | None:
    """:func:`hint_weights` on one grid (no multi-scale average)."""
    from tinct.levin_update import propagate_values_cached  # a hint edit reuses the LU

    k = len(patches)
    if k == 0 or k > MAX_MIXED_HINTS:
        return None
    b, _, h, w = lum.shape
    # grid pixels per network pixel (padding is at the end); a later hint on the same
    # pixels wins, as in the encoding
    owner = patch_owners(patches, h / net_size[0], (h, w))
    mask = owner >= 0
    values = np.zeros((h, w, k))
    rows, cols = np.nonzero(mask)
    values[rows, cols, owner[rows, cols]] = 1.0
    share = matting_share(k)
    out = torch.zeros(b, k, h, w)
    for j in range(b):
        grid = lum[j, 0].double().cpu().numpy()
        if share < 1.0:  # Levin's weights are convex (negatives are rounding)
            wts = torch.from_numpy(propagate_values_cached(grid, values, mask)).clamp_min(0.0)
            wts = wts / wts.sum(-1, keepdim=True).clamp_min(1e-12)
            out[j] = (1.0 - share) * wts.permute(2, 0, 1).float()
        if share > 0.0:  # affine: they sum to 1, and may dip below 0 where L is not linear
            wts = torch.from_numpy(propagate_values_cached(grid, values, mask, affinity="matting"))
            out[j] += share * wts.permute(2, 0, 1).float()
    colours = torch.stack([p.chroma.float().cpu() for p in patches], 1)  # (B, K, 2)
    return out.to(lum.device), colours.to(lum.device), lum


def mix_colour(mix: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """The propagated colour of a hint mixture: ``(B, 2, h, w)``, each pixel's weighted mean."""
    weights, colours, _ = mix
    return torch.einsum("bkhw,bkd->bdhw", weights, colours.to(weights))


def propagate_patches(
    lum: Tensor, patches: Sequence[HintPatch], net_size: tuple[int, int]
) -> Tensor:
    """The hints' colours propagated over ``lum (B, 1, h, w)`` (without per-hint weights).

    For many hints (more than :data:`MAX_MIXED_HINTS`), where one weight map
    per hint would cost too much: two channels, one factorisation per plane and
    grid, averaged over the grids as in :func:`hint_weights`.

    Returns:
        ``(B, 2, h, w)`` propagated ab.
    """
    ab = _propagate_patches_at(lum, patches, net_size)
    return _across_grids(
        ab, lum, len(patches), lambda grid: _propagate_patches_at(grid, patches, net_size)
    )


def _propagate_patches_at(
    lum: Tensor, patches: Sequence[HintPatch], net_size: tuple[int, int]
) -> Tensor:
    """:func:`propagate_patches` on one grid."""
    from tinct.levin import propagate_batch

    b, _, h, w = lum.shape
    infl = hint_influence(patches, (h, w), h / net_size[0], b, 0.0)
    assert infl is not None
    weight, target = infl
    return propagate_batch(lum, target.to(lum), weight.to(lum)).to(lum)


def refuse(
    terms: FusionTerms,
    ab: Tensor,
    pull: tuple[Tensor, Tensor] | None = None,
    shift: Tensor | None = None,
) -> Tensor:
    """Fuse a decoded colour in place of the model's own regression colour.

    Args:
        terms: The fusion terms (on the regression grid).
        ab: ``(B, 2, h', w')`` decoded colour (resized to the terms' grid).
        pull: ``(weight, target)`` of the hint patches on that grid, applied last.
        shift: Optional :func:`tinct.engine.hint_decode.hint_shift` added to the propagated colour.

    Returns:
        ``(B, 2, h, w)`` fused colour.
    """
    size = terms.own.shape[-2:]
    if ab.shape[-2:] != size:
        ab = torch.nn.functional.interpolate(ab, size=size, mode="bilinear", align_corners=False)
    if shift is not None:
        terms = dataclasses.replace(terms, propagated=terms.propagated + shift.to(ab))
    out = terms.fuse(ab)
    if pull is not None:
        out = torch.lerp(out, pull[1], pull[0])
    return out
