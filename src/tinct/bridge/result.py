"""The ``result`` frame's pixels: what the engine returned, in the layout the request asked for.

:func:`encode_result` converts the engine's output (gray or RGB(A); uint8, uint16 or
float in [0, 1]) into the request's ``result_format``: 8- or 16-bit, with the input's
alpha for the ``rgba`` formats. The request itself is decoded by
:mod:`tinct.bridge.request`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinct.bridge.backend import ColorizeJob

__all__ = ["encode_result"]


def encode_result(job: ColorizeJob, out: Any) -> np.ndarray:
    """Convert the engine output to the job's result layout.

    Args:
        job: the request; its ``result_format`` (``rgb8``, ``rgba8``, ``rgb16`` or
            ``rgba16``) and, for the ``rgba`` ones, its alpha (8 or 16 bits; opaque
            when absent).
        out: what the backend returned: gray or RGB(A), uint8, uint16 or float in [0, 1].

    Returns:
        A C-contiguous ``(H, W, 3)`` or ``(H, W, 4)`` array: uint8, or little-endian
        uint16 for the ``16`` formats (an engine's float output keeps its precision).

    Raises:
        RuntimeError: the output has the wrong shape or size.
    """
    wide = job.result_format.endswith("16")
    rgb = _to_rgb16(np.asarray(out)) if wide else _to_rgb8(np.asarray(out))
    if rgb.shape[:2] != job.image.shape[:2]:
        raise RuntimeError(
            f"the colorizer returned {rgb.shape[:2]}, expected {job.image.shape[:2]}"
        )
    if not job.result_format.startswith("rgba"):
        return np.ascontiguousarray(rgb)
    res = np.empty((*rgb.shape[:2], 4), rgb.dtype)
    res[..., :3] = rgb
    alpha = job.alpha
    if alpha is None:
        res[..., 3] = 65535 if wide else 255
    elif wide:
        res[..., 3] = alpha.astype(np.uint16) * 257 if alpha.dtype == np.uint8 else alpha
    elif alpha.dtype == np.uint8:
        res[..., 3] = alpha
    else:
        res[..., 3] = (alpha.astype(np.uint32) * 255 + 32767) // 65535
    return res


def _rgb_channels(out: np.ndarray) -> np.ndarray:
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    if out.ndim != 3 or out.shape[2] not in (3, 4):
        raise RuntimeError(f"the colorizer returned an array of shape {out.shape}")
    return out[..., :3]


def _to_rgb8(out: np.ndarray) -> np.ndarray:
    out = _rgb_channels(out)
    if out.dtype == np.uint8:
        return out
    if out.dtype == np.uint16:
        return ((out.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _to_rgb16(out: np.ndarray) -> np.ndarray:
    """Little-endian uint16 RGB (the wire's 16-bit byte order)."""
    out = _rgb_channels(out)
    if out.dtype == np.uint8:
        return out.astype("<u2") * 257
    if out.dtype == np.uint16:
        return out.astype("<u2")
    return (np.clip(out, 0.0, 1.0) * 65535.0 + 0.5).astype("<u2")
