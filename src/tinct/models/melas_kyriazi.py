"""Melas-Kyriazi & Han (2018): ResNet-18-Gray features, upsampling decoder, MRF decoding.

"Combining Deep Convolutional Neural Networks with Markov Random Fields for
Image Colorization" (Harvard CS 281 report). Model 1 regresses ab with MSE
from the first stages of a ResNet-18 retrained on grayscale; model 2 predicts
per-pixel colour distributions and smooths them with a Potts MRF solved by
mean-field inference, decoding the mode.

Our recipe (trained from scratch by ``tinct train``; no published weights):
the ResNet-18 stem and ``layer1``/``layer2`` (128 channels at 1/8) built here
on a 1-channel input, the report's upsampling decoder, a 313-bin
distribution head at 1/4 resolution (the report used 25 bins per a and b, or
Zhang's 313-bin network in practice) and the report's regression head at full
resolution (MSE). Default decoding: MRF, then mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinct.models._layers import conv_bn_relu, normalize_lum, scaled
from tinct.models.base import ColorModel, ModelOutput
from tinct.models.registry import ModelConfig, ModelRecord, register_model

__all__ = ["MelasKyriaziNet"]

_PAPER = (
    "L. Melas-Kyriazi, G. Han. Combining Deep Convolutional Neural Networks with Markov "
    "Random Fields for Image Colorization. Harvard CS 281 final project report, 2018."
)


class _BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN, identity or 1x1-conv shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        """Residual block forward."""
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.downsample(x), inplace=True)


class MelasKyriaziNet(ColorModel):
    """ResNet-18 (conv1..layer2) trunk + upsampling decoder, 313-bin and ab heads.

    Args:
        width: Multiplier of the ResNet widths (64, 128); 1.0 = ResNet-18.
        num_bins: Size of the distribution head.

    ``forward(lum)``: ``lum`` ``(B, 1, H, W)`` CIELAB L in [0, 100], H and W
    multiples of 8. Returns ``logits`` ``(B, 313, H/4, W/4)`` and ``ab``
    ``(B, 2, H, W)`` (CIELAB units, tanh x 110).
    """

    stride = 8

    def __init__(self, width: float = 1.0, num_bins: int = 313):
        super().__init__()
        c1, c2 = scaled(width, 64, 128)
        d1, d2, d3 = scaled(width, 128, 64, 32)
        self.stem = nn.Sequential(
            nn.Conv2d(1, c1, 7, 2, 3, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        self.layer1 = nn.Sequential(_BasicBlock(c1, c1), _BasicBlock(c1, c1))
        self.layer2 = nn.Sequential(_BasicBlock(c1, c2, 2), _BasicBlock(c2, c2))
        self.up1 = conv_bn_relu(c2, d1)  # at 1/8, then x2
        self.up2 = nn.Sequential(conv_bn_relu(d1, d2), conv_bn_relu(d2, d2))  # at 1/4
        self.class_head = nn.Conv2d(d2, num_bins, 1)
        self.up3 = nn.Sequential(nn.Conv2d(d2, d3, 3, 1, 1), nn.ReLU(inplace=True))  # at 1/2
        self.ab_head = nn.Conv2d(d3, 2, 3, 1, 1)

    def forward(
        self,
        lum: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hint: Tensor | None = None,
    ) -> ModelOutput:
        """Predict 313-bin logits (1/4 res) and ab (full res)."""
        x = self.layer2(self.layer1(self.stem(normalize_lum(lum, "lab"))))
        x = F.interpolate(self.up1(x), scale_factor=2, mode="bilinear", align_corners=False)
        x = self.up2(x)
        logits = self.class_head(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        ab = self.ab_head(self.up3(x))
        ab = F.interpolate(ab, scale_factor=2, mode="bilinear", align_corners=False)
        return ModelOutput(logits=logits, ab=torch.tanh(ab) * 110.0)


register_model(
    ModelRecord(
        name="melas-kyriazi",
        display_name="Melas-Kyriazi & Han (CNN + MRF)",
        description="ResNet-18-style features at 1/8, upsampling decoder, per-pixel 313-bin "
        "distributions smoothed by a Potts MRF (mean field) and decoded by mode.",
        builder=MelasKyriaziNet,
        config=ModelConfig(
            color_space="lab",
            target="gamut313",
            heads=("logits", "ab"),
            num_bins=313,
            input_size=224,
            stride=8,
            logits_stride=4,
            ab_stride=1,
            default_temperature=1.0,
            default_decoder="mode",
            mrf=True,
            loss="ce+mse",
            trainable=True,
        ),
        paper=_PAPER,
        notes="Trained from scratch (the report started from a Places365 ResNet-18-Gray "
        "classifier). Distribution over Zhang's 313 ab bins instead of 25 bins per channel; "
        "the regression head (the report's model 1, MSE) is kept as a second head. "
        "ab output via tanh x 110 instead of a sigmoid on (ab + 128) / 255.",
    )
)
