"""Decoders of factored targets: per-channel bins (two 1-D histograms) and hue/chroma histograms."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from tinct.decode.joint import FADING_THRESHOLD, _expectation, _generator, _lookup, _probs, median

__all__ = [
    "decode_channels",
    "decode_hue_chroma",
]


def decode_channels(
    logits: Tensor,
    centres: Tensor,
    method: str = "annealed_mean",
    *,
    temperature: float = 0.38,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Decode per-channel (1-D) bin distributions, one per chrominance channel.

    Args:
        logits: ``(B, C * K, H, W)`` logits or log-probabilities, channel-major
            (the first ``K`` belong to channel 0, e.g. U; the next ``K`` to V).
        centres: ``(C, K)`` bin centres of each channel (e.g. 50 bins per U/V
            channel of CIELUV from :func:`tinct.bins.uniform_bins`).
        method: A name from :data:`~tinct.decode.DECODERS`, applied to each channel's own
            distribution.
        temperature: Used by ``annealed_mean`` and ``sample``.
        seed: Seed for ``sample``.
        generator: Random generator for ``sample``; overrides ``seed``.

    Returns:
        ``(B, C, H, W)`` decoded channel values.

    Raises:
        ValueError: If ``logits`` does not have ``C * K`` channels, or for an
            unknown method.
    """
    fn = _lookup(method)
    if centres.dim() != 2:
        raise ValueError(f"centres must be (C, K), got shape {tuple(centres.shape)}")
    c, k = centres.shape
    if logits.dim() != 4 or logits.shape[1] != c * k:
        raise ValueError(
            f"logits must be (B, {c * k}, H, W) for centres {tuple(centres.shape)}, "
            f"got {tuple(logits.shape)}"
        )
    gen = _generator(logits.device, generator, seed)
    out = [
        fn(logits[:, j * k : (j + 1) * k], centres[j].reshape(k, 1), temperature, gen)
        for j in range(c)
    ]
    return torch.cat(out, dim=1)


def _circular_mean(p: Tensor, hue: Tensor) -> tuple[Tensor, Tensor]:
    """Angle ``(B, 1, H, W)`` and mean resultant length of hue distributions ``p``."""
    cs = torch.stack((torch.cos(hue), torch.sin(hue)), dim=1)  # (K, 2)
    z = _expectation(p, cs)
    angle = torch.atan2(z[:, 1:2], z[:, 0:1])
    return angle, z.norm(dim=1, keepdim=True)


def decode_hue_chroma(
    logits: Tensor,
    hue_centres: Tensor,
    chroma_centres: Tensor,
    method: str = "larsson",
    *,
    temperature: float = 1.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Decode Larsson-style hue and chroma distributions into Lab a, b.

    ``"larsson"`` (their default): chroma is the median of the chroma
    distribution, hue the circular expectation ``angle(sum p_k exp(i h_k))``,
    and chroma is faded where the hue is uncertain: multiplied by
    ``min(R, 0.03) / 0.03`` with ``R`` the mean resultant length.

    The generic names of :data:`~tinct.decode.DECODERS` decode chroma with that method and
    hue with the matching circular rule: ``mean`` / ``annealed_mean`` use the
    (annealed) circular expectation, ``median`` also uses the circular
    expectation (a circular median is ill-defined), ``mode`` and ``sample``
    use the mode / a sample of the hue distribution. No fading is applied.

    Args:
        logits: ``(B, Kh + Kc, H, W)`` logits or log-probabilities: hue bins
            first, then chroma bins.
        hue_centres: ``(Kh,)`` hue bin centres in radians (:func:`tinct.bins.hue_bins`).
        chroma_centres: ``(Kc,)`` chroma bin centres, Lab units
            (:func:`tinct.bins.chroma_bins`).
        method: ``"larsson"`` or a name from :data:`~tinct.decode.DECODERS`.
        temperature: Used by ``annealed_mean`` and ``sample``.
        seed: Seed for ``sample``.
        generator: Random generator for ``sample``; overrides ``seed``.

    Returns:
        ``(B, 2, H, W)`` CIELAB a, b.

    Raises:
        ValueError: On shape mismatch or an unknown method.
    """
    kh, kc = hue_centres.numel(), chroma_centres.numel()
    if logits.dim() != 4 or logits.shape[1] != kh + kc:
        raise ValueError(
            f"logits must be (B, {kh + kc}, H, W) for {kh} hue + {kc} chroma bins, "
            f"got {tuple(logits.shape)}"
        )
    hl, cl = logits[:, :kh], logits[:, kh:]
    hc = hue_centres.reshape(kh, 1).to(device=logits.device, dtype=logits.dtype)
    cc = chroma_centres.reshape(kc, 1)
    key = str(method).lower().replace("-", "_")
    gen = _generator(logits.device, generator, seed)
    if key == "larsson":
        chroma = median(cl, cc)
        hue, r = _circular_mean(_probs(hl), hc[:, 0])
        chroma = chroma * r.clamp_max(FADING_THRESHOLD) / FADING_THRESHOLD
    else:
        fn = _lookup(key)
        chroma = fn(cl, cc, temperature, gen)
        if key in ("mode", "sample"):
            hue = fn(hl, hc, temperature, gen)
        else:
            t = temperature if key == "annealed_mean" else 1.0
            hue, _ = _circular_mean(_probs(hl, t), hc[:, 0])
    hue = torch.remainder(hue, 2.0 * math.pi)
    return torch.cat((chroma * torch.cos(hue), chroma * torch.sin(hue)), dim=1)
