"""Evaluation metrics for colorization.

Inputs may be numpy arrays or torch tensors; results are Python floats (or a
numpy array for per-channel metrics). Layout conventions:

* RGB images: numpy ``(..., H, W, 3)`` (channel last, as read from files) or
  torch ``(..., 3, H, W)`` (channel third from the end). ``uint8`` values are
  on a 0..255 scale; floating values are taken to be in ``[0, 1]``.
* Chrominance (ab, UV): numpy ``(..., H, W, 2)`` or torch ``(..., 2, H, W)``
  unless ``channel_axis`` says otherwise.

Everything is computed in float64 on the CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tinct.bins import uniform_bins

__all__ = [
    "ab_rmse",
    "auc_ab",
    "bin_accuracy",
    "colourfulness",
    "false_colour_rate",
    "psnr",
    "saturation_difference",
]

ArrayLike = Any  # numpy array or torch tensor


def _channel_last(x: ArrayLike, channel_axis: int | None) -> np.ndarray:
    """Float64 numpy array with the channel axis moved last."""
    if isinstance(x, torch.Tensor):
        axis = -3 if channel_axis is None else channel_axis
        arr = x.detach().cpu().numpy()
    else:
        axis = -1 if channel_axis is None else channel_axis
        arr = np.asarray(x)
    return np.moveaxis(arr, axis, -1)


def _rgb255(x: ArrayLike, channel_axis: int | None = None) -> np.ndarray:
    """RGB as float64 on a 0..255 scale, channel last."""
    arr = _channel_last(x, channel_axis)
    if arr.shape[-1] != 3:
        raise ValueError(f"expected 3 colour channels, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        return arr.astype(np.float64)
    return arr.astype(np.float64) * 255.0


def psnr(
    pred: ArrayLike,
    target: ArrayLike,
    *,
    data_range: float | None = None,
    channel_axis: int | None = None,
) -> float:
    """Peak signal-to-noise ratio over the whole image (all pixels and channels).

    The protocol of the SIGGRAPH17 evaluation: RGB uint8, peak 255, one MSE
    over the whole image.

    Args:
        pred: Predicted RGB, ``(H, W, 3)`` numpy (or ``(3, H, W)`` torch), uint8
            0..255 or float in ``[0, 1]``.
        target: Reference RGB, same shape and dtype kind as ``pred``.
        data_range: Peak value; default 255 for integer input, 1 for float.
        channel_axis: Override the channel axis (default: see module doc).

    Returns:
        PSNR in dB; ``inf`` for identical images.

    Raises:
        ValueError: If the shapes differ.
    """
    p = _channel_last(pred, channel_axis)
    t = _channel_last(target, channel_axis)
    if p.shape != t.shape:
        raise ValueError(f"shape mismatch: {p.shape} vs {t.shape}")
    if data_range is None:
        data_range = 255.0 if np.issubdtype(p.dtype, np.integer) else 1.0
    mse = float(np.mean((p.astype(np.float64) - t.astype(np.float64)) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def _ab_error(
    pred_ab: ArrayLike, true_ab: ArrayLike, channel_axis: int | None
) -> tuple[np.ndarray, np.ndarray]:
    p = _channel_last(pred_ab, channel_axis).astype(np.float64)
    t = _channel_last(true_ab, channel_axis).astype(np.float64)
    if p.shape != t.shape:
        raise ValueError(f"shape mismatch: {p.shape} vs {t.shape}")
    return np.sqrt(((p - t) ** 2).sum(-1)), t


def ab_rmse(pred_ab: ArrayLike, true_ab: ArrayLike, *, channel_axis: int | None = None) -> float:
    """Root-mean-square Euclidean chrominance error.

    Args:
        pred_ab: Predicted chrominance, ``(..., H, W, 2)`` numpy or
            ``(..., 2, H, W)`` torch, e.g. CIELAB a, b.
        true_ab: Reference chrominance, same shape.
        channel_axis: Override the channel axis.

    Returns:
        ``sqrt(mean over pixels of |pred - true|^2)``, in the input's units.
    """
    err, _ = _ab_error(pred_ab, true_ab, channel_axis)
    return float(np.sqrt(np.mean(err**2)))


def auc_ab(
    pred_ab: ArrayLike,
    true_ab: ArrayLike,
    max_thresh: float = 150.0,
    weights: ArrayLike | None = None,
    *,
    centres: ArrayLike | None = None,
    channel_axis: int | None = None,
) -> float:
    """Area under the cumulative ab-error curve (Zhang et al. 2016, Table 1).

    The curve is the fraction of pixels whose Euclidean ab error is within a
    threshold, for thresholds 0..``max_thresh``; the area is normalised to
    ``[0, 1]`` (multiply by 100 for the paper's numbers). It is computed in
    closed form, ``mean(clip(1 - err / max_thresh, 0, 1))``, i.e. the limit of
    an infinitely fine threshold sweep.

    Args:
        pred_ab: Predicted ab, ``(..., H, W, 2)`` numpy or ``(..., 2, H, W)`` torch.
        true_ab: Reference ab, same shape.
        max_thresh: Largest threshold (150 in the paper).
        weights: Optional pixel weights for the class-rebalanced variant:
            either per-pixel, shaped like the error map ``(..., H, W)``, or per
            bin ``(Q,)`` together with ``centres``, in which case each pixel
            gets the weight of the bin nearest to its true ab (e.g. the
            inverse prior, or :func:`tinct.bins.rebalance_weights`).
        centres: ``(Q, 2)`` bin centres, needed for per-bin ``weights``.
        channel_axis: Override the channel axis.

    Returns:
        AuC in ``[0, 1]``.
    """
    err, t = _ab_error(pred_ab, true_ab, channel_axis)
    score = np.clip(1.0 - err / float(max_thresh), 0.0, 1.0)
    if weights is None:
        return float(score.mean())
    w = np.asarray(
        weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else weights,
        dtype=np.float64,
    )
    if centres is not None:
        c = np.asarray(
            centres.detach().cpu().numpy() if isinstance(centres, torch.Tensor) else centres,
            dtype=np.float64,
        )
        flat = t.reshape(-1, t.shape[-1])
        idx = np.empty(flat.shape[0], dtype=np.int64)
        for s in range(0, flat.shape[0], 1 << 15):
            d = ((flat[s : s + (1 << 15), None, :] - c[None]) ** 2).sum(-1)
            idx[s : s + (1 << 15)] = d.argmin(1)
        w = w[idx].reshape(err.shape)
    if w.shape != err.shape:
        raise ValueError(f"weights shape {w.shape} does not match the error map {err.shape}")
    return float((w * score).sum() / w.sum())


def bin_accuracy(
    pred: ArrayLike,
    target: ArrayLike,
    centres: ArrayLike | None = None,
    *,
    channel_axis: int | None = None,
) -> np.ndarray:
    """Per-channel bin accuracy (Hwang & Zhou): fraction of pixels in the right bin.

    Each channel is quantised on its own 1-D bins (nearest centre; ties go to the
    upper bin, i.e. bins are half-open ``[lo, hi)``) and the
    fraction of pixels where prediction and reference fall into the same bin
    is reported per channel.

    Args:
        pred: Predicted chrominance, ``(..., H, W, C)`` numpy or ``(..., C, H, W)`` torch.
        target: Reference chrominance, same shape.
        centres: ``(C, K)`` or ``(K,)`` (shared) bin centres; default 50
            equal bins on ``[-100, 100]`` for every channel (their U/V bins).
        channel_axis: Override the channel axis.

    Returns:
        ``(C,)`` float64 accuracies in ``[0, 1]``.
    """
    p = _channel_last(pred, channel_axis).astype(np.float64)
    t = _channel_last(target, channel_axis).astype(np.float64)
    if p.shape != t.shape:
        raise ValueError(f"shape mismatch: {p.shape} vs {t.shape}")
    n_ch = p.shape[-1]
    if centres is None:
        c = uniform_bins(50, -100.0, 100.0, dtype=torch.float64).numpy()
    elif isinstance(centres, torch.Tensor):
        c = centres.detach().cpu().double().numpy()
    else:
        c = np.asarray(centres, dtype=np.float64)
    if c.ndim == 1:
        c = np.broadcast_to(c, (n_ch, c.shape[0]))
    if c.shape[0] != n_ch:
        raise ValueError(f"centres must be (C, K) with C = {n_ch}, got {c.shape}")
    acc = np.empty(n_ch)
    for j in range(n_ch):
        cj = np.sort(c[j])
        edges = (cj[1:] + cj[:-1]) / 2.0
        bp = np.searchsorted(edges, p[..., j], side="right")
        bt = np.searchsorted(edges, t[..., j], side="right")
        acc[j] = np.mean(bp == bt)
    return acc


def _hsv_saturation(rgb255: np.ndarray) -> np.ndarray:
    mx = rgb255.max(-1)
    mn = rgb255.min(-1)
    return np.where(mx > 0, (mx - mn) / np.where(mx > 0, mx, 1.0), 0.0)


def saturation_difference(
    pred: ArrayLike, target: ArrayLike, *, channel_axis: int | None = None
) -> float:
    """Percent deviation of total saturation (Hwang & Zhou).

    ``100 * (sum S_pred - sum S_true) / sum S_true`` with ``S`` the HSV
    saturation of every pixel. Negative means the prediction is duller than
    the reference.

    Args:
        pred: Predicted RGB, ``(..., H, W, 3)`` numpy or ``(..., 3, H, W)``
            torch, uint8 or float in ``[0, 1]``.
        target: Reference RGB, same shape.
        channel_axis: Override the channel axis.

    Returns:
        Signed percentage (``nan`` if the reference has no saturation at all).
    """
    sp = _hsv_saturation(_rgb255(pred, channel_axis)).sum()
    st = _hsv_saturation(_rgb255(target, channel_axis)).sum()
    if st == 0:
        return float("nan")
    return float(100.0 * (sp - st) / st)


def colourfulness(rgb: ArrayLike, *, channel_axis: int | None = None) -> float:
    """Colourfulness of Hasler & Süsstrunk (2003), on a 0..255 scale.

    ``rg = R - G``, ``yb = (R + G) / 2 - B``;
    ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)``.
    A grey image scores 0; about 33 is "moderately", 59 "quite" and 82
    "highly" colourful on their scale.

    Args:
        rgb: RGB image, ``(H, W, 3)`` numpy or ``(3, H, W)`` torch, uint8 or
            float in ``[0, 1]`` (scaled to 0..255).
        channel_axis: Override the channel axis.

    Returns:
        The colourfulness metric ``M``.
    """
    arr = _rgb255(rgb, channel_axis).reshape(-1, 3)
    r, g, b = arr[:, 0], arr[:, 1], arr[:, 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mu = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(std + 0.3 * mu)


#: Output chroma above which a pixel counts as coloured (CIELAB units).
FALSE_COLOUR_CHROMA = 10.0
#: Ground-truth chroma below which a pixel counts as near-neutral.
NEUTRAL_CHROMA = 5.0
#: Hue difference (degrees) beyond which a coloured pixel has the wrong hue.
FALSE_HUE_DEGREES = 90.0


def false_colour_rate(
    pred_ab: ArrayLike, true_ab: ArrayLike, *, channel_axis: int | None = None
) -> float:
    """Share of pixels painted with a colour the truth does not have.

    A pixel is *false-coloured* when its predicted chroma
    ``sqrt(a^2 + b^2)`` exceeds :data:`FALSE_COLOUR_CHROMA` (10) while the
    truth there is near-neutral (chroma < :data:`NEUTRAL_CHROMA`, 5) or has a
    hue more than :data:`FALSE_HUE_DEGREES` (90 degrees) away.

    Args:
        pred_ab: Predicted CIELAB ``(a, b)``, numpy ``(..., H, W, 2)`` or torch
            ``(..., 2, H, W)``.
        true_ab: Ground-truth ``(a, b)``, same shape.
        channel_axis: Override the channel axis.

    Returns:
        The false-colour share in ``[0, 1]`` over all pixels.
    """
    p = _channel_last(pred_ab, channel_axis).astype(np.float64)
    t = _channel_last(true_ab, channel_axis).astype(np.float64)
    if p.shape != t.shape or p.shape[-1] != 2:
        raise ValueError(f"expected matching (..., 2) chroma, got {p.shape} and {t.shape}")
    cp = np.hypot(p[..., 0], p[..., 1])
    ct = np.hypot(t[..., 0], t[..., 1])
    # cos(angle between the two ab vectors); neutral truth has no hue to compare
    dot = (p * t).sum(-1) / np.maximum(cp * ct, 1e-12)
    wrong_hue = dot < np.cos(np.deg2rad(FALSE_HUE_DEGREES))
    false = (cp > FALSE_COLOUR_CHROMA) & ((ct < NEUTRAL_CHROMA) | wrong_hue)
    return float(false.mean()) if false.size else float("nan")
