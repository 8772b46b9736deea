"""tinct's own compact family: a hint-aware U-Net with global-feature fusion.

Designed to run fast on a laptop CPU and to be trainable on one: the encoder
starts at half resolution, context comes from a 1/16 dilated stage and a
1/32 stage whose pooled features are fused back into every position (Iizuka
et al. 2016), and a reference histogram (SIGGRAPH17's global hint) is
injected at the same place. Two heads share the trunk: 313-bin logits at 1/4
resolution (temperature, suggestions, MRF) and ab regression at 1/2.

With ``fusion=True`` (``tinct-base``) hints are also propagated classically:
the model solves Levin et al.'s optimisation for the hints it is given
(:func:`tinct.levin.propagate_batch`, at the input resolution) and a small
fusion head, looking at the trunk's features and at both candidate colours,
predicts per pixel how far to trust the propagated colour over the network's
own (a gate) plus a correction. Without hints the output is the plain network
prediction. Gate and correction start at "95 % Levin, no correction", so
weights saved without the fusion head load with exactly that behaviour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinct.models.base import ColorModel, FusionTerms, ModelOutput
from tinct.models.hint_refiner import HintRefiner

__all__ = ["TinctUNet"]

L_CENT, L_NORM, AB_NORM = 50.0, 100.0, 110.0


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _up(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class TinctUNet(ColorModel):
    """Compact hint-aware U-Net (``tinct-base`` / ``tinct-small``).

    Args:
        widths: Channels at strides 2, 4, 8, 16 and 32.
        num_bins: Size of the classification head (313 gamut bins).
        fusion: Fuse the network's ab with Levin propagation of the hints.
        fusion_width: Channels of the fusion head.
        refiner: Carry a :class:`~tinct.models.hint_refiner.HintRefiner` (the engine
            applies it after fusing the hints; :meth:`refiner`).
    """

    stride = 32
    #: Initial gate logit of the fusion head: sigmoid(3) = 0.95 of the Levin colour.
    GATE_INIT = 3.0
    #: ab units per unit of the fusion head's correction output.
    CORRECTION_SCALE = 10.0

    def __init__(
        self,
        widths: tuple[int, int, int, int, int] = (32, 64, 128, 224, 256),
        num_bins: int = 313,
        fusion: bool = False,
        fusion_width: int = 32,
        refiner: bool = False,
    ):
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.enc1 = nn.Sequential(_cbr(4, c1, 2), _cbr(c1, c1))
        self.enc2 = nn.Sequential(_cbr(c1, c2, 2), _cbr(c2, c2))
        self.enc3 = nn.Sequential(_cbr(c2, c3, 2), _cbr(c3, c3))
        self.enc4 = nn.Sequential(
            _cbr(c3, c4, 2), _cbr(c4, c4), _cbr(c4, c4, dilation=2), _cbr(c4, c4, dilation=2)
        )
        self.enc5 = nn.Sequential(_cbr(c4, c5, 2), _cbr(c5, c5))
        self.global_feat = nn.Sequential(
            nn.Linear(c5, c4), nn.ReLU(inplace=True), nn.Linear(c4, c4)
        )
        self.global_hint = nn.Sequential(
            nn.Linear(314, c4), nn.ReLU(inplace=True), nn.Linear(c4, c4)
        )
        self.fuse = _cbr(c4 + c5, c4)
        self.dec3 = _cbr(c4 + c3, c3)
        self.dec2 = _cbr(c3 + c2, c2)
        self.class_head = nn.Conv2d(c2, num_bins, 1)
        self.dec1 = _cbr(c2 + c1, c1)
        self.ab_head = nn.Conv2d(c1, 2, 1)
        self.fusion_head: nn.Sequential | None = None
        if fusion:
            fw = fusion_width
            self.fusion_head = nn.Sequential(
                nn.Conv2d(c1 + 5, fw, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(fw, fw, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(fw, 3, 1),  # gate logit, correction a, correction b
            )
            self._init_fusion()
        #: The engine's post-fusion head (:mod:`tinct.models.hint_refiner`); ``None``
        #: without one, or when the weights loaded have none.
        self.refine_head: HintRefiner | None = HintRefiner(features=c1) if refiner else None
        if self.refine_head is not None:  # trained apart (docs/models.md), not by the trunk loss
            self.refine_head.requires_grad_(False)
        self._refiner_ok = False  # set when weights load: see refiner()

    def _init_fusion(self) -> None:
        last = self.fusion_head[-1]  # type: ignore[index]
        with torch.no_grad():
            last.weight.zero_()  # type: ignore[operator]
            last.bias.copy_(torch.tensor([self.GATE_INIT, 0.0, 0.0]))  # type: ignore[operator]

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[no-untyped-def, override]
        """As :meth:`torch.nn.Module.load_state_dict`, with one allowance.

        Weights saved without the fusion head (all its keys missing, e.g. files
        exported before it existed) load with the head at its initial state;
        weights without a refiner (``refine_head``) load with none, and a refiner
        whose fingerprint does not match the decoder loaded is not used.
        """
        if self.fusion_head is not None:
            head = {f"fusion_head.{k}": v for k, v in self.fusion_head.state_dict().items()}
            if not any(k in state_dict for k in head):
                self._init_fusion()  # in place: ``head`` now holds the initial values
                state_dict = {**state_dict, **head}
        has_refiner = any(k.startswith("refine_head.") for k in state_dict)
        if self.refine_head is not None and not has_refiner:
            self.refine_head = None  # weights without a refiner: the engine does not refine
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        refiner = self.refine_head  # checked here: the engine later folds dec1's batch norm
        self._refiner_ok = refiner is not None and refiner.matches(self.dec1)
        return result

    def train(self, mode: bool = True) -> TinctUNet:
        """As :meth:`torch.nn.Module.train`; training the trunk retires the refiner."""
        if mode:
            self._refiner_ok = False
        return super().train(mode)

    def forward(
        self,
        lum: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hint: Tensor | None = None,
        propagated: Tensor | None = None,
    ) -> ModelOutput:
        """Predict 313-bin logits (1/4 res) and ab (1/2 res) from L and hints.

        ``propagated`` (``(B, 2, h/2, w/2)``, optional): the hints already
        propagated on the ab grid (the engine does it once per hint edit, see
        :func:`tinct.engine.fusion.hint_weights`); without it the model solves Levin's
        optimisation itself (training).
        """
        b, _, h, w = lum.shape
        if hint_ab is None:
            hint_ab = lum.new_zeros(b, 2, h, w)
        if hint_mask is None:
            hint_mask = lum.new_zeros(b, 1, h, w)
        x = torch.cat(((lum - L_CENT) / L_NORM, hint_ab / AB_NORM, hint_mask), dim=1)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        e5 = self.enc5(e4)
        g = self.global_feat(e5.mean((2, 3)))
        if global_hint is not None:
            g = g + self.global_hint(global_hint)
        f = self.fuse(torch.cat((e4 + g[:, :, None, None], _up(e5, e4)), dim=1))
        d3 = self.dec3(torch.cat((_up(f, e3), e3), dim=1))
        d2 = self.dec2(torch.cat((_up(d3, e2), e2), dim=1))
        logits = self.class_head(d2)
        d1 = self.dec1(torch.cat((_up(d2, e1), e1), dim=1))
        ab = torch.tanh(self.ab_head(d1)) * AB_NORM
        if self.fusion_head is not None:
            has = (hint_mask.flatten(1).amax(1) > 0.5).to(ab.dtype)[:, None, None, None]
            if bool(has.any()):
                terms = self._fuse(d1, ab, lum, hint_ab, hint_mask, has, propagated)
                if self.refine_head is not None:
                    terms.features = d1
                return ModelOutput(logits=logits, ab=terms.fuse(ab), fusion=terms)
        return ModelOutput(logits=logits, ab=ab)

    def refiner(self) -> HintRefiner | None:
        """The post-fusion head, if this model has one trained on its own decoder.

        That is decided when the weights load (:meth:`HintRefiner.matches` on ``dec1``);
        a model put in training mode since, or weights fine-tuned from tinct-base, have none.
        """
        return self.refine_head if self._refiner_ok else None

    @staticmethod
    def fusion_grid(size: tuple[int, int]) -> tuple[int, int]:
        """Grid of the fusion (the ab head's) for a padded input of ``size``."""
        return size[0] // 2, size[1] // 2

    def _fuse(
        self,
        d1: Tensor,
        ab: Tensor,
        lum: Tensor,
        hint_ab: Tensor,
        hint_mask: Tensor,
        has: Tensor,
        propagated: Tensor | None = None,
    ) -> FusionTerms:
        """Gate between the network's ``ab (B, 2, h, w)`` and Levin propagation of the hints."""
        if propagated is None:
            from tinct.levin import propagate_batch  # tinct.levin imports tinct.models

            propagated = propagate_batch(lum, hint_ab, hint_mask)
        prop = F.adaptive_avg_pool2d(propagated.to(ab.dtype), ab.shape[-2:])  # type: ignore[arg-type]
        fin = torch.cat((d1, prop / AB_NORM, ab / AB_NORM, has.expand(-1, 1, *ab.shape[-2:])), 1)
        out = self.fusion_head(fin.to(d1.dtype))  # type: ignore[misc]
        gate = torch.sigmoid(out[:, :1].float()).to(ab.dtype)
        correction = out[:, 1:].to(ab.dtype) * self.CORRECTION_SCALE
        return FusionTerms(own=ab, propagated=prop, gate=has * gate, correction=has * correction)
