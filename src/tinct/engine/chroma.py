"""From a network pass to chrominance: decoding, hint propagation, colour suggestions.

:func:`decode_chroma` turns the cached network output of an image into
chrominance with the chosen decoder, temperature and MRF (and re-applies hint
fusion); :func:`propagate_hints` spreads hints over it (Levin et al.);
:func:`suggest_colors` offers colours at a pixel, drawn from the predicted
distribution (:func:`chroma_samples`); :func:`inactive_knobs` says which knobs cannot
change a call's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from tinct import spaces as pipeline
from tinct.engine import fusion as _fusion
from tinct.engine import hint_raster as _raster
from tinct.engine.hint_decode import hint_shift
from tinct.engine.hint_refine import refine_fused
from tinct.engine.hints import Hint
from tinct.engine.options import ColorizeOptions
from tinct.engine.render import Entry, output_channels
from tinct.engine.threads import call_threads
from tinct.levin import propagate_batch
from tinct.models.info import ModelInfo
from tinct.spaces import lum_from_gray
from tinct.upsample import resize

if TYPE_CHECKING:
    from tinct.engine.colorizer import Colorizer

__all__ = [
    "DECODING_KNOBS",
    "chroma_samples",
    "decode_chroma",
    "inactive_knobs",
    "inert_decoding",
    "kmeans",
    "propagate_hints",
    "suggest_colors",
]


def decode_chroma(entry: Entry, opts: ColorizeOptions, info: ModelInfo, centres: Any) -> Tensor:
    """Chrominance ``(B, 2, h, w)`` on the output grid of the chosen head.

    Args:
        entry: The cached network pass of an image (:class:`~tinct.engine.render.Entry`).
        opts: Resolved options (decoder, temperature, MRF).
        info: The model's description (target, colour space).
        centres: The model's bin centres (see :func:`tinct.models.info.bin_centres`).
    """
    net = entry.net
    regression = opts.decoder in ("ab", "regression") or net.logp is None
    if regression:
        if net.ab is None:
            raise ValueError(
                f"model {info.name!r} has no regression head; choose a distribution "
                f"decoder instead of {opts.decoder!r}"
            )
        return net.ab

    logp = net.logp
    assert logp is not None  # not a regression decode
    t = opts.temperature  # resolved options: never None
    temperature = float(t if t is not None else info.default_temperature)
    mrf_weight, mrf_iters = float(opts.mrf_weight or 0.0), int(opts.mrf_iters or 0)
    if mrf_weight > 0 and mrf_iters > 0 and info.target.mrf and net.lum_logits is not None:
        kw = {} if opts.mrf_edge is None else {"edge_sensitivity": opts.mrf_edge}
        logp = info.target.smooth(
            logp, centres, net.lum_logits, weight=mrf_weight, iterations=mrf_iters, **kw
        )
    # the regression colour (before any hint fusion) is the coherent decoder's fallback
    own = net.fusion.own if net.fusion is not None else net.ab
    ab = info.target.decode(logp, centres, str(opts.decoder), temperature, fallback=own)
    if net.post is not None:
        ab = torch.lerp(ab, net.post[1], net.post[0])
    if net.fusion is not None:
        shift = None
        if net.hint_mix is not None:
            shift = hint_shift(
                net.hint_mix, str(opts.decoder), temperature, mrf_weight=mrf_weight,
                mrf_iters=mrf_iters, mrf_edge=opts.mrf_edge, agreement=net.agreement,
            )  # fmt: skip
        decoded = ab.float()
        ab = _fusion.refuse(net.fusion, decoded, net.ab_pull, shift)
        if not opts.local_hints:
            ab = refine_fused(net, ab, decoded, shift)
    return ab.float()


def propagate_hints(entry: Entry, ab: Tensor, strength: float) -> Tensor:
    """Spread the hints over the decoded grid, the prediction as prior (Levin et al.)."""
    b, _, h, w = ab.shape
    net = entry.net
    lum = lum_from_gray(resize(entry.prepared.gray, (h, w)), "lab")
    influence = _raster.hint_influence(net.patches, (h, w), h / net.net_size[0], b, 0.0)
    assert influence is not None  # there are patches
    weight, target = influence
    out = propagate_batch(lum, target, weight, prior_ab=ab, prior_weight=strength)
    return out.to(ab)


def chroma_samples(
    entry: Entry,
    ab: Tensor,
    plane: int,
    row: float,
    col: float,
    n: int,
    gen: torch.Generator,
    info: ModelInfo,
    centres: Any,
) -> tuple[Tensor, Tensor]:
    """Current chroma at a pixel and ``(n, 2)`` samples of its distribution."""
    H, W = entry.prepared.size
    h, w = ab.shape[-2:]
    iy = min(h - 1, int((row + 0.5) * h / H))
    ix = min(w - 1, int((col + 0.5) * w / W))
    cur = ab[0, :, iy, ix].cpu()
    logp = entry.net.logp
    if logp is None:  # regression: colours in a neighbourhood
        r = 4
        patch = ab[0, :, max(0, iy - r) : iy + r + 1, max(0, ix - r) : ix + r + 1]
        return cur, patch.reshape(2, -1).T.cpu()
    hl, wl = logp.shape[-2:]
    ly = min(hl - 1, int((row + 0.5) * hl / H))
    lx = min(wl - 1, int((col + 0.5) * wl / W))
    p = logp[plane, :, ly, lx].float().exp().cpu()
    return cur, info.target.sample(p, centres, n, gen)


def suggest_colors(
    c: Colorizer,
    image: Any,
    row: float,
    col: float,
    k: int = 9,
    *,
    hints: Sequence[Hint] = (),
    reference: Any = None,
    options: ColorizeOptions | None = None,
    plane: int = 0,
    rgb: bool | None = None,
    samples: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Colour suggestions at a pixel, as ideepcolor offers them.

    Row 0 is the current result at the pixel (exactly as :meth:`Colorizer.colorize`
    renders it); the other ``k - 1`` rows are k-means centres of
    ``samples`` colours drawn from the predicted distribution there,
    sorted by cluster mass (largest first) and snapped into gamut at the
    pixel's luminance. Uses the cached network
    output when the image and hints are unchanged.

    Args:
        c: The colorizer (its lock is held, its cached network pass reused).
        image: The image (as for :meth:`Colorizer.colorize`).
        row: Pixel row.
        col: Pixel column.
        k: Number of colours returned (>= 1).
        hints: Current hints.
        reference: Current reference image.
        options: Options (temperature/decoder give the current prediction).
        plane: Plane index of a stack (flattened leading axes).
        rgb: As for :meth:`Colorizer.colorize`.
        samples: Number of samples drawn from the distribution.
        seed: Random seed (suggestions are deterministic for a seed).

    Returns:
        ``(k, 3)`` uint8 sRGB colours.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    opts = c.resolve_options(options)
    with c._lock, call_threads(c.num_threads, c.device):
        user_net = (options or c.options).net_size
        entry = c._entry(image, hints, reference, opts, rgb, None, None, user_net)
        prep = entry.prepared
        H, W = prep.size
        if not (0 <= row < H and 0 <= col < W):
            raise ValueError(f"pixel (row={row}, col={col}) is outside the {H}x{W} image")
        if not 0 <= plane < prep.gray.shape[0]:
            raise ValueError(f"plane {plane} out of range (0..{prep.gray.shape[0] - 1})")
        ab = c._decode(entry, opts)[plane : plane + 1]
        gen = torch.Generator().manual_seed(seed)
        _, samples_ab = chroma_samples(entry, ab, plane, row, col, samples, gen, c.info, c._centres)
        centres = kmeans(samples_ab, k - 1, gen) if k > 1 else samples_ab[:0]
        v = prep.gray[plane, 0, int(row), int(col)].reshape(1).float().cpu()
        current = c._render(entry, opts).reshape(-1, H, W, output_channels(prep))
        current = current[plane, int(row), int(col), :3]
    if current.dtype != np.uint8:
        current = (np.clip(current, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    out = np.repeat(current[None], k, 0)
    if len(centres):
        n = len(centres)
        lum = pipeline.lum_from_gray(v, c.info.space).expand(n).contiguous()
        chroma = pipeline.snap_chroma(lum, centres.float().cpu(), c.info.space)
        lab = torch.cat((lum[:, None], chroma), 1)[..., None, None]
        srgb = pipeline.space_to_rgb(lab, c.info.space)[:, :, 0, 0]
        out[1 : n + 1] = (srgb * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
        out[n + 1 :] = out[n]  # degenerate distribution: repeat the last colour
    return out


def kmeans(x: Tensor, k: int, gen: torch.Generator, iters: int = 15) -> Tensor:
    """k-means centres of ``x (N, 2)``, largest cluster first; empty clusters are dropped."""
    x = x.float()
    k = min(k, len(x))
    # k-means++ initialisation
    centres = [x[torch.randint(len(x), (1,), generator=gen)].squeeze(0)]
    for _ in range(1, k):
        d2 = torch.cdist(x, torch.stack(centres)).min(1).values.pow(2)
        if d2.sum() <= 0:
            break
        centres.append(x[torch.multinomial(d2 / d2.sum(), 1, generator=gen)].squeeze(0))
    c = torch.stack(centres)
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(1)
        counts = torch.bincount(assign, minlength=len(c)).float()
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        c = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], c)
    assign = torch.cdist(x, c).argmin(1)
    counts = torch.bincount(assign, minlength=len(c))
    order = torch.argsort(counts, descending=True, stable=True)
    return c[order][counts[order] > 0]


#: The knobs that act only by decoding (what :func:`inert_decoding` can make idle).
DECODING_KNOBS = ("temperature", "decoder", "mrf_weight", "mrf_iters", "mrf_edge")


def inert_decoding(net: Any) -> str | None:
    """Why decoding knobs cannot change this result, or ``None`` when they can.

    That is so when every plane's gate is fully open to the propagated hints (the network
    is not trusted there, :func:`hint_reliability`) and the hints have one colour: the
    result is that colour's propagation, with no network colour and no choice between
    hint colours for temperature, decoder or MRF to act on.
    """
    f = net.fusion
    if f is None or not net.patches or bool((f.gate < 1.0 - 1e-6).any()):
        return None
    colours = {tuple(round(float(v), 2) for v in p.chroma.flatten()) for p in net.patches}
    if len(colours) > 1:
        return None
    return (
        "one hint far from the network's own colour: its colour is used everywhere; add a "
        "hint or turn on local hints"
    )


def inactive_knobs(
    c: Colorizer,
    image: Any,
    *,
    hints: Sequence[Hint] = (),
    reference: Any = None,
    options: ColorizeOptions | None = None,
    rgb: bool | None = None,
) -> dict[str, str]:
    """The knobs that cannot change this call's result, each with the reason.

    The model's and mode's reasons (:func:`tinct.models.catalog.inactive_knobs`) plus,
    for a hint-fusing model, the case only the run can tell (:func:`inert_decoding`).
    Uses the cached network pass when :meth:`Colorizer.colorize` ran on the same input.

    Args:
        c: The colorizer.
        image: The image (as for :meth:`Colorizer.colorize`).
        hints: Its hints.
        reference: Its reference image.
        options: Its options.
        rgb: As for :meth:`Colorizer.colorize`.

    Returns:
        ``{knob: reason}`` (knobs of :data:`tinct.models.catalog.KNOBS`).
    """
    from tinct.models import catalog

    opts = c.resolve_options(options, hinted=bool(hints))
    fusion = c.record is not None and catalog.fuses_hints(c.record)
    decoder = (options or c.options).decoder
    out = catalog.inactive_knobs(c.info.config, decoder=decoder, hinted=bool(hints), fusion=fusion)
    if hints and fusion:
        with c._lock, call_threads(c.num_threads, c.device):
            user_net = (options or c.options).net_size
            entry = c._entry(image, hints, reference, opts, rgb, None, None, user_net)
        why = inert_decoding(entry.net)
        if why:
            out.update({k: why for k in DECODING_KNOBS if k not in out})
    return out
