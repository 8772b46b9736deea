"""Training losses for every target kind tinct's models use.

* joint ab bins (313): soft-encoded, class-rebalanced cross-entropy (Zhang 2016,
  reference §1.8);
* hard bins (529 grid, per-channel bins, hue/chroma): plain cross-entropy;
* regression: Huber, L1 or MSE;
* SIGGRAPH17's combination: cross-entropy + 10 x L1 on ab / 110.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinct.bins import encode_hard, encode_soft, gamut_bins
from tinct.models.targets import get_target
from tinct.training.config import (
    TrainConfig,
    _config_of,
)
from tinct.training.datasets import ImageBank
from tinct.training.sampling import Batch

__all__ = [
    "CHROMA_SCALE",
    "REGRESSION_LOSSES",
    "class_weights_from_bank",
    "compute_losses",
    "hard_cross_entropy",
    "pixel_weights",
    "regression_loss",
    "soft_cross_entropy",
]


def _weighted_mean(per_pixel: Tensor, weights: Tensor | None) -> Tensor:
    if weights is None:
        return per_pixel.mean()
    return (per_pixel * weights).sum() / weights.numel()


def pixel_weights(target: Tensor, class_weights: Tensor | None) -> Tensor | None:
    """Class-rebalancing weight of each pixel: the weight of its most likely bin.

    Args:
        target: ``(B, Q, H, W)`` soft target distribution.
        class_weights: ``(Q,)`` per-bin weights (expectation 1 under the prior),
            or None for no rebalancing.

    Returns:
        ``(B, H, W)`` weights, or None.
    """
    if class_weights is None:
        return None
    return class_weights.to(target.device, target.dtype)[target.argmax(1)]


def soft_cross_entropy(
    logits: Tensor,
    ab: Tensor,
    centres: Tensor,
    *,
    class_weights: Tensor | None = None,
    keep: Tensor | None = None,
    k: int = 5,
    sigma: float = 5.0,
) -> Tensor:
    """Cross-entropy against soft-encoded ground truth (Zhang et al. 2016).

    Args:
        logits: ``(B, Q, h, w)`` network logits.
        ab: ``(B, 2, H, W)`` ground-truth chrominance; average-pooled to ``(h, w)``.
        centres: ``(Q, 2)`` bin centres.
        class_weights: ``(Q,)`` rebalancing weights, or None.
        keep: ``(B,)`` per-image weights (0 drops near-gray images), or None.
        k: Nearest centres in the soft encoding.
        sigma: Gaussian width of the soft encoding, in ab units.

    Returns:
        Scalar loss.
    """
    ab_small = F.adaptive_avg_pool2d(ab, logits.shape[-2:])  # type: ignore[arg-type]
    with torch.no_grad():
        target = encode_soft(ab_small, centres, k=k, sigma=sigma)
        w = pixel_weights(target, class_weights)
        if keep is not None:
            kw = keep[:, None, None].to(target.dtype)
            w = kw.expand(target.shape[0], *target.shape[2:]) if w is None else w * kw
    per_pixel = -(target * F.log_softmax(logits.float(), dim=1)).sum(1)
    return _weighted_mean(per_pixel, w)


def hard_cross_entropy(
    logits: Tensor, ab: Tensor, centres: Tensor, *, keep: Tensor | None = None
) -> Tensor:
    """Cross-entropy against the nearest bin (SIGGRAPH17's 529 classes).

    Args:
        logits: ``(B, Q, h, w)``.
        ab: ``(B, 2, H, W)`` ground truth, average-pooled to ``(h, w)``.
        centres: ``(Q, 2)`` bin centres.
        keep: ``(B,)`` per-image weights, or None.

    Returns:
        Scalar loss.
    """
    ab_small = F.adaptive_avg_pool2d(ab, logits.shape[-2:])  # type: ignore[arg-type]
    idx = encode_hard(ab_small, centres)
    per_pixel = F.cross_entropy(logits.float(), idx, reduction="none")
    w = None if keep is None else keep[:, None, None].expand_as(per_pixel)
    return _weighted_mean(per_pixel, w)


REGRESSION_LOSSES = {
    "l1": lambda p, t: (p - t).abs().sum(1),
    "mse": lambda p, t: (p - t).pow(2).sum(1),
    "huber": lambda p, t: F.smooth_l1_loss(p, t, reduction="none", beta=1.0).sum(1),
}


def regression_loss(
    pred: Tensor,
    target: Tensor,
    kind: str = "l1",
    *,
    scale: float = 110.0,
    keep: Tensor | None = None,
) -> Tensor:
    """Per-pixel regression loss on chrominance divided by ``scale``.

    Args:
        pred: ``(B, C, h, w)`` predicted chrominance.
        target: ``(B, C, H, W)`` ground truth (resized to ``(h, w)`` by area).
        kind: ``"l1"``, ``"mse"`` or ``"huber"``.
        scale: Divisor bringing chrominance to about ``[-1, 1]`` (110 for ab).
        keep: ``(B,)`` per-image weights, or None.

    Returns:
        Scalar loss (summed over channels, averaged over pixels).

    Raises:
        ValueError: For an unknown ``kind``.
    """
    try:
        fn = REGRESSION_LOSSES[kind.lower()]
    except KeyError:
        raise ValueError(
            f"unknown regression loss {kind!r}; choose from {sorted(REGRESSION_LOSSES)}"
        ) from None
    if target.shape[-2:] != pred.shape[-2:]:
        target = F.adaptive_avg_pool2d(target, pred.shape[-2:])  # type: ignore[arg-type]
    per_pixel = fn(pred.float() / scale, target.float() / scale)
    w = None if keep is None else keep[:, None, None].expand_as(per_pixel)
    return _weighted_mean(per_pixel, w)


def class_weights_from_bank(
    bank: ImageBank, strength: float, *, samples: int = 512, seed: int = 0
) -> Tensor | None:
    """Rebalancing weights from the empirical 313-bin prior of the images.

    ``w = ((1 - 0.5) * p + 0.5 / Q) ** -strength``, normalised so the expected
    weight under the prior is 1 (reference §1.8 with ``alpha = strength``).

    Args:
        bank: Training images.
        strength: Exponent alpha (0 disables rebalancing).
        samples: Images used to estimate the prior.
        seed: Which images.

    Returns:
        ``(313,)`` weights or None when ``strength`` is 0.
    """
    if strength <= 0:
        return None
    from tinct.color import rgb_to_lab

    g = np.random.default_rng(seed)
    pick = g.choice(len(bank), size=min(samples, len(bank)), replace=False)
    centres = gamut_bins()
    counts = torch.zeros(313, dtype=torch.float64)
    for chunk in np.array_split(pick, max(1, len(pick) // 64)):
        rgb = torch.from_numpy(np.stack([bank.images[int(i)] for i in chunk]))
        rgb = rgb.permute(0, 3, 1, 2).float() / 255.0
        ab = torch.nn.functional.avg_pool2d(rgb_to_lab(rgb)[:, 1:], 4)
        counts += torch.bincount(encode_hard(ab, centres).flatten(), minlength=313).double()
    prior = counts / counts.sum()
    mix = 0.5 * prior + 0.5 / 313
    w = mix.pow(-strength)
    w = w / (prior * w).sum()
    return w.float()


#: Chrominance scale of each colour space (brings regression targets to about [-1, 1]).
CHROMA_SCALE = {"lab": 110.0, "luv": 100.0, "yuv": 0.6}


def _gamut_ce(logits: Tensor, batch: Batch, config: Any, class_weights: Tensor | None) -> Tensor:
    centres = gamut_bins(device=logits.device)
    return soft_cross_entropy(
        logits, batch.ab, centres, class_weights=class_weights, keep=batch.keep
    )


def _grid_ce(logits: Tensor, batch: Batch, config: Any, class_weights: Tensor | None) -> Tensor:
    from tinct import bins

    centres = bins.grid_bins(device=logits.device)
    return hard_cross_entropy(logits, batch.ab, centres, keep=batch.keep)


def _channel_ce(logits: Tensor, batch: Batch, config: Any, class_weights: Tensor | None) -> Tensor:
    from tinct import bins

    small = torch.nn.functional.adaptive_avg_pool2d(batch.ab, logits.shape[-2:])  # type: ignore[arg-type]
    k = config.bins_per_channel
    lo, hi = config.channel_range
    centres = bins.uniform_bins(k, lo, hi, device=logits.device).expand(2, k)
    idx = bins.encode_hard_channels(small, centres)
    ce = sum(
        F.cross_entropy(logits[:, j * k : (j + 1) * k].float(), idx[:, j], reduction="none")
        for j in range(2)
    )
    return (ce * batch.keep[:, None, None]).mean()


def _hue_chroma_ce(
    logits: Tensor, batch: Batch, config: Any, class_weights: Tensor | None
) -> Tensor:
    from tinct import bins
    from tinct.color import lab_to_lch

    dev = logits.device
    small = torch.nn.functional.adaptive_avg_pool2d(batch.ab, logits.shape[-2:])  # type: ignore[arg-type]
    k = config.bins_per_channel
    _lo, hi = config.channel_range
    lch = lab_to_lch(torch.cat((torch.zeros_like(small[:, :1]), small), 1))
    chroma, hue = lch[:, 1:2], lch[:, 2:3].remainder(2 * math.pi)
    hue_idx = bins.encode_hard_channels(hue, bins.hue_bins(k, device=dev)[None], period=2 * math.pi)
    chroma_idx = bins.encode_hard_channels(chroma, bins.chroma_bins(k, hi, device=dev)[None])
    hue_ce = F.cross_entropy(logits[:, :k].float(), hue_idx[:, 0], reduction="none")
    chroma_ce = F.cross_entropy(logits[:, k:].float(), chroma_idx[:, 0], reduction="none")
    # hue is undefined for gray pixels: weight it by chroma (Larsson et al.)
    hue_w = (chroma[:, 0] / 20.0).clamp(max=1.0)
    return ((hue_ce * hue_w + chroma_ce) * batch.keep[:, None, None]).mean()


#: The classification loss of each target, by :attr:`tinct.models.targets.Target.loss`.
CLASSIFICATION_LOSSES = {
    "soft_ce": _gamut_ce,
    "hard_ce": _grid_ce,
    "channel_ce": _channel_ce,
    "hue_chroma_ce": _hue_chroma_ce,
}


def _classification_loss(
    logits: Tensor, batch: Batch, config: Any, class_weights: Tensor | None
) -> Tensor:
    """Cross-entropy for the model's bin target (its :attr:`~tinct.models.targets.Target.loss`)."""
    target = get_target(config.target)
    if target.loss is None:
        raise ValueError(f"no classification loss for target {config.target!r}")
    return CLASSIFICATION_LOSSES[target.loss](logits, batch, config, class_weights)


def compute_losses(
    model: nn.Module, batch: Batch, centres: Tensor, class_weights: Tensor | None, cfg: TrainConfig
) -> dict[str, Tensor]:
    """Forward one batch and return the named loss terms (``"total"`` included).

    The recipe's ``ModelConfig.loss`` picks the terms: ``ce`` for the bin head
    (soft-encoded and rebalanced for the 313 gamut bins, hard for the others),
    ``l1`` / ``mse`` / ``huber`` for the regression head, weighted by
    ``cfg.regression_weight`` when both heads train together.
    """
    config = _config_of(model)
    out = model(batch.lum, batch.hint_ab, batch.hint_mask, batch.global_hint)
    loss = config.loss if config is not None else "ce+l1"
    parts = loss.split("+")
    terms: dict[str, Tensor] = {}
    if out.logits is not None and any(p.startswith("ce") or p.startswith("soft_ce") for p in parts):
        if config is None or get_target(config.target).gamut:
            terms["ce"] = soft_cross_entropy(
                out.logits, batch.ab, centres, class_weights=class_weights, keep=batch.keep
            )
        else:
            terms["ce"] = _classification_loss(out.logits, batch, config, class_weights)
    reg = [p for p in parts if p in ("l1", "mse", "huber")]
    if out.ab is not None and reg:
        scale = CHROMA_SCALE[config.color_space if config is not None else "lab"]
        weight = cfg.regression_weight if "ce" in terms else 1.0
        terms[reg[0]] = weight * regression_loss(
            out.ab, batch.ab, reg[0], scale=scale, keep=batch.keep
        )
    if not terms:
        raise ValueError(f"recipe loss {loss!r} matches none of the model's outputs")
    terms["total"] = sum(terms.values())  # type: ignore[assignment]
    return terms
