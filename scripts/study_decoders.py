"""Experimental decoders registered for benchmarks/colour_study.py (not shipped)."""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from tinct import decode as D


def _p(logits, t):
    return torch.softmax(logits / t, 1)


def _gray(logits, centres, t, g):
    b, _, h, w = logits.shape
    return logits.new_zeros(b, 2, h, w)


def _fade(logits, centres, t, g):
    r0 = float(os.environ.get("FADE_R0", "0.5"))
    gam = float(os.environ.get("FADE_GAMMA", "1.0"))
    p = _p(logits, t)
    c = centres.to(p)
    m = torch.einsum("bqhw,qd->bdhw", p, c)
    mag = torch.einsum("bqhw,q->bhw", p, c.norm(dim=1))[:, None]
    r = m.norm(dim=1, keepdim=True) / mag.clamp_min(1e-6)
    g_ = ((r - r0) / (1 - r0)).clamp(0, 1) ** gam
    return m * g_


def _modal(logits, centres, t, g):
    """Mean within the dominant hue mode (+ neutral bins), faded by the mode's share."""
    width = math.radians(float(os.environ.get("MODAL_WIDTH", "60")))
    pool = int(os.environ.get("MODAL_POOL", "5"))
    k = int(os.environ.get("MODAL_K", "24"))
    fade_pow = float(os.environ.get("MODAL_FADE", "1.0"))
    neutral = float(os.environ.get("MODAL_NEUTRAL", "12"))
    p = _p(logits, t)
    c = centres.to(p)
    chroma = c.norm(dim=1)
    hue = torch.atan2(c[:, 1], c[:, 0])
    sect = torch.arange(k, device=p.device, dtype=p.dtype) * (2 * math.pi / k)
    d = torch.remainder(hue[:, None] - sect[None] + math.pi, 2 * math.pi) - math.pi  # (Q, K)
    inwin = (d.abs() <= width).to(p.dtype) * (chroma >= neutral).to(p.dtype)[:, None]
    mass = torch.einsum("bqhw,qk->bkhw", p, inwin)  # chromatic mass within +-width of sector
    if pool > 1:
        mass = F.avg_pool2d(mass, pool, 1, pool // 2, count_include_pad=False)
    best = mass.argmax(1)  # (B, H, W)
    sel = inwin.T[best].movedim(-1, 1)  # (B, Q, H, W): bins of the chosen mode
    neutral_bins = (chroma < neutral).to(p.dtype)[None, :, None, None]
    w = p * (sel + neutral_bins)
    ab = torch.einsum("bqhw,qd->bdhw", w, c) / w.sum(1, keepdim=True).clamp_min(1e-8)
    chromatic = (p * (chroma >= neutral).to(p.dtype)[None, :, None, None]).sum(1, keepdim=True)
    share = (p * sel).sum(1, keepdim=True) / chromatic.clamp_min(1e-8)
    return ab * share**fade_pow


for name, fn in {"gray": _gray, "fade": _fade, "modal": _modal}.items():
    D.DECODERS[name] = fn


def _prior(n=1500):
    import numpy as np

    path = "runs/prior313.npy"
    if os.path.exists(path):
        return torch.from_numpy(np.load(path))
    from PIL import Image

    from tinct.bins import encode_hard, gamut_bins
    from tinct.color import rgb_to_lab
    from tinct.training.config import split_indices
    from tinct.training.datasets import find_images

    paths = find_images("../shared/data/train")
    _, train = split_indices(len(paths), 0.02, 0)
    rng = np.random.default_rng(0)
    pick = rng.choice(train, size=n, replace=False)
    counts = torch.zeros(313, dtype=torch.float64)
    cen = gamut_bins()
    for i in pick:
        rgb = np.asarray(Image.open(paths[i]).convert("RGB").resize((256, 256)))
        t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        ab = F.avg_pool2d(rgb_to_lab(t)[:, 1:], 4)
        counts += torch.bincount(encode_hard(ab, cen).flatten(), minlength=313).double()
    prior = (counts / counts.sum()).float()
    np.save(path, prior.numpy())
    return prior


_PRIOR = None


def _calibrated(logits, centres, t, g):
    """Undo class rebalancing (p / w^beta), then annealed mean, then optional fading."""
    global _PRIOR
    if _PRIOR is None:
        _PRIOR = _prior()
    beta = float(os.environ.get("CAL_BETA", "1.0"))
    r0 = float(os.environ.get("FADE_R0", "0"))
    gam = float(os.environ.get("FADE_GAMMA", "1.0"))
    boost = float(os.environ.get("CAL_BOOST", "1.0"))
    prior = _PRIOR.to(logits)
    mix = 0.5 * prior + 0.5 / 313
    logw = -0.5 * mix.log()  # log rebalancing weight, up to a constant
    lg = logits - beta * logw[None, :, None, None]
    p = _p(lg, t)
    c = centres.to(p)
    m = torch.einsum("bqhw,qd->bdhw", p, c)
    if r0 > 0:
        mag = torch.einsum("bqhw,q->bhw", p, c.norm(dim=1))[:, None]
        r = m.norm(dim=1, keepdim=True) / mag.clamp_min(1e-6)
        m = m * ((r - r0) / (1 - r0)).clamp(0, 1) ** gam
    return m * boost


D.DECODERS["calibrated"] = _calibrated


def _calmodal(logits, centres, t, g):
    """Calibrated distribution, then the dominant hue mode's mean, faded by its share."""
    global _PRIOR
    if _PRIOR is None:
        _PRIOR = _prior()
    beta = float(os.environ.get("CAL_BETA", "1.0"))
    prior = _PRIOR.to(logits)
    logw = -0.5 * (0.5 * prior + 0.5 / 313).log()
    return _modal(logits - beta * logw[None, :, None, None], centres, t, g)


D.DECODERS["calmodal"] = _calmodal
