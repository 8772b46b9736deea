"""Turn per-pixel bin distributions into chrominance values.

Every decoder takes **logits or log-probabilities** shaped ``(B, Q, H, W)``
(a softmax over dim 1 is applied inside, so raw network output and the
log-probabilities returned by :func:`tinct.mrf.smooth` both work) plus the bin
centres ``(Q, D)``, and returns chrominance ``(B, D, H, W)`` in the units of
the centres (CIELAB a, b for the 313 / 529 ab bins).

Joint bins (one distribution over 2-D centres):
    ``annealed_mean`` (Zhang et al.: expectation of ``softmax(logits / T)``;
    T = 1 is the mean, T -> 0 tends to the mode; the paper uses T = 0.38),
    ``mean``, ``mode``, ``median`` (per-channel median of the marginals),
    ``sample`` and ``coherent`` (:func:`coherent_mean`: the annealed mean where
    the distribution agrees on one hue, fading -- or falling back on a
    regression colour -- where it is split between distant hues, instead of
    averaging them into a hue the image never had). :func:`decode` dispatches
    by name through :data:`DECODERS`.

Per-channel bins (one 1-D distribution per channel, e.g. 50 bins each for U
and V of CIELUV): :func:`decode_channels`.

Hue / chroma bins (Larsson et al.): :func:`decode_hue_chroma`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "DECODERS",
    "annealed_mean",
    "coherence",
    "coherent_mean",
    "decode",
    "decode_channels",
    "decode_hue_chroma",
    "mean",
    "median",
    "mode",
    "probabilities_to_logits",
    "sample",
]

#: Larsson et al.'s chromatic fading threshold on the hue mean resultant length.
FADING_THRESHOLD = 0.03
#: Hue coherence at or below which :func:`coherent_mean` adds no colour of the
#: distribution (tuned on held-out training images, benchmarks/colour_study.py).
COHERENCE_FLOOR = 0.5


def _check(logits: Tensor, centres: Tensor) -> None:
    if not isinstance(logits, Tensor) or not isinstance(centres, Tensor):
        raise TypeError("logits and centres must be torch tensors")
    if logits.dim() != 4:
        raise ValueError(f"logits must be (B, Q, H, W), got shape {tuple(logits.shape)}")
    if centres.dim() != 2 or centres.shape[0] != logits.shape[1]:
        raise ValueError(
            f"centres must be (Q, D) with Q = {logits.shape[1]}, got {tuple(centres.shape)}"
        )
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got {logits.dtype}")


def _centres(centres: Tensor, like: Tensor) -> Tensor:
    return centres.to(device=like.device, dtype=like.dtype)


def _probs(logits: Tensor, temperature: float = 1.0) -> Tensor:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return torch.softmax(logits / temperature if temperature != 1.0 else logits, dim=1)


def probabilities_to_logits(probs: Tensor, *, eps: float = 1e-12) -> Tensor:
    """Log of probabilities, usable wherever logits are expected.

    Args:
        probs: ``(B, Q, H, W)`` non-negative, summing to 1 over ``Q``.
        eps: Floor applied before the log so empty bins stay finite.

    Returns:
        ``(B, Q, H, W)`` log-probabilities (``softmax`` of them gives ``probs``
        back up to ``eps``).
    """
    return probs.clamp_min(eps).log()


def _expectation(p: Tensor, c: Tensor) -> Tensor:
    return torch.einsum("bqhw,qd->bdhw", p, c)


def annealed_mean(logits: Tensor, centres: Tensor, temperature: float = 0.38) -> Tensor:
    """Expectation of the bin centres under ``softmax(logits / temperature)``.

    Args:
        logits: ``(B, Q, H, W)`` logits or log-probabilities.
        centres: ``(Q, D)`` bin centres.
        temperature: ``T > 0``. ``T = 1`` gives :func:`mean`; ``T -> 0`` tends to
            :func:`mode`; Zhang et al. use 0.38.

    Returns:
        ``(B, D, H, W)`` chrominance, differentiable in ``logits``.
    """
    _check(logits, centres)
    return _expectation(_probs(logits, temperature), _centres(centres, logits))


def mean(logits: Tensor, centres: Tensor) -> Tensor:
    """Expectation of the bin centres (annealed mean at T = 1).

    Args:
        logits: ``(B, Q, H, W)`` logits or log-probabilities.
        centres: ``(Q, D)`` bin centres.

    Returns:
        ``(B, D, H, W)`` chrominance.
    """
    return annealed_mean(logits, centres, 1.0)


def mode(logits: Tensor, centres: Tensor) -> Tensor:
    """Centre of the most probable bin.

    Args:
        logits: ``(B, Q, H, W)`` logits or log-probabilities.
        centres: ``(Q, D)`` bin centres.

    Returns:
        ``(B, D, H, W)`` chrominance (not differentiable).
    """
    _check(logits, centres)
    idx = logits.argmax(1)  # (B, H, W)
    return _centres(centres, logits)[idx].movedim(-1, 1)


def median(logits: Tensor, centres: Tensor) -> Tensor:
    """Per-channel median of the marginal distributions.

    For each chrominance channel ``d`` the joint distribution is marginalised
    onto the distinct values of ``centres[:, d]`` and the smallest value whose
    cumulative probability reaches 1/2 is returned.

    Args:
        logits: ``(B, Q, H, W)`` logits or log-probabilities.
        centres: ``(Q, D)`` bin centres.

    Returns:
        ``(B, D, H, W)`` chrominance (bin centre values; not differentiable).
    """
    _check(logits, centres)
    p = _probs(logits)
    c = _centres(centres, logits)
    out = []
    for d in range(c.shape[1]):
        vals, order = torch.sort(c[:, d], stable=True)
        cdf = p[:, order].cumsum(1)
        # Bins sharing a value are adjacent after sorting, so the first sorted
        # index whose cdf reaches 1/2 carries the marginal median's value.
        k = (cdf < 0.5 - 1e-6).sum(1).clamp_max(c.shape[0] - 1)
        out.append(vals[k])
    return torch.stack(out, dim=1)


def coherence(logits: Tensor, centres: Tensor, temperature: float = 1.0) -> Tensor:
    """How much the hues of a distribution agree: ``|E[ab]| / E[|ab|]``.

    1 when all the probability lies along one hue (or is neutral), near 0 when
    opposite hues cancel (a blue and an orange mode), whose mean would be a
    hue the image never had.

    Args:
        logits: ``(B, Q, H, W)`` logits or log-probabilities.
        centres: ``(Q, 2)`` ab bin centres.
        temperature: ``T > 0`` applied before the expectation.

    Returns:
        ``(B, 1, H, W)`` coherence in ``[0, 1]``.
    """
    _check(logits, centres)
    p = _probs(logits, temperature)
    c = _centres(centres, logits)
    m = _expectation(p, c)
    mag = torch.einsum("bqhw,q->bhw", p, c.norm(dim=1))[:, None]
    return (m.norm(dim=1, keepdim=True) / mag.clamp_min(1e-6)).clamp(0.0, 1.0)


def coherent_mean(
    logits: Tensor,
    centres: Tensor,
    temperature: float = 1.0,
    *,
    fallback: Tensor | None = None,
    floor: float = COHERENCE_FLOOR,
) -> Tensor:
    """Annealed mean that does not average distant hues into a third one.

    With ``m`` the annealed mean and ``R`` the :func:`coherence` at temperature
    ``T``, the trust in the distribution is ``g = clamp((R - floor) / (1 - floor),
    0, 1)``: where the distribution is split between distant hues it fades.

    * Without ``fallback`` the result is ``g * m``: split regions go towards
      neutral, confident ones keep their colour.
    * With ``fallback`` (e.g. a regression head's colour, on its own grid) ``m``
      and ``g`` are resized to that grid and the distribution only adds colour
      along the hue the fallback leans to: ``fallback + g * a * (m - fallback)``
      with the agreement ``a = clamp(<fallback, m> / (|m| max(|m|, |fallback|)),
      0, 1)``. Uncertain regions keep the (muted, rarely wrong) fallback colour.

    Args:
        logits: ``(B, Q, h, w)`` logits or log-probabilities over joint ab bins.
        centres: ``(Q, 2)`` ab bin centres.
        temperature: ``T > 0`` (lower = closer to the mode, more colourful).
        fallback: Optional ``(B, 2, h2, w2)`` colour to fall back on.
        floor: Coherence at or below which nothing of ``m`` is used, in ``[0, 1)``.

    Returns:
        ``(B, 2, h, w)`` chrominance, or ``(B, 2, h2, w2)`` with a fallback.
    """
    _check(logits, centres)
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"floor must be in [0, 1), got {floor}")
    p = _probs(logits, temperature)
    c = _centres(centres, logits)
    m = _expectation(p, c)
    mag = torch.einsum("bqhw,q->bhw", p, c.norm(dim=1))[:, None]
    r = (m.norm(dim=1, keepdim=True) / mag.clamp_min(1e-6)).clamp(0.0, 1.0)
    g = ((r - floor) / (1.0 - floor)).clamp(0.0, 1.0)
    if fallback is None:
        return g * m
    f = fallback.to(m.dtype)
    if f.shape[-2:] != m.shape[-2:]:
        size = f.shape[-2:]
        m = torch.nn.functional.interpolate(m, size=size, mode="bilinear", align_corners=False)
        g = torch.nn.functional.interpolate(g, size=size, mode="bilinear", align_corners=False)
    mn = m.norm(dim=1, keepdim=True)
    scale = mn * torch.maximum(mn, f.norm(dim=1, keepdim=True))
    agree = ((f * m).sum(1, keepdim=True) / scale.clamp_min(1e-6)).clamp(0.0, 1.0)
    return f + g * agree * (m - f)


def _generator(
    device: torch.device, generator: torch.Generator | None, seed: int | None
) -> torch.Generator | None:
    if generator is not None:
        return generator
    if seed is None:
        return None
    return torch.Generator(device="cpu").manual_seed(int(seed))


def sample(
    logits: Tensor,
    centres: Tensor,
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    seed: int | None = None,
) -> Tensor:
    """Draw one bin per pixel from ``softmax(logits / temperature)``.

    Args:
        logits: ``(B, Q, H, W)`` logits or log-probabilities.
        centres: ``(Q, D)`` bin centres.
        temperature: ``T > 0``; below 1 sharpens the distribution.
        generator: Random generator; its device decides where the uniform
            numbers are drawn. Takes precedence over ``seed``.
        seed: Seed for a fresh CPU generator, so results do not depend on the
            device (``None`` uses the global RNG).

    Returns:
        ``(B, D, H, W)`` chrominance (bin centre values).
    """
    _check(logits, centres)
    p = _probs(logits, temperature)
    gen = _generator(logits.device, generator, seed)
    b, q, h, w = p.shape
    dev = gen.device if gen is not None else p.device
    u = torch.rand((b, 1, h, w), generator=gen, device=dev, dtype=p.dtype).to(p.device)
    idx = (p.cumsum(1) < u).sum(1).clamp_max(q - 1)
    return _centres(centres, logits)[idx].movedim(-1, 1)


def _annealed(
    logits: Tensor, centres: Tensor, temperature: float, generator: torch.Generator | None
) -> Tensor:
    return annealed_mean(logits, centres, temperature)


def _mean(
    logits: Tensor, centres: Tensor, temperature: float, generator: torch.Generator | None
) -> Tensor:
    return mean(logits, centres)


def _mode(
    logits: Tensor, centres: Tensor, temperature: float, generator: torch.Generator | None
) -> Tensor:
    return mode(logits, centres)


def _median(
    logits: Tensor, centres: Tensor, temperature: float, generator: torch.Generator | None
) -> Tensor:
    return median(logits, centres)


def _sample(
    logits: Tensor, centres: Tensor, temperature: float, generator: torch.Generator | None
) -> Tensor:
    return sample(logits, centres, temperature=temperature, generator=generator)


def _coherent(
    logits: Tensor, centres: Tensor, temperature: float, generator: torch.Generator | None
) -> Tensor:
    return coherent_mean(logits, centres, temperature)


Decoder = Callable[[Tensor, Tensor, float, "torch.Generator | None"], Tensor]

#: Decoder name -> ``fn(logits, centres, temperature, generator)``. The
#: temperature is used by ``annealed_mean``, ``coherent`` and ``sample`` and
#: ignored by the others (``mode`` does not depend on it). The engine gives
#: ``coherent`` the model's regression colour as its fallback when there is one.
DECODERS: dict[str, Decoder] = {
    "annealed_mean": _annealed,
    "coherent": _coherent,
    "mean": _mean,
    "median": _median,
    "mode": _mode,
    "sample": _sample,
}


def _lookup(method: str) -> Decoder:
    key = str(method).lower().replace("-", "_").replace(" ", "_")
    try:
        return DECODERS[key]
    except KeyError:
        valid = ", ".join(sorted(DECODERS))
        raise ValueError(f"unknown decoder {method!r}; valid names: {valid}") from None


def decode(
    logits: Tensor,
    centres: Tensor,
    method: str = "annealed_mean",
    *,
    temperature: float = 0.38,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Decode joint-bin distributions with the decoder named ``method``.

    Args:
        logits: ``(B, Q, H, W)`` logits or log-probabilities.
        centres: ``(Q, D)`` bin centres.
        method: One of :data:`DECODERS` (case-insensitive): ``"annealed_mean"``,
            ``"mean"``, ``"median"``, ``"mode"``, ``"sample"``.
        temperature: Used by ``annealed_mean`` and ``sample``.
        seed: Seed for ``sample`` (ignored by the others).
        generator: Random generator for ``sample``; overrides ``seed``.

    Returns:
        ``(B, D, H, W)`` chrominance.

    Raises:
        ValueError: For an unknown method name (the message lists the valid
            names), mismatched shapes or a non-positive temperature.
    """
    fn = _lookup(method)
    return fn(logits, centres, temperature, _generator(logits.device, generator, seed))


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
        method: A name from :data:`DECODERS`, applied to each channel's own
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

    The generic names of :data:`DECODERS` decode chroma with that method and
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
        method: ``"larsson"`` or a name from :data:`DECODERS`.
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
