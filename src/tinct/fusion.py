"""How hints and the network's own colour are combined after the network pass.

A hint-fusing model (``tinct-base``) blends its regression colour with the hints
propagated by Levin et al.'s optimisation through a learned per-pixel gate,
and returns the terms of that blend (:class:`tinct.models.base.FusionTerms`).
Two things happen here, on the cached network output:

* :func:`refuse` puts a *decoded* colour (any decoder, temperature, MRF) in the
  place of the model's regression colour, so every decoding knob acts with
  hints too.
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
from collections.abc import Sequence

import torch
from torch import Tensor

from tinct.hints import HintPatch, hint_influence
from tinct.models.base import FusionTerms

__all__ = ["RELIABLE_ERROR", "UNRELIABLE_ERROR", "hint_reliability", "refuse", "trust_propagation"]

#: Mean ab error of the automatic colour under the hints up to which the
#: network is fully trusted (photographs: about 18 on average). Tuned on
#: held-out training photographs and the training split of the H&E tiles.
RELIABLE_ERROR = 25.0
#: Error from which only the propagated hints are used (H&E: about 43).
UNRELIABLE_ERROR = 40.0


def hint_reliability(
    auto_ab: Tensor, patches: Sequence[HintPatch], net_size: tuple[int, int]
) -> Tensor:
    """Trust in the network per plane, from its automatic colour under the hints.

    Args:
        auto_ab: ``(B, 2, h, w)`` the network's colour without hints (model units).
        patches: Placed hints (network input coordinates).
        net_size: ``(height, width)`` of the network input.

    Returns:
        ``(B,)`` trust in ``[0, 1]``: 1 while the mean error under the hints is
        at most :data:`RELIABLE_ERROR`, falling linearly to 0 at
        :data:`UNRELIABLE_ERROR`; 1 for planes without hints.
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
    return torch.where(mass > 0, trust.clamp(0.0, 1.0), torch.ones_like(trust))


def trust_propagation(terms: FusionTerms, trust: Tensor) -> FusionTerms:
    """Open the gate towards the propagated hints where the network is not trusted.

    Args:
        terms: The model's fusion terms (``(B, ...)`` maps).
        trust: ``(B,)`` trust in ``[0, 1]`` (1 = the learned gate as is).

    Returns:
        Terms with ``gate' = 1 - (1 - gate) * trust`` on planes that have hints
        (``gate > 0`` somewhere) and the correction scaled by ``trust``.
    """
    t = trust.to(terms.gate).view(-1, 1, 1, 1)
    hinted = terms.gate.flatten(1).amax(1).view(-1, 1, 1, 1) > 0
    t = torch.where(hinted, t, torch.ones_like(t))
    gate = torch.where(hinted, 1 - (1 - terms.gate) * t, terms.gate)
    return dataclasses.replace(terms, gate=gate, correction=terms.correction * t)


def refuse(
    terms: FusionTerms, ab: Tensor, pull: tuple[Tensor, Tensor] | None = None
) -> Tensor:
    """Fuse a decoded colour in place of the model's own regression colour.

    Args:
        terms: The fusion terms (on the regression grid).
        ab: ``(B, 2, h', w')`` decoded colour (resized to the terms' grid).
        pull: ``(weight, target)`` of the hint patches on that grid, applied last.

    Returns:
        ``(B, 2, h, w)`` fused colour.
    """
    size = terms.own.shape[-2:]
    if ab.shape[-2:] != size:
        ab = torch.nn.functional.interpolate(ab, size=size, mode="bilinear", align_corners=False)
    out = terms.fuse(ab)
    if pull is not None:
        out = torch.lerp(out, pull[1], pull[0])
    return out
