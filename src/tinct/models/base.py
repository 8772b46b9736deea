"""The contract every tinct colorization network follows.

A model takes the luminance channel of its colour space plus optional user
hints and returns a :class:`ModelOutput`: logits over its chrominance bins
(classification models), a chrominance map (regression models), or both.
Normalisation of inputs happens inside the model, so callers always pass
physical units.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

__all__ = ["ColorModel", "ModelOutput"]


@dataclass
class ModelOutput:
    """What a colorization network returns.

    Attributes:
        logits: ``(B, Q, h, w)`` unnormalised log-probabilities over the model's
            bins (``Q`` = 313, 529, ``C * K`` per-channel bins, or 64
            hue+chroma bins), at the network's output stride; ``None`` for
            pure regression models.
        ab: ``(B, 2, h', w')`` predicted chrominance in the units of the
            model's colour space (CIELAB a, b for Lab models); ``None`` for
            pure classification models.
    """

    logits: Tensor | None = None
    ab: Tensor | None = None


class ColorModel(nn.Module):
    """Base class: ``forward(lum, hint_ab=None, hint_mask=None, global_hint=None)``.

    Args of ``forward``:
        lum: ``(B, 1, H, W)`` luminance of the model's colour space (CIELAB /
            CIELUV L in ``[0, 100]``; YUV Y in ``[0, 1]``).
        hint_ab: ``(B, 2, H, W)`` hint chrominance (same units as the output),
            zero where there is no hint.
        hint_mask: ``(B, 1, H, W)`` 1 where a hint is given, else 0.
        global_hint: ``(B, 314)`` 313-bin ab histogram of a reference plus a
            0/1 flag in the last column.

    Models that ignore an input simply do not use it.
    """

    #: Spatial size multiple the network needs (inputs are padded to it).
    stride: int = 8
