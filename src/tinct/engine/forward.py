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
from tinct.engine import fusion as _fusion
from tinct.engine import hint_raster as _raster
from tinct.engine import hints as _hints
from tinct.engine.conditioning import (
    channel_histograms,
    condition_on_hints,
    hint_spread,
    reference_histogram,
    reweight,
)
from tinct.engine.inputs import InputWarning
from tinct.engine.tiled import _crop_valid, _pad, _tiled, check_tile_count
from tinct.models.base import FusionTerms
from tinct.models.info import ModelInfo, bin_centres, log_probs, net_shape
from tinct.upsample import resize

__all__ = [
    "NetOutput",
    "device_lock",
    "run_network",
]


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
        agreement: ``(B,)`` in ``[0, 1]``: how well the network's automatic colour
            agrees with the hints (:func:`tinct.engine.fusion.apply_trust` sets it; 1 =
            fully, 0 = not at all; ``None`` until then or without hints).
        auto_ab: ``(B, 2, h2, w2)`` the network's colour without hints (set with
            ``agreement``).
        refiner: The model's :class:`~tinct.models.hint_refiner.HintRefiner`, when it
            has one for its own trunk and the fusion terms carry its features
            (:mod:`tinct.engine.hint_refine`).
    """

    logp: Tensor | None
    ab: Tensor | None
    lum_logits: Tensor | None
    post: tuple[Tensor, Tensor] | None
    net_size: tuple[int, int]
    patches: list[_raster.HintPatch]
    forward_calls: int
    gray_net: Tensor | None = None
    fusion: FusionTerms | None = None
    ab_pull: tuple[Tensor, Tensor] | None = None
    hint_mix: tuple[Tensor, Tensor, Tensor] | None = None
    agreement: Tensor | None = None
    auto_ab: Tensor | None = None
    refiner: Any = None


_FIELDS = dataclasses.fields(FusionTerms)

#: Images with more pixels than this are tiled when ``tile`` is ``None``.
AUTO_TILE_PIXELS = 4096 * 4096
#: Largest network long side chosen automatically for huge tiled images.
AUTO_NET_MAX = 1024
#: Planes sent through the network at once.
PLANE_BATCH = 8


def plan_tiling(
    info: ModelInfo,
    net_size: int | None,
    tile: int | None,
    user_net: int | None,
    size: tuple[int, int],
    overlap: int | None = None,
) -> tuple[int, int]:
    """``(tile, net_long)`` for an image of ``size`` (tile 0 = one pass).

    Args:
        info: The model's description (input size, stride).
        net_size: The resolved ``net_size`` option (``None`` = the model's input size).
        tile: The ``tile`` option (``None`` = tile images over :data:`AUTO_TILE_PIXELS`).
        user_net: ``net_size`` as the user gave it (``None``: tiled images may
            raise the network size up to :data:`AUTO_NET_MAX`).
        size: ``(H, W)`` of the image.
        overlap: The ``tile_overlap`` option, for the tile count.

    Raises:
        OptionError: For ``tile``, when it would cut the image into more than
            :data:`~tinct.engine.tiled.MAX_TILES` tiles.
    """
    H, W = size
    net_long = int(net_size or info.input_size)
    if tile is None:
        if H * W > AUTO_TILE_PIXELS:
            s = info.stride
            tile = max(s, (info.input_size // s) * s)
            if user_net is None:
                net_long = min(max(info.input_size, max(H, W) // 8), AUTO_NET_MAX)
        else:
            tile = 0
    check_tile_count(info, size, net_long, int(tile), overlap)
    return int(tile), net_long


def run_planes(
    model: torch.nn.Module,
    info: ModelInfo,
    gray: Tensor,
    *,
    progress: Callable[[float, str], None] | None = None,
    cancel: Any = None,
    **kwargs: Any,
) -> list[NetOutput]:
    """:func:`run_network` over the planes of ``gray (B, 1, H, W)``, :data:`PLANE_BATCH` at once.

    ``progress`` runs from 0 to 0.9 over the planes; ``kwargs`` go to
    :func:`run_network` (hints, reference, net_long, tile, ...).
    """
    outs = []
    B = gray.shape[0]
    for i in range(0, B, PLANE_BATCH):
        _cancel.check(cancel)
        sub = None
        if progress:
            base, span = 0.9 * i / B, 0.9 * min(PLANE_BATCH, B - i) / B

            def sub(f: float, msg: str, base: float = base, span: float = span) -> None:
                progress(base + span * f, msg)

        outs.append(
            run_network(
                model, info, gray[i : i + PLANE_BATCH], progress=sub, cancel=cancel, **kwargs
            )
        )
    return outs


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
        cancel: Object with ``is_set()``; when set, :class:`~tinct.cancel.Cancelled` is raised.

    Returns:
        The cacheable :class:`NetOutput`.
    """
    B, _, H, W = gray.shape
    hn, wn = net_shape((H, W), net_long)
    gray_net = resize(gray.to(device), (hn, wn))
    lum_net = pipeline.lum_from_gray(gray_net, info.space)
    patches = _place_hints(hints, gray, (hn, wn), info.space, hint_size, cancel)
    patches = [_raster.HintPatch(p.row, p.col, p.side, p.chroma.to(device)) for p in patches]
    hint_ab = hint_mask = None
    if info.hints:
        hint_ab, hint_mask = _raster.encode_hints(patches, (hn, wn), B)
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
                InputWarning,
                stacklevel=3,
            )

    lum_pad = _pad(lum_net, info.stride)
    hab_pad = _pad(hint_ab, info.stride, "constant") if hint_ab is not None else None
    hmask_pad = _pad(hint_mask, info.stride, "constant") if hint_mask is not None else None
    # A hint-fusing model gets its hints propagated here, once, on its colour grid: one
    # Levin factorisation gives each hint's weight map (kept for re-decoding) and the
    # propagated colour the model's gate blends with its own.
    fuse_grid = getattr(model, "fusion_grid", None)
    mix: Any = None  # the hint weights of a hint-fusing model (see NetOutput.hint_mix)
    propagated: Tensor | None = None
    if patches and fuse_grid is not None and not (tile and max(lum_pad.shape[-2:]) > tile):
        grid = fuse_grid(lum_pad.shape[-2:])
        lum_grid = F.interpolate(lum_pad, size=grid, mode="area")
        # the grid covers the *padded* input (padding at the end): hints are placed on it
        # at grid / padded size, or a non-square image's hints land too low or too far right
        padded = (int(lum_pad.shape[-2]), int(lum_pad.shape[-1]))
        mix = _fusion.hint_weights(lum_grid, patches, padded)
        propagated = (
            _fusion.mix_colour(mix)
            if mix is not None
            else _fusion.propagate_patches(lum_grid, patches, padded)
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
            fusion = FusionTerms(
                *(None if t is None else t.float() for t in (getattr(f, k.name) for k in _FIELDS))  # type: ignore[arg-type]
            )
        return lo, ab

    Hp, Wp = lum_pad.shape[-2:]
    tile = int(tile or 0)
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
    lum_logits: Tensor | None = None
    post: Any = None
    if logp is not None:
        hl, wl = logp.shape[-2:]
        lum_logits = resize(lum_net, (hl, wl))
        scale = hl / hn
        if hist is not None:
            logp = reweight(logp, hist, info)
        if patches:
            spread = 0.0 if info.hints else hint_spread(patches, scale)
            influence = _raster.hint_influence(patches, (hl, wl), scale, B, spread)
            assert influence is not None  # there are patches
            weight, target = influence
            infl = (weight.to(device), target.to(device))
            if info.joint and centres is not None:
                logp = condition_on_hints(logp, infl, centres)
            else:
                post = infl
    if fusion is not None:
        fusion = FusionTerms(
            *(_crop_valid(getattr(fusion, k.name), (Hp, Wp), (hn, wn)) for k in _FIELDS)  # type: ignore[arg-type, misc]
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
        influence = _raster.hint_influence(patches, (ha, wa), scale, B, spread)
        assert influence is not None  # there are patches
        weight, target = influence
        ab_pull = (weight.to(device), target.to(device))
        ab = torch.lerp(ab, ab_pull[1], ab_pull[0])
    refiner = getattr(model, "refiner", None)  # tinct-base: a post-fusion head
    with_features = fusion is not None and fusion.features is not None
    refiner = refiner() if with_features and callable(refiner) else None
    return NetOutput(
        logp, ab, lum_logits, post, (hn, wn), patches, calls, gray_net, fusion, ab_pull, mix,
        refiner=refiner,
    )  # fmt: skip


#: Hints placed between two cancel checks (placing one costs about 2 ms on a CPU).
_HINT_CHUNK = 32


def _place_hints(
    hints: Sequence[_hints.Hint],
    gray: Tensor,
    net_size: tuple[int, int],
    space: str,
    hint_size: int,
    cancel: Any,
) -> list[_raster.HintPatch]:
    """:func:`tinct.engine.hint_raster.place_hints` in chunks, checking ``cancel`` between them."""
    patches: list[_raster.HintPatch] = []
    for i in range(0, len(hints), _HINT_CHUNK):
        _cancel.check(cancel)
        patches += _raster.place_hints(
            hints[i : i + _HINT_CHUNK], gray, net_size, space=space, default_side=hint_size
        )
    return patches
