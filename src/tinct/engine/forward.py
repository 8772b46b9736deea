"""The network pass: luminance and hints in, cached (conditioned) distributions out.

Everything that needs the network lives here, and its result
(:class:`NetOutput`) is what the engine caches: changing the temperature,
decoder or MRF afterwards never calls the network again.

Steps, all in torch on the chosen device:

1. resize the full-resolution luminance so the long side is ``net_size``
   (aspect ratio kept), reflect-pad to a multiple of ``model.stride``;
2. rasterise hints (SIGGRAPH17 encoding) and the reference's global hint;
3. run the network, untiled or on overlapping tiles (with a low-resolution
   global pass for context, blended in), crop the padding;
4. turn logits into log-probabilities and condition them on what the network
   did not see: hints for models without hint inputs (and, tightly, for all
   models at the hint patch), and the reference histogram for distribution
   models without a global-hint input (element-wise product, renormalised).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tinct import cancel as _cancel
from tinct import spaces as pipeline
from tinct.engine import hints as _hints
from tinct.engine.conditioning import (
    channel_histograms,
    condition_on_hints,
    hint_spread,
    reference_histogram,
    reweight,
)
from tinct.models.base import FusionTerms
from tinct.models.info import ModelInfo, bin_centres, log_probs, net_shape
from tinct.tiling import make_grid
from tinct.upsample import resize

__all__ = [
    "GLOBAL_BLEND",
    "ModelInfo",
    "NetOutput",
    "bin_centres",
    "device_lock",
    "log_probs",
    "net_shape",
    "reference_histogram",
    "run_network",
]

#: Weight of the low-resolution global pass when blending tiled predictions. The global
#: pass sees the whole image; tiles see less context and mostly add resolution, which the
#: luminance-guided upsampling largely supplies anyway. With tinct-base's distribution
#: decoding, 0.5 left 1024² tiled results 2.3-2.4/255 from untiled ones; 2/3 keeps them
#: under 2/255 (benchmarks/bench_engine.py --only tiles).
GLOBAL_BLEND = 2.0 / 3.0

_DEVICE_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def device_lock(device: torch.device) -> threading.Lock:
    """The process-wide lock that serialises network passes on one device."""
    with _LOCKS_GUARD:
        return _DEVICE_LOCKS.setdefault(str(device), threading.Lock())


@dataclass
class NetOutput:
    """Cached result of a network pass (batch ``B`` = planes).

    Attributes:
        logp: ``(B, Q, h, w)`` float32 log-probabilities (conditioned), or ``None``.
        ab: ``(B, 2, h2, w2)`` regression chrominance (conditioned), or ``None``.
        lum_logits: ``(B, 1, h, w)`` luminance on the logits grid (for the MRF).
        post: Hint influence ``(weight (B,1,h,w), target (B,2,h,w))`` on the
            logits grid, applied after decoding for non-joint distributions.
        net_size: ``(height, width)`` of the network input before padding.
        patches: Placed hints (network coordinates).
        forward_calls: Network invocations made.
        gray_net: ``(B, 1, hn, wn)`` the gray level resized to the network input
            size (reused as the working grid of the upsampling when sizes agree).
        fusion: A hint-fusing model's :class:`~tinct.models.base.FusionTerms`
            (float32, on the ``ab`` grid, padding cropped), so that a decoded
            colour can take the place of its regression colour; ``None`` when the
            model does not fuse, has no hints, or ran in tiles.
        ab_pull: ``(weight (B,1,h2,w2), target (B,2,h2,w2))``: how the hint
            patches pull ``ab`` towards their colour (already applied to ``ab``;
            applied again after the engine re-fuses a decoded colour).
        hint_mix: ``(weights (B,K,h2,w2), colours (B,K,2), lum (B,1,h2,w2))`` from
            :func:`tinct.engine.fusion.hint_weights` for hint-fusing models (``None``
            otherwise, or with more than :data:`tinct.engine.fusion.MAX_MIXED_HINTS` hints).
    """

    logp: Tensor | None
    ab: Tensor | None
    lum_logits: Tensor | None
    post: tuple[Tensor, Tensor] | None
    net_size: tuple[int, int]
    patches: list[_hints.HintPatch]
    forward_calls: int
    gray_net: Tensor | None = None
    fusion: FusionTerms | None = None
    ab_pull: tuple[Tensor, Tensor] | None = None
    hint_mix: tuple[Tensor, Tensor, Tensor] | None = None


def _pad(x: Tensor, multiple: int, mode: str = "reflect") -> Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    if mode == "constant":
        return F.pad(x, (0, pw, 0, ph))
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def run_network(
    model: torch.nn.Module,
    info: ModelInfo,
    gray: Tensor,
    *,
    hints: Sequence[_hints.Hint] = (),
    reference: Any = None,
    net_long: int,
    tile: int | None,
    tile_overlap: int | None,
    hint_size: int,
    device: torch.device,
    dtype: torch.dtype,
    progress: Callable[[float, str], None] | None = None,
    cancel: Any = None,
) -> NetOutput:
    """Run the network on a batch of planes and condition its output.

    Args:
        model: The network (on ``device``).
        info: Its :class:`ModelInfo`.
        gray: ``(B, 1, H, W)`` full-resolution gray in ``[0, 1]`` (CPU or device).
        hints: Hints in image pixel coordinates (applied to every plane).
        reference: Optional colour reference image (numpy RGB).
        net_long: Long side of the network input.
        tile: Tile side in network pixels, or ``None``/``0`` for one pass.
        tile_overlap: Tile overlap in network pixels (``None`` = tile / 4).
        hint_size: Patch side in network pixels for hints without a size.
        device: Compute device.
        dtype: Network precision (float32, float16 or bfloat16).
        progress: ``progress(fraction, message)`` callback.
        cancel: Object with ``is_set()``; when set, :class:`Cancelled` is raised.

    Returns:
        The cacheable :class:`NetOutput`.
    """
    B, _, H, W = gray.shape
    hn, wn = net_shape((H, W), net_long)
    gray_net = resize(gray.to(device), (hn, wn))
    lum_net = pipeline.lum_from_gray(gray_net, info.space)
    patches = _place_hints(hints, gray, (hn, wn), info.space, hint_size, cancel)
    patches = [_hints.HintPatch(p.row, p.col, p.side, p.chroma.to(device)) for p in patches]
    hint_ab = hint_mask = None
    if info.hints:
        hint_ab, hint_mask = _hints.encode_hints(patches, (hn, wn), B)
        hint_ab, hint_mask = hint_ab.to(device), hint_mask.to(device)

    centres = bin_centres(info, device)
    global_hint = hist = None
    if reference is not None:
        if info.global_hint:
            from tinct import bins

            h313 = reference_histogram(reference, bins.gamut_bins())
            global_hint = torch.cat((h313, torch.ones(1))).to(device).expand(B, 314)
        elif info.joint and centres is not None:
            hist = reference_histogram(reference, centres)
        elif centres is not None:
            hist = channel_histograms(reference, centres, info)
        else:
            warnings.warn(
                f"model {info.name!r} has neither a global-hint input nor a distribution "
                "output; the reference image is ignored",
                stacklevel=3,
            )

    lum_pad = _pad(lum_net, info.stride)
    hab_pad = _pad(hint_ab, info.stride, "constant") if hint_ab is not None else None
    hmask_pad = _pad(hint_mask, info.stride, "constant") if hint_mask is not None else None
    # A hint-fusing model gets its hints propagated here, once, on its colour grid: one
    # Levin factorisation gives each hint's weight map (kept for re-decoding) and the
    # propagated colour the model's gate blends with its own.
    fuse_grid = getattr(model, "fusion_grid", None)
    mix = propagated = None
    if patches and fuse_grid is not None and not (tile and max(lum_pad.shape[-2:]) > tile):
        from tinct.engine import fusion

        grid = fuse_grid(lum_pad.shape[-2:])
        lum_grid = F.interpolate(lum_pad, size=grid, mode="area")
        mix = fusion.hint_weights(lum_grid, patches, (hn, wn))
        propagated = (
            fusion.mix_colour(mix)
            if mix is not None
            else fusion.propagate_patches(lum_grid, patches, (hn, wn))
        )
    calls = 0
    fusion: FusionTerms | None = None

    def forward(lum: Tensor, hab: Tensor | None, hm: Tensor | None, gh: Tensor | None):
        nonlocal calls, fusion
        _cancel.check(cancel)
        calls += 1
        use_amp = dtype != torch.float32 and device.type in ("cuda", "cpu")
        if use_amp and lum.dim() == 4:  # oneDNN/cuDNN reduced precision prefers NHWC
            lum = lum.contiguous(memory_format=torch.channels_last)
        with (
            device_lock(device),
            torch.inference_mode(),
            torch.autocast(device.type, dtype=dtype, enabled=use_amp),
            _cancel.scope(cancel),  # e.g. tinct-base's Levin solves inside forward
        ):
            extra = {} if propagated is None else {"propagated": propagated}
            out = model(lum, hab, hm, gh, **extra)
        lo = log_probs(out.logits, info) if out.logits is not None else None
        ab = out.ab.float() if out.ab is not None else None
        f = out.fusion
        if f is not None:
            fusion = FusionTerms(*(t.float() for t in (f.own, f.propagated, f.gate, f.correction)))
        return lo, ab

    Hp, Wp = lum_pad.shape[-2:]
    tiled = bool(tile) and (Hp > tile or Wp > tile)
    if not tiled:
        if progress:
            progress(0.1, "network")
        logp, ab = forward(lum_pad, hab_pad, hmask_pad, global_hint)
    else:
        logp, ab = _tiled(
            forward, info, lum_net, lum_pad, hab_pad, hmask_pad, global_hint,
            tile=int(tile), overlap=tile_overlap, reference_given=reference is not None,
            progress=progress,
        )  # fmt: skip
        fusion = None  # per-tile fusions are not blended; the fused ``ab`` is

    # Crop the padding (output grids are the padded input divided by their stride).
    logp = _crop_valid(logp, (Hp, Wp), (hn, wn))
    ab = _crop_valid(ab, (Hp, Wp), (hn, wn))
    lum_logits = post = None
    if logp is not None:
        hl, wl = logp.shape[-2:]
        lum_logits = resize(lum_net, (hl, wl))
        scale = hl / hn
        if hist is not None:
            logp = reweight(logp, hist, info)
        if patches:
            spread = 0.0 if info.hints else hint_spread(patches, scale)
            infl = _hints.hint_influence(patches, (hl, wl), scale, B, spread)
            infl = (infl[0].to(device), infl[1].to(device))
            if info.joint:
                logp = condition_on_hints(logp, infl, centres)
            else:
                post = infl
    if fusion is not None:
        fusion = FusionTerms(
            *(_crop_valid(t, (Hp, Wp), (hn, wn)) for t in dataclasses.astuple(fusion))  # type: ignore[arg-type]
        )
    if mix is not None and fusion is not None:
        mix = (
            _crop_valid(mix[0], (Hp, Wp), (hn, wn)),
            mix[1],
            _crop_valid(mix[2], (Hp, Wp), (hn, wn)),
        )
    else:
        mix = None
    ab_pull = None
    if ab is not None and patches:
        ha, wa = ab.shape[-2:]
        scale = ha / hn
        spread = 0.0 if info.hints else hint_spread(patches, scale)
        weight, target = _hints.hint_influence(patches, (ha, wa), scale, B, spread)
        ab_pull = (weight.to(device), target.to(device))
        ab = torch.lerp(ab, ab_pull[1], ab_pull[0])
    return NetOutput(
        logp,
        ab,
        lum_logits,
        post,
        (hn, wn),
        patches,
        calls,
        gray_net,
        fusion,
        ab_pull,
        mix,  # type: ignore[arg-type]
    )


#: Hints placed between two cancel checks (placing one costs about 2 ms on a CPU).
_HINT_CHUNK = 32


def _place_hints(
    hints: Sequence[_hints.Hint],
    gray: Tensor,
    net_size: tuple[int, int],
    space: str,
    hint_size: int,
    cancel: Any,
) -> list[_hints.HintPatch]:
    """:func:`tinct.engine.hints.place_hints` in chunks, checking ``cancel`` between them."""
    patches: list[_hints.HintPatch] = []
    for i in range(0, len(hints), _HINT_CHUNK):
        _cancel.check(cancel)
        patches += _hints.place_hints(
            hints[i : i + _HINT_CHUNK], gray, net_size, space=space, default_side=hint_size
        )
    return patches


def _tiled(
    forward: Callable[..., tuple[Tensor | None, Tensor | None]],
    info: ModelInfo,
    lum_net: Tensor,
    lum_pad: Tensor,
    hab_pad: Tensor | None,
    hmask_pad: Tensor | None,
    global_hint: Tensor | None,
    *,
    tile: int,
    overlap: int | None,
    reference_given: bool,
    progress: Callable[[float, str], None] | None,
) -> tuple[Tensor | None, Tensor | None]:
    """Overlapping tiles blended with taper weights, plus a low-resolution global pass."""
    stride = info.stride
    tile = max(stride, (tile // stride) * stride)
    overlap = tile // 4 if overlap is None else overlap
    overlap = min((overlap // stride) * stride, tile - stride)
    Hp, Wp = lum_pad.shape[-2:]
    grid = make_grid(Hp, Wp, tile, overlap, multiple=stride)

    # Global pass at the model's own input size: context for every tile.
    g_size = net_shape(lum_net.shape[-2:], info.input_size)
    g_lum = resize(lum_net, g_size)
    g_pad = _pad(g_lum, stride)
    g_logp, g_ab = forward(g_pad, None, None, global_hint)
    g_logp = _crop_valid(g_logp, g_pad.shape[-2:], g_size)
    g_ab = _crop_valid(g_ab, g_pad.shape[-2:], g_size)
    own_hint = global_hint is None and info.global_hint and not reference_given
    if own_hint and g_logp is not None and info.target == "gamut313":
        # the image's own predicted histogram serves as every tile's global hint
        hist = g_logp.exp().mean((2, 3))
        global_hint = torch.cat((hist, hist.new_ones(hist.shape[0], 1)), 1)

    acc_l = acc_a = None
    weights = grid.weights()
    n = len(grid.tiles)
    for i, (t, w) in enumerate(zip(grid.tiles, weights, strict=True)):
        if progress:
            progress(0.1 + 0.8 * i / n, f"tile {i + 1}/{n}")
        sl = (..., slice(t.y0, t.y1), slice(t.x0, t.x1))
        lo, ab = forward(
            lum_pad[sl],
            hab_pad[sl] if hab_pad is not None else None,
            hmask_pad[sl] if hmask_pad is not None else None,
            global_hint,
        )
        wt = torch.from_numpy(w).to(lum_pad.device)[None, None]
        for out, kind in ((lo, "l"), (ab, "a")):
            if out is None:
                continue
            f = (t.y1 - t.y0) // out.shape[-2]
            st = t.scaled(f)
            wk = F.avg_pool2d(wt, f) if f > 1 else wt
            if kind == "l":
                if acc_l is None:
                    acc_l = out.new_zeros(out.shape[0], out.shape[1], Hp // f, Wp // f)
                acc_l[..., st.y0 : st.y1, st.x0 : st.x1] += out * wk
            else:
                if acc_a is None:
                    acc_a = out.new_zeros(out.shape[0], out.shape[1], Hp // f, Wp // f)
                acc_a[..., st.y0 : st.y1, st.x0 : st.x1] += out * wk

    # Blend with the global pass (resized onto the same grids).
    if acc_l is not None and g_logp is not None:
        g = _global_on_grid(g_logp, acc_l.shape[-2:], lum_net.shape[-2:], Hp, Wp)
        acc_l = log_probs((1 - GLOBAL_BLEND) * acc_l + GLOBAL_BLEND * g, info)
    if acc_a is not None and g_ab is not None:
        g = _global_on_grid(g_ab, acc_a.shape[-2:], lum_net.shape[-2:], Hp, Wp)
        acc_a = (1 - GLOBAL_BLEND) * acc_a + GLOBAL_BLEND * g
    return acc_l, acc_a


def _crop_valid(x: Tensor | None, padded: Sequence[int], valid: Sequence[int]) -> Tensor | None:
    """Crop an output grid to the part that covers the unpadded input."""
    if x is None:
        return None
    s = padded[0] / x.shape[-2]
    return x[..., : math.ceil(valid[0] / s), : math.ceil(valid[1] / s)]


def _global_on_grid(
    g: Tensor, grid_hw: tuple[int, int], net_hw: tuple[int, int], Hp: int, Wp: int
) -> Tensor:
    """Resize a global-pass output (covering the unpadded image) onto a tiled output grid."""
    gh, gw = grid_hw
    f = Hp / gh
    vh, vw = math.ceil(net_hw[0] / f), math.ceil(net_hw[1] / f)
    out = g.new_zeros(g.shape[0], g.shape[1], gh, gw)
    out[..., :vh, :vw] = F.interpolate(g, size=(vh, vw), mode="bilinear", align_corners=False)
    if vh < gh:
        out[..., vh:, :] = out[..., vh - 1 : vh, :]
    if vw < gw:
        out[..., :, vw:] = out[..., :, vw - 1 : vw]
    return out
