"""Quantisation of chrominance into bins.

The 313 in-gamut ab bins of Zhang et al. (2016) are the points of the regular
10-unit grid ``a, b in {-110, -100, ..., 110}`` that fall inside the sRGB gamut,
ordered a-major, b ascending. They are stored here as the exact b-range of each
a column (no data file needed).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["encode_hard", "encode_soft", "gamut_bins", "grid_bins"]

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


def _sqdist(ab: Tensor, centres: Tensor) -> Tensor:
    """Squared distances ``(B, Q, H, W)`` between ab ``(B, 2, H, W)`` and centres ``(Q, 2)``."""
    c = centres.to(ab.dtype).to(ab.device)
    return (ab[:, None] - c[None, :, :, None, None]).pow(2).sum(2)


def encode_hard(ab: Tensor, centres: Tensor) -> Tensor:
    """Index of the nearest bin centre for every pixel.

    Args:
        ab: ``(B, 2, H, W)`` chrominance in the same units as ``centres``.
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
        k: Number of nearest centres that receive weight.
        sigma: Gaussian width, in ab units.

    Returns:
        ``(B, Q, H, W)`` non-negative weights summing to 1 over ``Q``.
    """
    d2 = _sqdist(ab, centres)
    k = min(k, centres.shape[0])
    vals, idx = d2.topk(k, dim=1, largest=False)
    w = torch.softmax(-vals / (2.0 * sigma**2), dim=1)
    return torch.zeros_like(d2).scatter(1, idx, w)
