"""Hint edits without a new factorisation: low-rank updates of the propagation system.

The system is :mod:`tinct.levin`'s, with either affinity of :mod:`tinct.affinity`.
Moving one hint changes only the rows of that sparse system at the
pixels the hint leaves and the pixels it covers: those rows switch between
"average of the neighbours" and "keep the hint". :func:`propagate_values_cached`
keeps the LU factorisation of the last system it solved on a luminance grid (the
*base*) and solves a system whose hint pixels differ in ``r`` places with the
Sherman-Morrison-Woodbury identity::

    A = B + E_S V^T,   A^{-1} b = y - Z (I + V^T Z)^{-1} V^T y,
    y = B^{-1} b,      Z = B^{-1} E_S   (one solve with r + C right-hand sides)

where ``E_S`` selects the changed rows and ``V^T`` holds their change (``+W_s``
where a pixel became a hint pixel, ``-W_s`` where it stopped being one, with
``W_s`` its neighbour weights). On the 128 x 128 fusion grid of a 512 px image
that is about 45 ms instead of 115 for the factorisation and solve. Beyond
:data:`MAX_RANK` changed pixels it factorises anew and keeps that as the base.
The result equals a fresh solve up to rounding (about 1e-10).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from tinct import affinity as _affinity
from tinct import cancel as _cancel
from tinct import levin

__all__ = [
    "CACHE_ENTRIES",
    "MAX_CACHED_PIXELS",
    "MAX_COLUMNS",
    "MAX_RANK",
    "clear_cache",
    "propagate_values_cached",
]

#: Changed hint pixels up to which a low-rank update is used (about five 3 x 3 patches).
MAX_RANK = 48
#: Luminance grids kept (each holds one LU factorisation, about 15 MB at 128 x 128; the
#: fusion solves on up to three grids per image, see tinct.engine.fusion.MULTISCALE_FACTORS).
CACHE_ENTRIES = 6
#: Solved columns kept per grid (128 KB each at 128 x 128).
MAX_COLUMNS = 160
#: Larger grids are solved afresh every time (their factorisation would hold too much memory).
MAX_CACHED_PIXELS = 192 * 192


@dataclass
class _Base:
    """The last factorised system on one luminance grid."""

    free: sp.csr_matrix  # (N, N) I - W with every row free (no hints)
    mask: np.ndarray  # (N,) bool: the hint pixels of the factorised system
    lu: Any  # scipy SuperLU of that system, in nested-dissection order
    perm: np.ndarray  # (N,) the order
    lock: threading.Lock
    #: B^{-1} e_s per pixel s, and B^{-1} b per right-hand-side column (by its digest):
    #: dragging a hint then needs only its new pixels and its own column solved.
    columns: OrderedDict[Any, np.ndarray]

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        out = np.empty_like(rhs)
        out[self.perm] = self.lu.solve(np.ascontiguousarray(rhs[self.perm]))
        return out

    def solve_cached(self, keys: list[Any], make: Any) -> np.ndarray:
        """``B^{-1}`` of the columns ``make(i)`` for ``keys[i]``, solving only the new ones."""
        n = self.free.shape[0]
        missing = [i for i, k in enumerate(keys) if k not in self.columns]
        if missing:
            rhs = np.empty((n, len(missing)))
            for j, i in enumerate(missing):
                rhs[:, j] = make(i)
            for j, x in zip(missing, self.solve(rhs).T, strict=True):
                self.columns[keys[j]] = x
        out = np.empty((n, len(keys)))
        for i, k in enumerate(keys):
            self.columns.move_to_end(k)
            out[:, i] = self.columns[k]
        while len(self.columns) > MAX_COLUMNS:
            self.columns.popitem(last=False)
        return out


_cache: OrderedDict[bytes, _Base] = OrderedDict()
_cache_lock = threading.Lock()


def propagate_values_cached(
    lum: np.ndarray,
    values: np.ndarray,
    mask: np.ndarray,
    *,
    sigma_scale: float = 0.1,
    min_variance: float = 0.02,
    screen: float = 0.0,
    affinity: str = "levin",
) -> np.ndarray:
    """:func:`tinct.levin.propagate_values`, reusing the last factorisation on ``lum``.

    Args:
        lum: ``(H, W)`` luminance (CIELAB L in ``[0, 100]``).
        values: ``(H, W, C)`` values, read where ``mask`` is set.
        mask: ``(H, W)`` bool, True at hint pixels (at least one).
        sigma_scale: Edge sensitivity (see :func:`tinct.levin.levin_colorize`).
        min_variance: Floor of the affinity variance.
        screen: Pull of every free pixel towards 0 (``>= 0``; see
            :func:`tinct.levin.propagate_values`).
        affinity: ``"levin"`` or ``"matting"`` (:mod:`tinct.affinity`).

    Returns:
        ``(H, W, C)`` float64 propagated values (a fresh solve's, up to rounding).
    """
    lum = np.ascontiguousarray(lum, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    h, w = lum.shape
    if h * w > MAX_CACHED_PIXELS or values.shape[:2] != (h, w) or mask.shape != (h, w):
        return levin.propagate_values(
            lum, values, mask, sigma_scale=sigma_scale, min_variance=min_variance, screen=screen,
            affinity=affinity,
        )  # fmt: skip
    if not mask.any():
        raise ValueError("propagate_values needs at least one hint pixel")
    key = _digest(
        lum,
        np.array([h, w, sigma_scale, min_variance, screen]),
        np.frombuffer(affinity.encode(), np.uint8),
    )
    flat = mask.reshape(-1)
    rhs = np.where(flat[:, None], values.reshape(h * w, -1), 0.0)
    keys = [("b", _digest(rhs[:, c])) for c in range(rhs.shape[1])]
    with _cache_lock:
        base = _cache.get(key)
        if base is not None:
            _cache.move_to_end(key)
    if base is not None:
        with base.lock:
            changed = np.flatnonzero(flat != base.mask)
            if len(changed) <= MAX_RANK:
                _cancel.check()
                return _update(base, changed, flat, rhs, keys).reshape(h, w, -1)
    base = _factorise(lum, mask, sigma_scale, min_variance, screen, affinity)
    with _cache_lock:
        _cache[key] = base
        _cache.move_to_end(key)
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    with base.lock:  # the columns are kept: the next edit solves only what it changes
        return base.solve_cached(keys, lambda i: rhs[:, i]).reshape(h, w, -1)


def clear_cache() -> None:
    """Forget every kept factorisation (tests, or to free memory)."""
    with _cache_lock:
        _cache.clear()


def _factorise(
    lum: np.ndarray,
    mask: np.ndarray,
    scale: float,
    min_var: float,
    screen: float = 0.0,
    affinity: str = "levin",
) -> _Base:
    """Factorise the system for ``mask`` (the one :func:`tinct.levin.propagate_values` solves)."""
    h, w = lum.shape
    free = _affinity.rows(lum, affinity, sigma_scale=scale, min_variance=min_var)
    if screen > 0:  # (1 + screen) x_i - sum_j w_ij x_j = 0 on the free rows
        free = free + screen * sp.identity(h * w, format="csc")
    flat = mask.reshape(-1)
    # hint rows become identity rows: keep the free rows, put 1 on the hints' diagonal
    a = (sp.diags((~flat).astype(np.float64)) @ free + sp.diags(flat.astype(np.float64))).tocsc()
    a.eliminate_zeros()
    lu, perm = levin._factorise(a, h, w)
    return _Base(free.tocsr(), flat.copy(), lu, perm, threading.Lock(), OrderedDict())


def _digest(*arrays: np.ndarray) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.digest()


def _update(
    base: _Base, changed: np.ndarray, mask: np.ndarray, rhs: np.ndarray, keys: list[Any]
) -> np.ndarray:
    """Solve the system for ``mask`` from the base's LU (Woodbury); ``(N, C)``.

    ``keys`` name the columns of ``rhs`` in the base's column cache.
    """
    n, r = rhs.shape[0], len(changed)
    y = base.solve_cached(keys, lambda i: rhs[:, i])
    if r == 0:
        return y
    select = sp.csr_matrix((np.ones(r), (np.arange(r), changed)), shape=(r, n))
    # rows that became hint rows gain +W_s = e_s - (I - W)_s; rows freed lose it
    sign = np.where(mask[changed], 1.0, -1.0)
    vt = sp.diags(sign) @ (select - base.free[changed])

    def unit(i: int) -> np.ndarray:
        e = np.zeros(n)
        e[changed[i]] = 1.0
        return e

    z = base.solve_cached([("e", int(s)) for s in changed], unit)
    small = np.eye(r) + vt @ z
    return y - z @ np.linalg.solve(small, vt @ y)
