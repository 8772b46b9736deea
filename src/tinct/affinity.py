"""The two ways hint colours spread over a gray image, as rows of a sparse system.

Both propagate chrominance ``x`` from hint pixels by solving ``A x = 0`` on the
free pixels (the hint pixels keep their values); they differ in what "similar
neighbours" means.

``"levin"`` (Levin, Lischinski & Weiss, SIGGRAPH 2004)
    Every free pixel is the affinity-weighted *average* of its 3x3 neighbours,
    ``w_rs ~ exp(-(L_r - L_s)^2 / (2 sigma_r^2))``: rows ``I - W``, 9 nonzeros.
    The colour is piecewise constant along similar luminance, and every pixel
    gets a convex combination of the hint colours.

``"matting"`` (the matting Laplacian of Levin, Lischinski & Weiss, CVPR 2006)
    In every 3x3 window the colour is an *affine function of the luminance*,
    ``x ~ a_k L + b_k``; ``A`` is the Laplacian whose quadratic form measures how
    far ``x`` is from that in all windows (ridge ``eps`` on ``a_k``); over 2 x 2
    windows, so rows have Levin's 9 nonzeros. Colour may follow shading inside an
    object and stops where luminance stops behaving linearly. The weights of the
    hints still sum to 1 at every pixel (constants are free) but may be slightly
    negative or above 1 (the linear model extrapolates).

With the protocol's hints (30 held-out training photographs, 256 x 256, 10
hints, solved on the 128 x 128 fusion grid) the matting rows propagate better than
Levin's averaging (28.71 against 28.02 dB), with many hints worse (3 x 3 windows:
32.71 against 33.14 dB at 100): :mod:`tinct.engine.fusion` uses them for few hints.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp

__all__ = [
    "AFFINITIES",
    "MATTING_EPS",
    "levin_rows",
    "matting_rows",
    "nested_dissection",
    "rows",
]

#: The propagation operators :func:`rows` builds.
AFFINITIES: tuple[str, ...] = ("levin", "matting")

#: Ridge of the matting Laplacian's local linear model, for L scaled to ``[0, 1]``
#: (30 held-out photographs, 10 hints: 1e-8 and 1e-7 28.71 dB, 3e-7 28.67, 1e-6 28.58).
MATTING_EPS = 1e-7

#: 3x3 neighbourhood offsets (row, col), centre excluded.
_OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
#: 2x2 window offsets from its top-left pixel.
_WINDOW = ((0, 0), (0, 1), (1, 0), (1, 1))


def rows(
    lum: np.ndarray,
    affinity: str = "levin",
    *,
    sigma_scale: float = 0.1,
    min_variance: float = 0.02,
    eps: float = MATTING_EPS,
) -> sp.csr_matrix:
    """The propagation rows of every pixel of ``lum`` (no hint rows yet).

    Args:
        lum: ``(H, W)`` luminance, CIELAB L in ``[0, 100]``.
        affinity: ``"levin"`` or ``"matting"`` (see the module docstring). The
            matting rows need at least a 2 x 2 image; smaller ones get Levin's.
        sigma_scale: Levin's edge sensitivity (see :func:`levin_rows`).
        min_variance: Levin's variance floor, in squared L units.
        eps: The matting Laplacian's ridge (see :data:`MATTING_EPS`).

    Returns:
        ``(N, N)`` sparse rows, ``N = H * W`` in row-major order; every row sums to 0.

    Raises:
        ValueError: An unknown ``affinity``.
    """
    if affinity == "levin" or (affinity == "matting" and min(lum.shape) < 2):
        return levin_rows(lum, sigma_scale, min_variance)
    if affinity == "matting":
        return matting_rows(lum, eps)
    raise ValueError(f"unknown affinity {affinity!r}; expected one of {', '.join(AFFINITIES)}")


def levin_rows(lum: np.ndarray, scale: float, min_var: float) -> sp.csr_matrix:
    """``I - W``: each pixel minus the weighted average of its 3x3 neighbours.

    ``w_rs ~ exp(-(L_r - L_s)^2 / (2 sigma_r^2))`` with ``sigma_r^2 = max(scale *
    var_r, min_var)``, ``var_r`` the variance of L over the 3x3 window around ``r``
    (pixels outside the image left out), the weights of each row normalised to 1.
    """
    h, w = lum.shape
    n = h * w
    pad = np.pad(lum, 1, mode="edge")
    valid = np.pad(np.ones_like(lum, dtype=bool), 1, constant_values=False)
    window = np.stack([pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _OFFSETS])
    inside = np.stack([valid[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _OFFSETS])
    count = inside.sum(0) + 1.0
    mean = (np.where(inside, window, 0.0).sum(0) + lum) / count
    var = (np.where(inside, (window - mean) ** 2, 0.0).sum(0) + (lum - mean) ** 2) / count
    var = np.maximum(scale * var, min_var)
    weights = np.exp(-((window - lum) ** 2) / (2.0 * var)) * inside
    weights /= np.maximum(weights.sum(0), 1e-300)

    idx = np.arange(n).reshape(h, w)
    pidx = np.pad(idx, 1, mode="edge")
    cols = np.stack([pidx[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _OFFSETS])
    keep = weights.reshape(8, n) > 0
    rows_ = np.broadcast_to(idx.reshape(1, n), (8, n))[keep]
    diag = np.arange(n)
    return sp.csr_matrix(
        (
            np.concatenate((np.ones(n), -weights.reshape(8, n)[keep])),
            (np.concatenate((diag, rows_)), np.concatenate((diag, cols.reshape(8, n)[keep]))),
        ),
        shape=(n, n),
    )


def matting_rows(lum: np.ndarray, eps: float = MATTING_EPS) -> sp.csr_matrix:
    """The matting Laplacian of the luminance, over the image's 2 x 2 windows.

    ``A_ij = sum_k [delta_ij - (1 + (I_i - mu_k)(I_j - mu_k) / (var_k + eps / 4)) / 4]``
    over the windows ``k`` holding both ``i`` and ``j``, with ``I = L / 100`` and
    ``mu_k``, ``var_k`` its mean and variance in window ``k``. Symmetric, positive
    semi-definite, rows summing to 0. The paper's 3 x 3 windows couple 5 x 5
    neighbourhoods, and their factorisation is 2.6 times larger; 2 x 2 windows
    keep Levin's 3 x 3 stencil (and its fill) and propagate as well (held-out
    photographs, 10 hints, 128 x 128 grid, eps 1e-6: 28.58 against 28.62 dB).

    Args:
        lum: ``(H, W)`` CIELAB L in ``[0, 100]``, ``H, W >= 2``.
        eps: Ridge of the local linear model (larger = closer to plain smoothing).

    Returns:
        ``(N, N)`` sparse Laplacian, ``N = H * W``.
    """
    img = np.asarray(lum, dtype=np.float64) / 100.0
    h, w = img.shape
    ch, cw = h - 1, w - 1  # windows, by their top-left pixel
    members = np.stack([img[dy : dy + ch, dx : dx + cw] for dy, dx in _WINDOW])
    dev = members - members.mean(0)
    inv = 1.0 / (members.var(0) + eps / 4.0)
    # entry (p, q) of every window goes to row corner + o_p, column corner + o_q:
    # accumulate per row and per column offset (o_q - o_p, one of 3 x 3)
    band = np.zeros((3, 3, h, w))
    for p, (py, px) in enumerate(_WINDOW):
        for q, (qy, qx) in enumerate(_WINDOW):
            g = -(1.0 + dev[p] * dev[q] * inv) / 4.0
            if p == q:
                g = g + 1.0
            band[qy - py + 1, qx - px + 1, py : py + ch, px : px + cw] += g
    idx = np.arange(h * w).reshape(h, w)
    r_all, c_all, v_all = [], [], []
    for dy in range(-1, 2):
        for dx in range(-1, 2):
            ys = slice(max(0, -dy), h - max(0, dy))
            xs = slice(max(0, -dx), w - max(0, dx))
            src = idx[ys, xs]
            r_all.append(src.ravel())
            c_all.append((src + dy * w + dx).ravel())
            v_all.append(band[dy + 1, dx + 1, ys, xs].ravel())
    v = np.concatenate(v_all)
    keep = v != 0.0
    return sp.csr_matrix(
        (v[keep], (np.concatenate(r_all)[keep], np.concatenate(c_all)[keep])),
        shape=(h * w, h * w),
    )


@lru_cache(maxsize=8)
def nested_dissection(h: int, w: int, leaf: int = 8) -> np.ndarray:
    """Fill-reducing order of an ``h x w`` grid with 3x3 coupling (both affinities).

    Split the longer side by a one-pixel line (which separates the two halves
    for a 3x3 stencil), order both halves recursively, the separator last.
    """
    idx = np.arange(h * w).reshape(h, w)
    parts: list[np.ndarray] = []
    stack = [(0, h, 0, w, False)]
    while stack:  # explicit stack: (rows, cols, emit separator only)
        r0, r1, c0, c1, sep = stack.pop()
        if sep or (r1 - r0) * (c1 - c0) <= leaf * leaf or min(r1 - r0, c1 - c0) < 3:
            parts.append(idx[r0:r1, c0:c1].ravel())
        elif r1 - r0 >= c1 - c0:
            m = (r0 + r1) // 2
            stack += [(m, m + 1, c0, c1, True), (m + 1, r1, c0, c1, False), (r0, m, c0, c1, False)]
        else:
            m = (c0 + c1) // 2
            stack += [(r0, r1, m, m + 1, True), (r0, r1, m + 1, c1, False), (r0, r1, c0, m, False)]
    return np.concatenate(parts)
