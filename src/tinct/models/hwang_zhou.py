"""Hwang & Zhou (2016): VGG16 encoder, residual decoder or hypercolumn classifier, in CIELUV.

"Image Colorization with Deep Convolutional Neural Networks" (Stanford
CS231n report). Two models:

* **Regression baseline** (after Dahl's "residual encoder"): a VGG16
  encoder whose feature map is repeatedly upscaled and summed element-wise
  with the batch-normalised encoder output of the same resolution, then
  convolved; predicts CIELUV u, v with a Huber loss.
* **Classification model**: encoder feature maps upscaled and concatenated
  (a hypercolumn), three 3x3 convolutions, then two parallel 1x1 convolutions
  giving 50 class scores each for u and v (50 equal bins over [-100, 100]),
  trained with the sum of the two cross-entropies; decoded by the mode.

Our recipes are trained from scratch at reduced width (the report initialised
the encoder from ImageNet VGG16 on 3 tiled gray channels); the classifier's
hypercolumn is built at 1/2 resolution instead of full resolution to keep
CPU training affordable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinct.models._layers import (
    CHROMA_SCALE,
    VGGTrunk,
    conv_bn_relu,
    normalize_lum,
    resize_to,
    scaled,
)
from tinct.models.base import ColorModel, ModelOutput
from tinct.models.registry import ModelConfig, ModelRecord, register_model

__all__ = ["HwangZhouClassifier", "HwangZhouRegressor"]

_PAPER = (
    "J. Hwang, Y. Zhou. Image Colorization with Deep Convolutional Neural Networks. "
    "Stanford CS231n report, 2016."
)
_DEPTHS = (2, 2, 3, 3)  # VGG16 conv1..conv4


class HwangZhouRegressor(ColorModel):
    """VGG16-style encoder (conv1..conv4) + residual decoder, u/v regression.

    Args:
        width: Multiplier of the VGG widths (64, 128, 256, 512).

    ``forward(lum)``: ``lum`` ``(B, 1, H, W)`` CIELUV L in [0, 100], H and W
    multiples of 8. Returns ``ab`` ``(B, 2, H, W)``: CIELUV (u, v).
    """

    stride = 8

    def __init__(self, width: float = 0.5):
        super().__init__()
        c1, c2, c3, c4 = scaled(width, 64, 128, 256, 512)
        self.encoder = VGGTrunk((c1, c2, c3, c4), _DEPTHS)
        self.bn = nn.ModuleList(nn.BatchNorm2d(c) for c in (c1, c2, c3, c4))
        self.reduce4 = nn.Conv2d(c4, c3, 1)
        self.fuse3 = conv_bn_relu(c3, c2)
        self.fuse2 = conv_bn_relu(c2, c1)
        self.fuse1 = conv_bn_relu(c1, c1)
        self.out = nn.Conv2d(c1, 2, 3, 1, 1)

    def forward(
        self,
        lum: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hint: Tensor | None = None,
    ) -> ModelOutput:
        """Predict CIELUV (u, v) at full resolution."""
        f1, f2, f3, f4 = self.encoder(normalize_lum(lum, "luv"))
        x = self.reduce4(self.bn[3](f4))
        for feat, bn, fuse in ((f3, self.bn[2], self.fuse3), (f2, self.bn[1], self.fuse2)):
            x = fuse(resize_to(x, feat.shape[-2:]) + bn(feat))
        x = self.fuse1(resize_to(x, f1.shape[-2:]) + self.bn[0](f1))
        return ModelOutput(ab=self.out(x) * CHROMA_SCALE["luv"])


class HwangZhouClassifier(ColorModel):
    """VGG16-style encoder + hypercolumn, two 50-way heads for u and v.

    Args:
        width: Multiplier of the VGG widths (64, 128, 256, 512).
        bins_per_channel: Classes per chroma channel (50).

    ``forward(lum)``: ``lum`` ``(B, 1, H, W)`` CIELUV L in [0, 100], H and W
    multiples of 8. Returns ``logits`` ``(B, 100, H/2, W/2)``: ``[:, :50]``
    scores the u bins, ``[:, 50:]`` the v bins (uniform over [-100, 100]).
    """

    stride = 8

    def __init__(self, width: float = 0.5, bins_per_channel: int = 50):
        super().__init__()
        c1, c2, c3, c4 = scaled(width, 64, 128, 256, 512)
        (hidden,) = scaled(width, 256)
        self.encoder = VGGTrunk((c1, c2, c3, c4), _DEPTHS)
        self.mix = nn.Sequential(
            conv_bn_relu(c1 + c2 + c3 + c4, hidden),
            conv_bn_relu(hidden, hidden),
            conv_bn_relu(hidden, hidden),
        )
        self.head_u = nn.Conv2d(hidden, bins_per_channel, 1)
        self.head_v = nn.Conv2d(hidden, bins_per_channel, 1)

    def forward(
        self,
        lum: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hint: Tensor | None = None,
    ) -> ModelOutput:
        """Predict u and v bin logits at 1/2 resolution."""
        f1, f2, f3, f4 = self.encoder(normalize_lum(lum, "luv"))
        size = f2.shape[-2:]
        hyper = torch.cat(
            (F.avg_pool2d(f1, 2), f2, resize_to(f3, size), resize_to(f4, size)), dim=1
        )
        x = self.mix(hyper)
        return ModelOutput(logits=torch.cat((self.head_u(x), self.head_v(x)), dim=1))


_NOTES = (
    "Trained from scratch at width 0.5 (32-256 channels; the report fine-tuned ImageNet "
    "VGG16 at full width on 224 x 224 inputs)."
)

register_model(
    ModelRecord(
        name="hwang-zhou-regression",
        display_name="Hwang & Zhou regression (CIELUV)",
        description="VGG16-style encoder with a residual (Dahl-style) decoder regressing "
        "CIELUV u, v with a Huber loss; the report's baseline.",
        builder=HwangZhouRegressor,
        config=ModelConfig(
            color_space="luv",
            target="regression",
            heads=("ab",),
            num_bins=0,
            input_size=224,
            stride=8,
            logits_stride=None,
            ab_stride=1,
            default_temperature=1.0,
            default_decoder="ab",
            loss="huber",
            trainable=True,
        ),
        paper=_PAPER,
        notes=_NOTES,
    )
)

register_model(
    ModelRecord(
        name="hwang-zhou-classification",
        display_name="Hwang & Zhou classification (CIELUV)",
        description="VGG16-style encoder, hypercolumn concatenation, 3 convs and two parallel "
        "50-way heads over u and v bins in [-100, 100]; decoded by the mode (bin means).",
        builder=HwangZhouClassifier,
        config=ModelConfig(
            color_space="luv",
            target="channel",
            heads=("logits",),
            num_bins=100,
            bins_per_channel=50,
            channel_range=(-100.0, 100.0),
            input_size=224,
            stride=8,
            logits_stride=2,
            default_temperature=1.0,
            default_decoder="mode",
            loss="ce_channels",
            trainable=True,
        ),
        paper=_PAPER,
        notes=_NOTES + " Hypercolumn at 1/2 resolution instead of full resolution.",
    )
)
