"""A small head that refines tinct-base's hinted colour after the engine has fused it.

The engine's hint path (:mod:`tinct.engine.fusion`) ends with a fused colour ``F``
built from three candidates: the network's decoded colour ``N`` (with hints), the
propagated hints ``P`` and, through the trust rule, the network's automatic colour
``A``. The learned gate inside the network chooses between ``N`` and ``P`` from
five pixels around; this head looks at the decoder's features over about thirty
pixels, with the distance to the nearest hint and how well the network agreed with
the hints, and moves each pixel part of the way towards one of the candidates:

``out = F + s_N (N - F) + s_P (P - F) + s_A (A - F) + correction``, ``s in (-1, 1)``.

It was trained on frozen tinct-base features and the engine's own fused colours
(docs/models.md, model card), so it only applies to the trunk it was trained on:
:meth:`HintRefiner.matches` compares a fingerprint of the decoder's last layer
(:func:`trunk_norm`), so a model fine-tuned from tinct-base does not use it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["CUE_CHANNELS", "FEATURE_CHANNELS", "HintRefiner", "trunk_norm"]

#: Decoder feature channels the head reads (tinct-base's ``dec1``).
FEATURE_CHANNELS = 32
#: Cue channels: gate, L / 100, hint coverage, log1p(distance to a hint) / 4,
#: agreement, log(hint count) / 4.
CUE_CHANNELS = 6
#: ab normalisation of the colour inputs.
_AB = 110.0
#: Scale of the additive correction (ab units per unit of output).
_CORRECTION = 10.0


class HintRefiner(nn.Module):
    """Per-pixel mix of the hinted candidates, from decoder features and cues.

    About 32 k parameters: three 3 x 3 convolutions dilated 1, 2 and 4 (a reach of
    15 pixels on the fusion grid) and a 1 x 1 output. It starts as the identity
    (output layer zero).
    """

    def __init__(self, width: int = 32, features: int = FEATURE_CHANNELS):
        super().__init__()
        cin = features + 8 + CUE_CHANNELS
        self.net = nn.Sequential(
            nn.Conv2d(cin, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=4, dilation=4),
            nn.ReLU(),
            nn.Conv2d(width, 5, 1),
        )
        #: :func:`trunk_norm` of the layer the head was trained on (0 = not set).
        self.register_buffer("trunk_norm", torch.zeros(1))
        with torch.no_grad():
            self.net[-1].weight.zero_()  # type: ignore[operator]
            self.net[-1].bias.zero_()  # type: ignore[operator]

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def, override]
        """As :meth:`torch.nn.Module._apply`, but the fingerprint stays float32."""
        norm = self.trunk_norm.detach().float().clone()
        super()._apply(fn, recurse)
        self.trunk_norm = norm.to(self.net[0].weight.device)  # type: ignore[union-attr]
        return self

    def matches(self, trunk: nn.Module) -> bool:
        """Whether ``trunk`` (the decoder layer whose output it reads) is the one it knows.

        A fine-tuned decoder moves :func:`trunk_norm` by far more than the 0.1 % allowed;
        running the same weights in float16 or bfloat16 does not.
        """
        ref = float(self.trunk_norm)
        return ref > 0.0 and abs(trunk_norm(trunk) - ref) <= 1e-3 * ref

    def forward(
        self,
        features: Tensor,
        fused: Tensor,
        decoded: Tensor,
        propagated: Tensor,
        auto: Tensor,
        cues: Tensor,
    ) -> Tensor:
        """Refined colour.

        Args:
            features: ``(B, 32, h, w)`` decoder features of the hinted pass.
            fused: ``(B, 2, h, w)`` the engine's fused ab (CIELAB units, about
                ``[-110, 110]``).
            decoded: ``(B, 2, h, w)`` the network's decoded colour with hints.
            propagated: ``(B, 2, h, w)`` the propagated hints as the engine decoded them.
            auto: ``(B, 2, h, w)`` the network's colour without hints.
            cues: ``(B, 6, h, w)``, see :data:`CUE_CHANNELS`.

        Returns:
            ``(B, 2, h, w)`` refined ab.
        """
        f = fused.float()
        cands = [t.float() - f for t in (decoded, propagated, auto)]
        inp = torch.cat([features.float(), f / _AB, *(c / _AB for c in cands), cues.float()], 1)
        z = self.net(inp.to(self.net[0].weight.dtype)).float()  # type: ignore[union-attr, arg-type]
        s = torch.tanh(z[:, :3])
        out = f + _CORRECTION * z[:, 3:]
        for k, c in enumerate(cands):
            out = out + s[:, k : k + 1] * c
        return out


def trunk_norm(trunk: nn.Module) -> float:
    """Sum of the squares of a layer's parameters (the refiner's fingerprint of it)."""
    return float(sum(p.detach().double().square().sum() for p in trunk.parameters()))
