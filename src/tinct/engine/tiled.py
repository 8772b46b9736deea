"""The network pass over tiles: overlapping tiles run one by one, stitched on the output grid."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from tinct.engine.optionspec import OptionError
from tinct.models.info import ModelInfo, log_probs, net_shape
from tinct.tiling import grid_shape, make_grid
from tinct.upsample import resize

__all__ = [
    "GLOBAL_BLEND",
    "MAX_TILES",
    "check_tile_count",
]

#: Most tiles one image may be cut into. Each tile is a network pass, so a tiny tile
#: (or an overlap close to the tile) on a large network input would keep the engine busy
#: for hours: ``levin`` cut 384 network pixels into 136 161 tiles of 16 with an overlap
#: of 15. Automatic tiling makes at most a few dozen; a 4096-pixel network input (the
#: largest ``net_size``) in tiles of 128 with the default overlap makes 1849.
MAX_TILES = 4096


def _tile_and_overlap(stride: int, tile: int, overlap: int | None) -> tuple[int, int]:
    """The tile and overlap the grid uses: multiples of the stride, the overlap below the tile."""
    tile = max(stride, (tile // stride) * stride)
    overlap = tile // 4 if overlap is None else overlap
    return tile, min((overlap // stride) * stride, tile - stride)


def check_tile_count(
    info: ModelInfo, size: Sequence[int], net_long: int, tile: int, overlap: int | None
) -> None:
    """Refuse, before any work, a tiling that cuts the image into over :data:`MAX_TILES` tiles.

    Args:
        info: The model's description (its stride).
        size: ``(H, W)`` of the image.
        net_long: Long side of the network input.
        tile: The planned tile side in network pixels (``0`` = one pass).
        overlap: The ``tile_overlap`` option (``None`` = a quarter of the tile).

    Raises:
        OptionError: For ``tile``: how many tiles, and the most allowed (naming
            ``net_size`` and ``tile_overlap`` too, which change the count).
    """
    if not tile:
        return
    s = info.stride
    Hp, Wp = (n + (-n) % s for n in net_shape(size, net_long))  # the padded network input
    if Hp <= tile and Wp <= tile:  # one pass (run_network)
        return
    side, step = _tile_and_overlap(s, tile, overlap)
    rows, cols = grid_shape(Hp, Wp, side, step, multiple=s)
    if rows * cols > MAX_TILES:
        raise OptionError(
            "tile",
            f"cuts this image into {rows * cols} tiles ({rows} x {cols} at {{net_size}} "
            f"{net_long}), more than the {MAX_TILES} allowed: choose a larger {{tile}}, a "
            "smaller {tile_overlap} or a smaller {net_size}",
            tile,
        )


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
    tile, overlap = _tile_and_overlap(stride, tile, overlap)
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
    if own_hint and g_logp is not None and info.target.gamut:
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


#: Weight of the low-resolution global pass when blending tiled predictions. The global
#: pass sees the whole image; tiles see less context and mostly add resolution, which the
#: luminance-guided upsampling largely supplies anyway. With tinct-base's distribution
#: decoding, 0.5 left 1024² tiled results 2.3-2.4/255 from untiled ones; 2/3 keeps them
#: under 2/255 (benchmarks/bench_engine.py --only tiles).
GLOBAL_BLEND = 2.0 / 3.0


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


def _global_on_grid(
    g: Tensor, grid_hw: Sequence[int], net_hw: Sequence[int], Hp: int, Wp: int
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
