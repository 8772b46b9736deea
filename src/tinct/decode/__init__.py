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

Joint-bin decoders are :mod:`tinct.decode.joint`; decoders of factored
targets (per-channel and hue/chroma bins) :mod:`tinct.decode.factored`.
"""

from __future__ import annotations

from tinct.decode.factored import (
    decode_channels,
    decode_hue_chroma,
)
from tinct.decode.joint import (
    DECODERS,
    annealed_mean,
    coherence,
    coherent_mean,
    decode,
    mean,
    median,
    mode,
    probabilities_to_logits,
    sample,
)

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
