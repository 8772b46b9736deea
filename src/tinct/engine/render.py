"""Rendering: decoded chrominance on the network grid -> full-resolution RGB(A) array.

The luminance-only state (working-grid luminance, joint bilateral weights,
affine-fit statistics) is built once per image (:func:`build_work`) and cached
with the network output (:class:`Entry`), so each re-decode only pays for
:func:`render`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tinct import cancel as _cancel
from tinct import spaces as pipeline
from tinct.engine import forward as _fw
from tinct.engine import inputs as _in
from tinct.upsample import AffineUpsampler, BilateralUpsampler, resize

__all__ = [
    "EPS_AFFINE",
    "RENDER_STRIP_PIXELS",
    "WORK_LONG",
    "Entry",
    "Scratch",
    "Work",
    "build_work",
    "concat_outputs",
    "digest",
    "output_channels",
    "render",
]

#: Smallest long side of the working resolution of the guided upsampling (the
#: network input size is used when it is larger).
WORK_LONG = 256
#: Regularisation of the affine colour-vs-gray fit (squared gray units).
EPS_AFFINE = 1e-5


@dataclass
class Work:
    """Luminance-only state of the upsampling (cached with the network output)."""

    affine: AffineUpsampler
    lum_work: Tensor
    guide: Tensor
    bilateral: dict[tuple[int, int], BilateralUpsampler] = field(default_factory=dict)

    def upsampler(self, src_size: tuple[int, int]) -> BilateralUpsampler:
        """The (cached) joint bilateral upsampler from a chroma grid to the working grid."""
        if src_size not in self.bilateral:
            self.bilateral[src_size] = BilateralUpsampler(self.guide, src_size)
        return self.bilateral[src_size]


@dataclass
class Entry:
    """One cache entry: the prepared input, its network output and (lazily) its :class:`Work`."""

    prepared: _in.PreparedImage
    net: _fw.NetOutput
    work: Work | None = None


#: Rows of one full-resolution strip hold about this many pixels (bounds the scratch buffer).
RENDER_STRIP_PIXELS = 1 << 20


class Scratch:
    """A float buffer reused by successive renders (owned by one colorizer, used under its lock).

    Full-resolution strips of a 2048 x 2048 image are 12 MB of float32; a
    fresh allocation of that size is returned to the OS after each call and
    page-faulted in again by the next, which costs as much as the arithmetic.
    """

    def __init__(self) -> None:
        self._buf: Tensor | None = None

    def get(self, numel: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """A flat tensor of at least ``numel`` elements (contents undefined)."""
        buf = self._buf
        if buf is None or buf.numel() < numel or buf.dtype != dtype or buf.device != device:
            buf = self._buf = torch.empty(numel, dtype=dtype, device=device)
        return buf


def digest(*parts: Any) -> str:
    """Hex digest of arrays (shape, dtype, bytes) and reprs of other values (cache keys).

    SHA-256: with the SHA extensions of current CPUs about twice as fast as
    BLAKE2 on the multi-megabyte image buffers hashed on every call.
    """
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(repr((part.shape, part.dtype.str)).encode())
            a = part if part.flags.c_contiguous else np.ascontiguousarray(part)
            h.update(memoryview(a).cast("B"))  # type: ignore[arg-type]
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


def concat_outputs(outs: list[_fw.NetOutput]) -> _fw.NetOutput:
    """Join the network outputs of consecutive plane batches along the batch axis."""
    if len(outs) == 1:
        return outs[0]

    def cat(xs: list[Tensor | None]) -> Tensor | None:
        return None if xs[0] is None else torch.cat(xs, 0)  # type: ignore[arg-type]

    post = None
    if outs[0].post is not None:
        post = (cat([o.post[0] for o in outs]), cat([o.post[1] for o in outs]))  # type: ignore[index]
    patches = [
        type(p)(p.row, p.col, p.side, torch.cat([o.patches[i].chroma for o in outs], 0))
        for i, p in enumerate(outs[0].patches)
    ]
    return _fw.NetOutput(
        cat([o.logp for o in outs]),
        cat([o.ab for o in outs]),
        cat([o.lum_logits for o in outs]),
        post,  # type: ignore[arg-type]
        outs[0].net_size,
        patches,
        sum(o.forward_calls for o in outs),
        cat([o.gray_net for o in outs]),
        _cat_fusion([o.fusion for o in outs]),
        None if outs[0].ab_pull is None else _cat_pair([o.ab_pull for o in outs]),  # type: ignore[misc]
        _cat_mix([o.hint_mix for o in outs]),
        refiner=outs[0].refiner,
    )


def _cat_pair(pairs: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    return torch.cat([p[0] for p in pairs], 0), torch.cat([p[1] for p in pairs], 0)


def _cat_mix(mixes: list[Any]) -> Any:
    """Concatenated hint weights ``(weights, colours, lum)``, or ``None`` unless all have them."""
    if any(m is None for m in mixes):
        return None
    return tuple(torch.cat([m[i] for m in mixes], 0) for i in range(3))


def _cat_fusion(terms: list[Any]) -> Any:
    """Concatenated fusion terms, or ``None`` unless every plane batch has them."""
    if any(t is None for t in terms):
        return None

    def cat(name: str) -> Tensor | None:
        parts = [getattr(t, name) for t in terms]
        return None if any(p is None for p in parts) else torch.cat(parts, 0)

    return type(terms[0])(**{f.name: cat(f.name) for f in dataclasses.fields(terms[0])})


def build_work(entry: Entry, space: str, device: torch.device) -> Work:
    """Luminance-only upsampling state for a cached entry.

    Args:
        entry: The cached network output and prepared image.
        space: Model colour space.
        device: Where the full-resolution work runs.

    Returns:
        The state: working grid = the network input size (at least
        :data:`WORK_LONG` on the long side, at most the image).
    """
    prep = entry.prepared
    H, W = prep.size
    hn, wn = entry.net.net_size
    long = min(max(H, W), max(WORK_LONG, hn, wn))
    work_size = _fw.net_shape((H, W), long) if long < max(H, W) else (H, W)
    gray_work = entry.net.gray_net if tuple(work_size) == (hn, wn) else None
    affine = AffineUpsampler(
        prep.gray.to(device), work_size, radius=1, eps=EPS_AFFINE, gray_work=gray_work
    )
    lum = pipeline.lum_from_gray(affine.gray_work, space)
    guide = lum * (100.0 if space == "yuv" else 1.0)  # in L-like units
    return Work(affine, lum, guide)


def render(
    entry: Entry,
    ab: Tensor,
    work: Work,
    space: str,
    scratch: Scratch | None = None,
    *,
    work_hook: Callable[[Tensor], Tensor] | None = None,
) -> np.ndarray:
    """Full-resolution colour from chrominance on a network grid.

    Args:
        entry: The cached entry (prepared image: gray, alpha, output dtype, shape).
        ab: ``(B, 2, h, w)`` decoded chrominance (model units).
        work: :func:`build_work` state of the entry.
        space: Model colour space.
        scratch: Reusable buffer for the full-resolution strips (optional).
        work_hook: Applied to the chrominance ``(B, 2, hw, ww)`` once it is
            upsampled to the working grid, before it becomes colour (temporal
            mode averages it along motion there, :mod:`tinct.engine.temporal`).

    Returns:
        ``(..., H, W, 3|4)`` uint8 or float32 RGB(A).
    """
    ws = work.affine.work_size
    if ab.shape[-2] > ws[0] or ab.shape[-1] > ws[1]:  # tiny image: chroma grid is finer
        ab = resize(ab, ws)
    ab_w = work.upsampler((int(ab.shape[-2]), int(ab.shape[-1])))(ab)
    if work_hook is not None:
        ab_w = work_hook(ab_w)
    if space == "lab":  # out-of-gamut chroma shortened, not clipped: the lightness stays
        rgb_w = pipeline.lab_to_rgb_in_gamut(work.lum_work, ab_w)
    else:
        rgb_w = pipeline.space_to_rgb(torch.cat((work.lum_work, ab_w), 1), space)
    coeffs = work.affine.fit(rgb_w)

    prep = entry.prepared
    H, W = prep.size
    B = prep.gray.shape[0]
    C = output_channels(prep)
    out = np.empty((B, H, W, C), np.uint8 if prep.uint8 else np.float32)
    f = work.affine.factor
    rows = list(_in.strips(H, W, RENDER_STRIP_PIXELS, multiple=4))
    buf = None
    if scratch is not None:
        tallest = max(y1 - y0 for y0, y1 in rows)
        buf = scratch.get(3 * (tallest + f) * (W + f), coeffs.dtype, coeffs.device)
    # uint8: scale and round in the same pass, then truncate
    scale, offset = (255.0, 0.5) if prep.uint8 else (1.0, 0.0)
    for i in range(B):
        for y0, y1 in rows:
            _cancel.check()  # the engine's cancel scope, if any
            dst = torch.from_numpy(out[i, y0:y1, :, :3])
            dst.copy_(
                work.affine.apply(coeffs, (y0, y1), i, scale=scale, offset=offset, scratch=buf)
            )
    if prep.alpha is not None:
        out[..., 3] = prep.alpha
    return out.reshape(*prep.lead_shape, H, W, C)


def output_channels(prep: _in.PreparedImage) -> int:
    """Channels of the output for a prepared image (3, or 4 with alpha)."""
    return 4 if prep.alpha is not None else 3
