"""Larsson, Maire & Shakhnarovich (2016): hypercolumns -> hue and chroma histograms.

"Learning Representations for Automatic Colorization" (ECCV 2016). A VGG16
run on the gray image; per-pixel hypercolumns (the input, conv1_2 ... conv5_3
and fc7, sampled at conv3 resolution) feed a 1x1 "fc" layer of 1024 units and
two softmax heads: 32 hue bins and 32 chroma bins. Inference takes the
circular expectation of hue and the median of chroma, with "chromatic
fading" of the hue (decoder ``"larsson"``).

Our recipe: the same structure at reduced width, trained from scratch (the
paper fine-tuned ImageNet VGG16); fc6/fc7 as a 3x3 and a 1x1 convolution at
1/16 resolution; hue and chroma are those of the CIELAB (a, b) vector (hue
``atan2(b, a)`` in [0, 2 pi), chroma ``sqrt(a^2 + b^2)`` binned over [0, 135]
as :func:`tinct.bins.chroma_bins`) rather than the paper's HSV-derived chroma.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tinct.models._layers import VGGTrunk, conv_bn_relu, normalize_lum, resize_to, scaled
from tinct.models.base import ColorModel, ModelOutput
from tinct.models.registry import ModelConfig, ModelRecord, register_model

__all__ = ["LarssonHypercolumn"]

_PAPER = (
    "G. Larsson, M. Maire, G. Shakhnarovich. Learning Representations for Automatic "
    "Colorization. ECCV 2016."
)


class LarssonHypercolumn(ColorModel):
    """VGG16-style trunk, hypercolumn at 1/4 resolution, 32 hue + 32 chroma logits.

    Args:
        width: Multiplier of the VGG widths (64 ... 512, fc 4096, hidden 1024).
        bins: Bins per histogram (32).

    ``forward(lum)``: ``lum`` ``(B, 1, H, W)`` CIELAB L in [0, 100], H and W
    multiples of 16. Returns ``logits`` ``(B, 64, H/4, W/4)``: ``[:, :32]`` hue
    bins over [0, 2 pi), ``[:, 32:]`` chroma bins over [0, 135].
    """

    stride = 16

    def __init__(self, width: float = 0.25, bins: int = 32):
        super().__init__()
        widths = scaled(width, 64, 128, 256, 512, 512)
        fc, hidden = scaled(width, 1024, 1024)
        self.trunk = VGGTrunk(widths)
        self.fc6 = conv_bn_relu(widths[-1], fc, 3)
        self.fc7 = conv_bn_relu(fc, fc, 1)
        self.hyper = nn.Sequential(
            nn.Conv2d(1 + sum(widths) + fc, hidden, 1), nn.ReLU(inplace=True)
        )
        self.hue = nn.Conv2d(hidden, bins, 1)
        self.chroma = nn.Conv2d(hidden, bins, 1)

    def forward(
        self,
        lum: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hint: Tensor | None = None,
    ) -> ModelOutput:
        """Predict hue and chroma histogram logits at 1/4 resolution."""
        x = normalize_lum(lum, "lab")
        feats = self.trunk(x)
        fc7 = self.fc7(self.fc6(feats[-1]))
        size = feats[2].shape[-2:]
        column = torch.cat([resize_to(f, size) for f in (x, *feats, fc7)], dim=1)
        h = self.hyper(column)
        return ModelOutput(logits=torch.cat((self.hue(h), self.chroma(h)), dim=1))


register_model(
    ModelRecord(
        name="larsson",
        display_name="Larsson et al. (hue/chroma hypercolumns)",
        description="VGG16-style hypercolumns predicting 32-bin hue and 32-bin chroma "
        "histograms; decoded by circular hue expectation and chroma median.",
        builder=LarssonHypercolumn,
        config=ModelConfig(
            color_space="lab",
            target="hue_chroma",
            heads=("logits",),
            num_bins=64,
            bins_per_channel=32,
            channel_range=(0.0, 135.0),
            input_size=256,
            stride=16,
            logits_stride=4,
            default_temperature=1.0,
            default_decoder="larsson",
            loss="ce_hue_chroma",
            trainable=True,
        ),
        paper=_PAPER,
        notes="Width 0.25 and trained from scratch (paper: ImageNet VGG16, full width, "
        "sparse hypercolumn sampling during training). Hue/chroma of CIELAB ab instead of "
        "the paper's HSV-derived chroma.",
    )
)
