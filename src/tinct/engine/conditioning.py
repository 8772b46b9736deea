"""Conditioning of a network's output on what the network itself did not see.

* Hints: distribution models get their probabilities multiplied by a Gaussian
  around the hint colour, weighted by the hint's spatial influence;
* a reference image: SIGGRAPH17-style chrominance histograms (global hint input,
  or an element-wise prior on the distribution, Melas-Kyriazi & Han).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tinct import spaces as pipeline
from tinct.engine import hint_raster as _raster
from tinct.models.info import ModelInfo, log_probs, net_shape
from tinct.upsample import resize

__all__ = [
    "HINT_AB_SIGMA",
    "channel_histograms",
    "condition_on_hints",
    "hint_spread",
    "reference_histogram",
    "reweight",
]

#: Width (ab units) of the Gaussian that boosts bins near a hint colour.
HINT_AB_SIGMA = 10.0


def reference_histogram(reference: Any, centres: Tensor) -> Tensor:
    """Chrominance histogram of a colour reference image over bin centres.

    The reference is resized so its long side is 256, converted to CIELAB,
    its ab average-pooled over 4 x 4 blocks and hard-assigned to the nearest
    centre (SIGGRAPH17's global hint statistics).

    Args:
        reference: ``(H, W, 3|4)`` RGB(A) array (uint8, uint16 or float in ``[0, 1]``).
        centres: ``(Q, 2)`` ab bin centres.

    Returns:
        ``(Q,)`` float32 histogram summing to 1.

    Raises:
        ValueError: A reference that is not a colour image.
    """
    from tinct import bins

    rgb = _reference_rgb(reference)
    ab = pipeline.rgb_to_space(rgb, "lab")[:, 1:]
    if min(ab.shape[-2:]) >= 4:
        ab = F.avg_pool2d(ab, 4)
    idx = bins.encode_hard(ab, centres.float().cpu()).flatten()
    hist = torch.bincount(idx, minlength=centres.shape[0]).float()
    return hist / hist.sum()


def _reference_rgb(reference: Any) -> Tensor:
    """A reference image as ``(1, 3, h, w)`` float RGB with the long side 256."""
    import numpy as np

    a = np.asarray(reference)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise ValueError(f"reference must be an (H, W, 3|4) colour image, got shape {a.shape}")
    if a.dtype == np.uint8:
        rgb = torch.from_numpy(np.array(a[..., :3])).float() / 255.0
    elif a.dtype == np.uint16:
        rgb = torch.from_numpy(a[..., :3].astype(np.float32)) / 65535.0
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("reference contains NaN or infinite values")
        rgb = torch.from_numpy(a[..., :3].astype(np.float32)).clamp(0.0, 1.0)
    else:
        raise TypeError(f"reference dtype {a.dtype} is not supported")
    rgb = rgb.permute(2, 0, 1)[None]
    return resize(rgb, net_shape(rgb.shape[-2:], 256))


def condition_on_hints(logp: Tensor, influence: tuple[Tensor, Tensor], centres: Tensor) -> Tensor:
    """Multiply joint-bin probabilities by a Gaussian around the hint colour, weighted spatially.

    Args:
        logp: ``(B, Q, h, w)`` log-probabilities over joint ab bins (normalised).
        influence: ``(weight (B, 1, h, w) in [0, 1], target ab (B, 2, h, w))``.
        centres: ``(Q, 2)`` ab bin centres.

    Returns:
        ``(B, Q, h, w)`` conditioned log-probabilities. Only the pixels the hints
        reach (weight > 0) are computed; elsewhere the input is returned as it is
        (for a model that sees its hints as input, that is only their patches).
    """
    weight, target = influence
    b, y, x = (weight[:, 0] > 0).nonzero(as_tuple=True)
    if len(b) == 0:
        return logp
    c = centres.to(logp.device, logp.dtype)
    wt = weight[b, 0, y, x].to(logp.dtype)[:, None]  # (P, 1)
    d2 = (target[b, :, y, x].to(logp.dtype)[:, None] - c[None]).pow(2).sum(-1)  # (P, Q)
    factor = (1.0 - wt) + wt * torch.exp(-d2 / (2 * HINT_AB_SIGMA**2))
    out = logp.clone()
    lp = logp.permute(0, 2, 3, 1)[b, y, x]  # (P, Q)
    out.permute(0, 2, 3, 1)[b, y, x] = F.log_softmax(lp + torch.log(factor.clamp_min(1e-12)), 1)
    return out


def channel_histograms(reference: Any, centres: Tensor, info: ModelInfo) -> Tensor:
    """Per-channel histograms of a reference for models with two 1-D distributions.

    Args:
        reference: ``(H, W, 3|4)`` colour image.
        centres: ``(2, K)`` bin centres (chroma channels, or hue then chroma).
        info: The model (its colour space and target).

    Returns:
        ``(2 * K,)`` float32: one histogram per channel, each summing to 1.
    """
    rgb = _reference_rgb(reference)
    space = info.target.histogram_space(info.space)
    ch = pipeline.rgb_to_space(rgb, space)[:, 1:]
    if min(ch.shape[-2:]) >= 4:
        ch = F.avg_pool2d(ch, 4)
    return info.target.histograms(ch[0, 0].flatten(), ch[0, 1].flatten(), centres)


def reweight(logp: Tensor, hist: Tensor, info: ModelInfo) -> Tensor:
    """Element-wise product of the distribution with a (floored) reference histogram.

    Joint bins use one histogram; per-channel targets one per channel (each
    channel's distribution is renormalised on its own).
    """
    groups = info.target.histogram_groups
    prior = hist.view(groups, -1).to(logp.device)
    prior = prior + 1e-3 / prior.shape[1]
    prior = prior / prior.sum(1, keepdim=True)
    return log_probs(logp + torch.log(prior).reshape(1, -1, 1, 1), info)


def hint_spread(patches: Sequence[_raster.HintPatch], scale: float) -> float:
    """Falloff for models that do not see hints: about 2 patch sides, at least 2 pixels."""
    side = max(p.side for p in patches) * scale
    return max(2.0, 2.0 * side)
