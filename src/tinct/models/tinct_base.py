"""tinct's own compact family: a hint-aware U-Net with global-feature fusion.

Designed to run fast on a laptop CPU and to be trainable on one: the encoder
starts at half resolution, context comes from a 1/16 dilated stage and a
1/32 stage whose pooled features are fused back into every position (Iizuka
et al. 2016), and a reference histogram (SIGGRAPH17's global hint) is
injected at the same place. Two heads share the trunk: 313-bin logits at 1/4
resolution (temperature, suggestions, MRF) and ab regression at 1/2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinct.models.base import ColorModel, ModelOutput

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
    """

    stride = 32

    def __init__(
        self, widths: tuple[int, int, int, int, int] = (32, 64, 128, 224, 256), num_bins: int = 313
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

    def forward(
        self,
        lum: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hint: Tensor | None = None,
    ) -> ModelOutput:
        """Predict 313-bin logits (1/4 res) and ab (1/2 res) from L and hints."""
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
        return ModelOutput(logits=logits, ab=ab)
