"""What a model's colour head predicts, in one place: the target abstraction.

A model's ``ModelConfig.target`` names one of :data:`TARGETS`; every module
that needs to know what the logits mean asks the :class:`Target` instead of
comparing names. A target knows its bins (:meth:`Target.centres`,
:meth:`Target.check`), how its logits normalise (:meth:`Target.log_probs`),
decode (:meth:`Target.decode`), smooth in the MRF (:meth:`Target.smooth`) and
are sampled for colour suggestions (:meth:`Target.sample`), how a reference
image becomes a histogram prior (:meth:`Target.histograms`), which loss trains
it (:attr:`Target.loss`) and which extra decoders it offers.

The targets:

* :data:`GAMUT313`: 313 in-gamut ab bins (Zhang et al.), joint, soft-encoded loss.
* :data:`GRID529`: 23 x 23 ab grid (Melas-Kyriazi et al.), joint.
* :data:`CHANNEL`: ``K`` uniform bins per chroma channel (two 1-D histograms).
* :data:`HUE_CHROMA`: ``K`` hue bins over ``[0, 2 pi)`` then ``K`` chroma bins (Larsson et al.).
* :data:`REGRESSION`: no distribution; the ``ab`` head is the colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tinct import bins, mrf
from tinct import decode as D

__all__ = [
    "CHANNEL",
    "GAMUT313",
    "GRID529",
    "HUE_CHROMA",
    "REGRESSION",
    "TARGETS",
    "Target",
    "get_target",
]


@dataclass(frozen=True)
class Target:
    """One kind of colour head (see the module docstring for the instances).

    Attributes:
        name: The name registry entries use (``ModelConfig.target``).
        joint: Logits over joint (a, b) bins (one distribution per pixel).
        has_logits: The target has a distribution (all but regression).
        mrf: The MRF smoothing (:mod:`tinct.mrf`) applies to its distributions.
        gamut: The 313 in-gamut CIELAB bins: soft-encoded loss, the global-hint
            histogram, decoder adaptation and CIELAB validation apply.
        num_bins: Fixed bin count (joint targets), else ``None``.
        loss: Name of the classification loss that trains it
            (:data:`tinct.training.losses.CLASSIFICATION_LOSSES`), ``None`` for regression.
        extra_decoders: Decoders beyond :data:`tinct.decode.DECODERS` it offers.
        circular_first: Its first channel is an angle (hue), compared modulo 2 pi.
        label: How messages name its distributions (``"hue/chroma"``).
    """

    name: str
    joint: bool = False
    has_logits: bool = True
    mrf: bool = True
    gamut: bool = False
    num_bins: int | None = None
    loss: str | None = None
    extra_decoders: tuple[str, ...] = ()
    circular_first: bool = False
    label: str = ""

    def __str__(self) -> str:
        return self.name

    @property
    def per_channel(self) -> bool:
        """Two 1-D distributions per pixel (channel or hue/chroma bins)."""
        return self.has_logits and not self.joint

    @property
    def validates_in_lab(self) -> bool:
        """Validation PSNR through CIELAB is defined (313 gamut bins, or regression)."""
        return self.gamut or not self.has_logits

    # ------------------------------------------------------------------ bins

    def check(self, num_bins: int, bins_per_channel: int | None, channel_range: Any) -> None:
        """Raise ``ValueError`` when a config's bin fields do not fit this target."""
        if self.num_bins is not None and num_bins != self.num_bins:
            raise ValueError(f"target {self.name!r} has num_bins {self.num_bins}")
        if self.per_channel:
            if bins_per_channel is None or channel_range is None:
                raise ValueError(f"target {self.name!r} needs bins_per_channel and channel_range")
            if num_bins != 2 * bins_per_channel:
                raise ValueError("num_bins must be 2 * bins_per_channel")

    def centres(
        self,
        bins_per_channel: int | None = None,
        channel_range: tuple[float, float] | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor | None:
        """Bin centres: ``(Q, 2)`` ab for joint targets, ``(2, K)`` per channel, else ``None``.

        For hue/chroma the first row is the hue in radians, the second the chroma.
        """
        if self.name == GAMUT313.name:
            return bins.gamut_bins(device=device)
        if self.name == GRID529.name:
            return bins.grid_bins(device=device)
        if not self.per_channel:
            return None
        k = int(bins_per_channel or 0)
        lo, hi = channel_range or (0.0, 1.0)
        vals = bins.uniform_bins(k, lo, hi, device=device)
        first = bins.hue_bins(k, device=device) if self.circular_first else vals
        return torch.stack((first, vals))

    def log_probs(self, logits: Tensor) -> Tensor:
        """Normalise ``(B, Q, h, w)`` logits to log-probabilities per distribution."""
        logits = logits.float()
        if self.joint:
            return F.log_softmax(logits, dim=1)
        b, q, h, w = logits.shape
        return F.log_softmax(logits.view(b, 2, q // 2, h, w), dim=2).view(b, q, h, w)

    # ------------------------------------------------------------------ decoding

    def decode(
        self,
        logp: Tensor,
        centres: Tensor,
        decoder: str,
        temperature: float,
        fallback: Tensor | None = None,
    ) -> Tensor:
        """Chrominance ``(B, 2, h, w)`` from log-probabilities with a named decoder.

        Args:
            logp: ``(B, Q, h, w)`` log-probabilities (see :meth:`log_probs`).
            centres: :meth:`centres` of the model.
            decoder: A decoder name (:data:`tinct.decode.DECODERS` or an extra one).
            temperature: Softmax temperature of the tempered decoders.
            fallback: ``(B, 2, h, w)`` colour the ``coherent`` decoder falls back on.
        """
        if self.joint and decoder == "coherent":
            return D.coherent_mean(logp, centres, temperature, fallback=fallback)
        if self.joint:
            return D.decode(logp, centres, decoder, temperature=temperature)
        if self.circular_first:
            return D.decode_hue_chroma(
                logp, centres[0], centres[1], method=decoder, temperature=temperature
            )
        return D.decode_channels(logp, centres, decoder, temperature=temperature)

    def smooth(self, logp: Tensor, centres: Tensor, lum: Tensor, **kwargs: Any) -> Tensor:
        """The MRF-smoothed distributions (:func:`tinct.mrf.smooth` or ``smooth_channels``)."""
        if not self.mrf:
            raise ValueError(f"the MRF does not apply to {self.label or self.name} distributions")
        fn = mrf.smooth if self.joint else mrf.smooth_channels
        return fn(logp, centres, lum, **kwargs)

    def sample(self, p: Tensor, centres: Tensor, n: int, gen: torch.Generator) -> Tensor:
        """``(n, 2)`` chrominance samples from one pixel's probabilities ``p (Q,)``."""
        c = centres.cpu()
        if self.joint:
            idx = torch.multinomial(p / p.sum(), n, replacement=True, generator=gen)
            jitter = (torch.rand(n, 2, generator=gen) - 0.5) * 10.0
            return c[idx] + jitter
        k = p.shape[0] // 2
        i0 = torch.multinomial(p[:k] / p[:k].sum(), n, replacement=True, generator=gen)
        i1 = torch.multinomial(p[k:] / p[k:].sum(), n, replacement=True, generator=gen)
        x0, x1 = c[0][i0], c[1][i1]
        if self.circular_first:  # hue, chroma -> a, b
            return torch.stack((x1 * torch.cos(x0), x1 * torch.sin(x0)), 1)
        return torch.stack((x0, x1), 1)

    # ------------------------------------------------------------------ references

    def histogram_space(self, space: str) -> str:
        """The colour space a reference's histogram is taken in (hue/chroma: CIELAB)."""
        return "lab" if self.circular_first else space

    @property
    def histogram_groups(self) -> int:
        """Histograms per reference: one for joint bins, one per channel otherwise."""
        return 1 if self.joint else 2

    def histograms(self, a: Tensor, b: Tensor, centres: Tensor) -> Tensor:
        """Histograms ``(2 * K,)`` of chroma ``a, b (N,)``: one per channel, each sums to 1."""
        vals = (a, b)
        if self.circular_first:
            vals = (torch.atan2(b, a) % (2 * math.pi), torch.sqrt(a * a + b * b))
        c = centres.float().cpu()
        hists = []
        for i, v in enumerate(vals):
            d = (v[:, None] - c[i][None, :]).abs()
            if self.circular_first and i == 0:  # circular distance
                d = torch.minimum(d, 2 * math.pi - d)
            h = torch.bincount(d.argmin(1), minlength=c.shape[1]).float()
            hists.append(h / h.sum())
        return torch.cat(hists)

    def describe(self, bins_per_channel: int | None = None) -> str:
        """Short text for listings: the name, with the bin layout of per-channel targets."""
        if self.per_channel and not self.circular_first and bins_per_channel:
            return f"{self.name} {bins_per_channel}x2"
        return self.name


GAMUT313 = Target("gamut313", joint=True, gamut=True, num_bins=313, loss="soft_ce")
GRID529 = Target("grid529", joint=True, num_bins=529, loss="hard_ce")
CHANNEL = Target("channel", loss="channel_ce")
HUE_CHROMA = Target(
    "hue_chroma",
    mrf=False,
    loss="hue_chroma_ce",
    extra_decoders=("larsson",),
    circular_first=True,
    label="hue/chroma",
)
REGRESSION = Target("regression", has_logits=False, mrf=False)

#: Every target by name, in the order the registry documents them.
TARGETS: dict[str, Target] = {
    t.name: t for t in (REGRESSION, GAMUT313, GRID529, CHANNEL, HUE_CHROMA)
}


def get_target(name: str | Target) -> Target:
    """The :class:`Target` named ``name`` (a Target passes through).

    Raises:
        ValueError: Unknown name; the message lists the known ones.
    """
    if isinstance(name, Target):
        return name
    try:
        return TARGETS[str(name)]
    except KeyError:
        raise ValueError(f"target must be one of {tuple(TARGETS)}, got {name!r}") from None
