"""Decoders of joint chrominance bins (313 or 529 ab bins): mean, mode, median, sampling, coherence.

See :mod:`tinct.decode` for the overview.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "DECODERS",
    "annealed_mean",
    "coherence",
    "coherent_mean",
    "decode",
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
    if temperature == 1.0:
        return torch.softmax(logits, dim=1)
    # shifted first: a small temperature scales only values <= 0 (no overflow to inf)
    return torch.softmax((logits - logits.amax(1, keepdim=True)) / temperature, dim=1)


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
