"""Training losses for every target kind tinct's models use.

* joint ab bins (313): soft-encoded, class-rebalanced cross-entropy (Zhang 2016,
  reference §1.8);
* hard bins (529 grid, per-channel bins, hue/chroma): plain cross-entropy;
* regression: Huber, L1 or MSE;
* SIGGRAPH17's combination: cross-entropy + 10 x L1 on ab / 110.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tinct.bins import encode_hard, encode_soft

__all__ = [
    "REGRESSION_LOSSES",
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
    ab_small = F.adaptive_avg_pool2d(ab, logits.shape[-2:])
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
    ab_small = F.adaptive_avg_pool2d(ab, logits.shape[-2:])
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
        target = F.adaptive_avg_pool2d(target, pred.shape[-2:])
    per_pixel = fn(pred.float() / scale, target.float() / scale)
    w = None if keep is None else keep[:, None, None].expand_as(per_pixel)
    return _weighted_mean(per_pixel, w)
