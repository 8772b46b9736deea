"""Quantisation of chrominance into bins.

The 313 in-gamut ab bins of Zhang et al. (2016) are the points of the regular
10-unit grid ``a, b in {-110, -100, ..., 110}`` that fall inside the sRGB gamut,
ordered a-major, b ascending. They are stored here as the exact b-range of each
a column (no data file needed).

Besides these joint 2-D bins, per-channel 1-D bins are supported: each
chrominance channel is quantised on its own axis (``uniform_bins``; e.g. 50 bins
per U and V channel of CIELUV in Hwang & Zhou, 20 per U/V of YUV), and
Larsson et al.'s hue/chroma bins (``hue_bins``, ``chroma_bins``). Per-channel
distributions are stacked channel-major along dim 1: ``(B, C * K, H, W)``.

Class rebalancing (Zhang et al. 2016): ``empirical_prior`` counts bin
frequencies and ``rebalance_weights`` turns them into per-bin loss weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "chroma_bins",
    "empirical_prior",
    "encode_hard",
    "encode_hard_channels",
    "encode_soft",
    "encode_soft_channels",
    "gamut_bins",
    "grid_bins",
    "hue_bins",
    "rebalance_weights",
    "uniform_bins",
]

#: For each a in -90..100 (step 10): the (first, last) b of the in-gamut bins.
_GAMUT_B_RANGES: dict[int, tuple[int, int]] = {
    -90: (50, 90), -80: (20, 90), -70: (0, 90), -60: (-20, 90), -50: (-30, 100),
    -40: (-40, 100), -30: (-50, 100), -20: (-50, 100), -10: (-60, 100), 0: (-70, 100),
    10: (-80, 90), 20: (-80, 90), 30: (-90, 90), 40: (-100, 90), 50: (-100, 80),
    60: (-110, 80), 70: (-110, 80), 80: (-110, 70), 90: (-110, 70), 100: (-90, 0),
}  # fmt: skip


def gamut_bins(
    *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """The 313 in-gamut ab bin centres in Zhang's order.

    Args:
        dtype: Floating dtype of the result.
        device: Device of the result.

    Returns:
        ``(313, 2)`` tensor of (a, b) centres; row 0 is (-90, 50), row 120 is
        (0, 0) and row 312 is (100, 0).
    """
    pts = [(a, b) for a, (lo, hi) in _GAMUT_B_RANGES.items() for b in range(lo, hi + 1, 10)]
    return torch.tensor(pts, dtype=dtype, device=device)


def grid_bins(
    *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """The full 23 x 23 ab grid (SIGGRAPH17's 529 classes), a-major.

    Args:
        dtype: Floating dtype of the result.
        device: Device of the result.

    Returns:
        ``(529, 2)`` tensor; index = ``((a + 110) / 10) * 23 + (b + 110) / 10``.
    """
    axis = torch.arange(-110, 111, 10, dtype=dtype, device=device)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack((a.reshape(-1), b.reshape(-1)), dim=1)


def uniform_bins(
    k: int,
    low: float,
    high: float,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Centres of ``k`` equal-width bins covering ``[low, high]``.

    Args:
        k: Number of bins (>= 1).
        low: Lower edge of the first bin.
        high: Upper edge of the last bin (> ``low``).
        dtype: Floating dtype of the result.
        device: Device of the result.

    Returns:
        ``(k,)`` centres ``low + (i + 0.5) * (high - low) / k``. For example
        ``uniform_bins(50, -100, 100)`` gives the 50 U (or V) bins of Hwang &
        Zhou: -98, -94, ..., 98.

    Raises:
        ValueError: If ``k < 1`` or ``high <= low``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not high > low:
        raise ValueError(f"high must be > low, got low={low}, high={high}")
    width = (high - low) / k
    idx = torch.arange(k, dtype=torch.float64, device=device)
    return (low + (idx + 0.5) * width).to(dtype)


def hue_bins(
    k: int = 32, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """Larsson et al.'s hue bins: ``k`` equal sectors of the hue circle.

    Args:
        k: Number of hue bins.
        dtype: Floating dtype of the result.
        device: Device of the result.

    Returns:
        ``(k,)`` sector centres in radians, in ``(0, 2*pi)``.
    """
    return uniform_bins(k, 0.0, 2.0 * math.pi, dtype=dtype, device=device)


def chroma_bins(
    k: int = 32,
    max_chroma: float = 135.0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Larsson et al.'s chroma bins: ``k`` equal bins on ``[0, max_chroma]``.

    Args:
        k: Number of chroma bins.
        max_chroma: Upper edge, in Lab chroma units (``sqrt(a^2 + b^2)``); the
            default 135 covers the whole sRGB gamut (largest chroma about 134).
        dtype: Floating dtype of the result.
        device: Device of the result.

    Returns:
        ``(k,)`` bin centres in ``(0, max_chroma)``.
    """
    return uniform_bins(k, 0.0, max_chroma, dtype=dtype, device=device)


def _check_ab(ab: Tensor, centres: Tensor) -> None:
    if ab.dim() != 4:
        raise ValueError(f"expected a (B, D, H, W) tensor, got shape {tuple(ab.shape)}")
    if centres.dim() != 2 or centres.shape[1] != ab.shape[1]:
        raise ValueError(
            f"centres must be (Q, {ab.shape[1]}) to match the input, got {tuple(centres.shape)}"
        )


def _sqdist(ab: Tensor, centres: Tensor) -> Tensor:
    """Squared distances ``(B, Q, H, W)`` between ``(B, D, H, W)`` and centres ``(Q, D)``."""
    _check_ab(ab, centres)
    c = centres.to(device=ab.device, dtype=ab.dtype)
    d2 = None
    for j in range(ab.shape[1]):
        diff = ab[:, j : j + 1] - c[:, j].view(1, -1, 1, 1)
        d2 = diff * diff if d2 is None else d2 + diff * diff
    return d2  # type: ignore[return-value]


def encode_hard(ab: Tensor, centres: Tensor) -> Tensor:
    """Index of the nearest bin centre for every pixel.

    Args:
        ab: ``(B, 2, H, W)`` chrominance in the same units as ``centres``
            (CIELAB a, b for :func:`gamut_bins` / :func:`grid_bins`).
        centres: ``(Q, 2)`` bin centres.

    Returns:
        ``(B, H, W)`` int64 bin indices in ``[0, Q)``.
    """
    return _sqdist(ab, centres).argmin(1)


def encode_soft(ab: Tensor, centres: Tensor, *, k: int = 5, sigma: float = 5.0) -> Tensor:
    """Soft encoding: Gaussian weights on the ``k`` nearest centres.

    Args:
        ab: ``(B, 2, H, W)`` chrominance.
        centres: ``(Q, 2)`` bin centres.
        k: Number of nearest centres that receive weight (Zhang's paper: 5,
            their released training code: 10).
        sigma: Gaussian width, in ab units.

    Returns:
        ``(B, Q, H, W)`` non-negative weights summing to 1 over ``Q``.
    """
    d2 = _sqdist(ab, centres)
    k = min(k, centres.shape[0])
    vals, idx = d2.topk(k, dim=1, largest=False)
    w = torch.softmax(-vals / (2.0 * sigma**2), dim=1)
    return torch.zeros_like(d2).scatter(1, idx, w)


def _channel_dist(x: Tensor, centres: Tensor, period: float | None) -> Tensor:
    """Per-channel distances ``(B, C, K, H, W)`` of ``x (B, C, H, W)`` to ``centres (C, K)``."""
    if x.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    if centres.dim() != 2 or centres.shape[0] != x.shape[1]:
        raise ValueError(
            f"centres must be (C, K) with C = {x.shape[1]}, got {tuple(centres.shape)}"
        )
    c = centres.to(device=x.device, dtype=x.dtype)
    d = (x[:, :, None] - c[None, :, :, None, None]).abs()
    if period is not None:
        d = torch.remainder(d, period)
        d = torch.minimum(d, period - d)
    return d


def encode_hard_channels(x: Tensor, centres: Tensor, *, period: float | None = None) -> Tensor:
    """Per-channel nearest-bin index (1-D bins for each chrominance channel).

    Args:
        x: ``(B, C, H, W)`` values, e.g. the U and V channels of CIELUV.
        centres: ``(C, K)`` bin centres of each channel (e.g. from
            :func:`uniform_bins`, stacked).
        period: If given, distances wrap around with this period (``2*pi``
            for hue).

    Returns:
        ``(B, C, H, W)`` int64 bin indices in ``[0, K)``.
    """
    return _channel_dist(x, centres, period).argmin(2)


def encode_soft_channels(
    x: Tensor,
    centres: Tensor,
    *,
    k: int = 5,
    sigma: float = 5.0,
    period: float | None = None,
) -> Tensor:
    """Per-channel soft encoding: Gaussian weights on each channel's ``k`` nearest bins.

    Args:
        x: ``(B, C, H, W)`` values.
        centres: ``(C, K)`` bin centres of each channel.
        k: Number of nearest bins per channel that receive weight.
        sigma: Gaussian width, in the units of ``x``.
        period: If given, distances wrap around with this period.

    Returns:
        ``(B, C * K, H, W)`` weights, channel-major; each channel's ``K``
        weights sum to 1.
    """
    d = _channel_dist(x, centres, period)
    b, c, q, h, w = d.shape
    k = min(k, q)
    vals, idx = d.topk(k, dim=2, largest=False)
    wts = torch.softmax(-(vals * vals) / (2.0 * sigma**2), dim=2)
    return torch.zeros_like(d).scatter(2, idx, wts).reshape(b, c * q, h, w)


def empirical_prior(
    ab_samples: Tensor, centres: Tensor, *, sigma: float = 0.0, chunk: int = 1 << 16
) -> Tensor:
    """Empirical bin frequencies of chrominance samples (hard assignment).

    Args:
        ab_samples: ``(N, D)`` samples, or an image batch ``(B, D, H, W)``
            (pixels are the samples); same units as ``centres``.
        centres: ``(Q, D)`` bin centres.
        sigma: If > 0, smooth the histogram with a Gaussian of this width over
            the bin centres (Zhang et al. smooth with sigma = 5).
        chunk: Samples assigned per step (bounds memory).

    Returns:
        ``(Q,)`` float64 probabilities summing to 1 (all zero if there are no
        samples).

    Raises:
        ValueError: If the shapes do not match.
    """
    if ab_samples.dim() == 4:
        ab_samples = ab_samples.movedim(1, -1).reshape(-1, ab_samples.shape[1])
    if ab_samples.dim() != 2 or centres.dim() != 2 or ab_samples.shape[1] != centres.shape[1]:
        raise ValueError(
            f"ab_samples (N, D) or (B, D, H, W) and centres (Q, D) do not match: "
            f"{tuple(ab_samples.shape)} vs {tuple(centres.shape)}"
        )
    q = centres.shape[0]
    c = centres.to(device=ab_samples.device, dtype=torch.float64)
    counts = torch.zeros(q, dtype=torch.float64, device=ab_samples.device)
    for start in range(0, ab_samples.shape[0], chunk):
        part = ab_samples[start : start + chunk].to(torch.float64)
        idx = torch.cdist(part, c).argmin(1)
        counts += torch.bincount(idx, minlength=q).to(torch.float64)
    if sigma > 0:
        kern = torch.exp(-torch.cdist(c, c).pow(2) / (2.0 * sigma**2))
        counts = kern @ counts
    total = counts.sum()
    return counts / total if total > 0 else counts


def rebalance_weights(prior: Tensor, lam: float = 0.5, *, alpha: float = 1.0) -> Tensor:
    """Class-rebalancing weights from a bin prior (Zhang et al. 2016, section 2.2).

    The prior is mixed with a uniform distribution over the bins that occur
    (``mix = (1 - lam) * prior + lam / n_nonzero``), inverted
    (``w = mix ** -alpha``) and normalised so that the expected weight under
    the prior is 1: ``sum(prior * w) == 1``. Bins with zero prior get the
    weight of a bin with prior 0 in that formula (the largest weight).

    Args:
        prior: ``(Q,)`` non-negative bin frequencies (normalised internally).
        lam: Mixing weight of the uniform distribution, in ``(0, 1]``.
        alpha: Exponent of the inversion.

    Returns:
        ``(Q,)`` positive weights, same dtype and device as ``prior``.

    Raises:
        ValueError: If ``prior`` is not 1-D, has negative entries or sums to 0,
            or ``lam`` is outside ``(0, 1]``.
    """
    if prior.dim() != 1:
        raise ValueError(f"prior must be 1-D (Q,), got shape {tuple(prior.shape)}")
    if not 0.0 < lam <= 1.0:
        raise ValueError(f"lam must be in (0, 1], got {lam}")
    p = prior.to(torch.float64)
    if bool((p < 0).any()) or float(p.sum()) <= 0:
        raise ValueError("prior must be non-negative with a positive sum")
    p = p / p.sum()
    n = int((p > 0).sum())
    mix = (1.0 - lam) * p + lam / n
    w = mix.pow(-alpha)
    w = w / (p * w).sum()
    return w.to(prior.dtype if prior.is_floating_point() else torch.float64)
