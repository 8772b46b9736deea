"""The last step of the hint path: a model's refiner on the fused colour.

``tinct-base`` carries a small :class:`~tinct.models.hint_refiner.HintRefiner`
trained on the colours this engine fuses (:mod:`tinct.engine.fusion`,
:mod:`tinct.engine.hint_decode`). After :func:`tinct.engine.fusion.refuse` has
blended the decoded colour with the propagated hints, :func:`refine_fused` gives the
refiner the decoder features of the hinted pass, the three candidates (the decoded
colour, the propagated hints as decoded, the automatic colour) and where the hints
are, and re-applies the hint patches' pull on its output.

It applies with 1 to :data:`~tinct.engine.fusion.MAX_MIXED_HINTS` hints on an
untiled pass (where the engine keeps the hints' weight maps), with the
distribution decoders, without ``local_hints``, on planes where the network has any
trust (``NetOutput.agreement > 0``); anywhere else the fused colour is returned unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

from tinct.engine.hint_raster import encode_hints

__all__ = ["hint_cues", "refine_fused"]


def refine_fused(net: Any, fused: Tensor, decoded: Tensor, shift: Tensor | None) -> Tensor:
    """The refiner's colour in place of ``fused``, where the network output has one.

    Args:
        net: The hinted :class:`~tinct.engine.forward.NetOutput` (trust applied).
        fused: ``(B, 2, h, w)`` :func:`~tinct.engine.fusion.refuse`'s colour.
        decoded: ``(B, 2, h', w')`` the decoded colour that went into it.
        shift: The :func:`~tinct.engine.hint_decode.hint_shift` that went into it.

    Returns:
        ``(B, 2, h, w)`` refined ab (``fused`` itself when nothing applies).
    """
    head, terms = net.refiner, net.fusion
    if (
        head is None
        or terms is None
        or terms.features is None
        or net.hint_mix is None
        or net.auto_ab is None
        or net.agreement is None
    ):
        return fused
    size = fused.shape[-2:]
    if terms.features.shape[-2:] != size or net.auto_ab.shape[-2:] != size:
        return fused
    if decoded.shape[-2:] != size:
        decoded = F.interpolate(decoded, size=size, mode="bilinear", align_corners=False)
    prop = terms.propagated if shift is None else terms.propagated + shift.to(fused)
    cues = hint_cues(net, (int(size[0]), int(size[1])))
    with torch.inference_mode():
        out = head(terms.features, fused, decoded, prop, net.auto_ab, cues.to(fused))
    # where the network is not trusted at all (one far hint floods the picture) the
    # propagated hints are the answer, as the trust rule decided: no refining there
    trusted = (net.agreement > 0).to(out.device).view(-1, 1, 1, 1)
    out = torch.where(trusted, out, fused.to(out))
    if net.ab_pull is not None:
        out = torch.lerp(out, net.ab_pull[1].to(out), net.ab_pull[0].to(out))
    return out.to(fused.dtype)


def hint_cues(net: Any, size: tuple[int, int]) -> Tensor:
    """``(B, 6, h, w)``: gate, L / 100, hint coverage, log1p(distance) / 4, agreement, log(K) / 4.

    Args:
        net: The hinted network output (fusion terms, hint weights, agreement set).
        size: ``(h, w)`` of the fusion grid.
    """
    terms = net.fusion
    b = terms.gate.shape[0]
    _, mask = encode_hints(net.patches, net.net_size, b)
    cover = F.interpolate(mask.float(), size=size, mode="area").to(terms.gate)
    far = cover[0, 0].detach().cpu().numpy() < 0.5
    dist = ndimage.distance_transform_edt(far) if not far.all() else np.full(size, 1e3)
    dist_t = torch.from_numpy(np.log1p(dist) / 4).to(terms.gate).expand(b, 1, *size)
    lum = net.hint_mix[2].to(terms.gate) / 100.0
    agree = net.agreement.to(terms.gate).view(b, 1, 1, 1).expand(b, 1, *size)
    count = torch.full((b, 1, *size), math.log(max(1, len(net.patches))) / 4).to(terms.gate)
    return torch.cat((terms.gate, lum, cover, dist_t, agree, count), 1)
