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

__all__ = ["ColorModel", "FusionTerms", "ModelOutput"]


@dataclass
class FusionTerms:
    """How a hint-fusing model combined its own colour with propagated hints.

    All maps are on the grid of :attr:`ModelOutput.ab`. The fused colour is
    ``own + gate * (propagated - own) + correction``; keeping the terms lets
    the engine put a *decoded* colour (any decoder, temperature, MRF) in place
    of ``own`` without running the network again.

    Attributes:
        own: ``(B, 2, h, w)`` the network's regression colour before fusion.
        propagated: ``(B, 2, h, w)`` the hints propagated classically (Levin et al.).
        gate: ``(B, 1, h, w)`` trust in the propagated colour, in ``[0, 1]``
            (0 for images without hints).
        correction: ``(B, 2, h, w)`` additive correction (0 without hints).
        features: ``(B, C, h, w)`` the decoder features the gate read, for a model
            with a :class:`~tinct.models.hint_refiner.HintRefiner` (else ``None``).
    """

    own: Tensor
    propagated: Tensor
    gate: Tensor
    correction: Tensor
    features: Tensor | None = None

    def fuse(self, own: Tensor) -> Tensor:
        """The fused colour with ``own (B, 2, h, w)`` as the network's colour."""
        return own + self.gate * (self.propagated - own) + self.correction


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
            pure classification models. For hint-fusing models, the fused colour.
        fusion: The terms of that fusion (hint-fusing models given hints), else ``None``.
    """

    logits: Tensor | None = None
    ab: Tensor | None = None
    fusion: FusionTerms | None = None


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
