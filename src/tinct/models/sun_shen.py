"""Sun & Shen (2020): a U-Net in YUV, as classifier (20 bins per U/V) or regressor (MSE).

"Discriminative Models on Image Colorization" (University of Toronto course
project). Y in, (U, V) out, on CIFAR-10 sized images; the classification
variant divides each chroma channel into 20 bins and sums the per-channel
cross-entropies, the regression variant uses the MSE on U and V.

Our recipe: a 4-level U-Net (max-pool down, bilinear up, skip
concatenation); bins are uniform over [-0.615, 0.615] (the V range of YUV;
U only spans +-0.436). Y input in [0, 1].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tinct.models._layers import CHROMA_SCALE, conv_bn_relu, normalize_lum, resize_to, scaled
from tinct.models.base import ColorModel, ModelOutput
from tinct.models.registry import ModelConfig, ModelRecord, register_model

__all__ = ["SunShenUNet"]

_PAPER = "X. Sun, F. Shen. Discriminative Models on Image Colorization. U. Toronto, 2020."


def _double(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class SunShenUNet(ColorModel):
    """Small U-Net on Y predicting U/V bin logits or U/V values at full resolution.

    Args:
        mode: ``"classification"`` (``logits`` ``(B, 2K, H, W)``: ``[:, :K]`` U
            bins, ``[:, K:]`` V bins) or ``"regression"`` (``ab`` ``(B, 2, H, W)``
            = (U, V)).
        width: Multiplier of the level widths (32, 64, 128, 256).
        bins_per_channel: ``K``, bins per chroma channel (20).

    ``forward(lum)``: ``lum`` ``(B, 1, H, W)`` YUV Y in [0, 1], H and W
    multiples of 8.
    """

    stride = 8

    def __init__(
        self, mode: str = "classification", width: float = 1.0, bins_per_channel: int = 20
    ):
        super().__init__()
        if mode not in ("classification", "regression"):
            raise ValueError(f"mode must be 'classification' or 'regression', got {mode!r}")
        self.mode = mode
        c1, c2, c3, c4 = scaled(width, 32, 64, 128, 256)
        self.down = nn.ModuleList((_double(1, c1), _double(c1, c2), _double(c2, c3)))
        self.bottom = _double(c3, c4)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList((_double(c4 + c3, c3), _double(c3 + c2, c2), _double(c2 + c1, c1)))
        out = 2 * bins_per_channel if mode == "classification" else 2
        self.head = nn.Conv2d(c1, out, 1)

    def forward(
        self,
        lum: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hint: Tensor | None = None,
    ) -> ModelOutput:
        """Predict U/V logits or U/V values at full resolution."""
        x = normalize_lum(lum, "yuv")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            x = block(torch.cat((resize_to(x, skip.shape[-2:]), skip), dim=1))
        y = self.head(x)
        if self.mode == "classification":
            return ModelOutput(logits=y)
        return ModelOutput(ab=y * CHROMA_SCALE["yuv"])


_NOTES = (
    "Level widths 32-256 (the project did not publish its exact widths); trains on any "
    "image size, not only 32 x 32 CIFAR-10."
)

register_model(
    ModelRecord(
        name="sun-shen-classification",
        display_name="Sun & Shen U-Net classifier (YUV)",
        description="U-Net on Y predicting 20 bins for each of U and V; per-channel "
        "cross-entropy; decoded by the mode.",
        builder=SunShenUNet,
        kwargs={"mode": "classification"},
        config=ModelConfig(
            color_space="yuv",
            target="channel",
            heads=("logits",),
            num_bins=40,
            bins_per_channel=20,
            channel_range=(-0.615, 0.615),
            input_size=128,
            stride=8,
            logits_stride=1,
            default_temperature=1.0,
            default_decoder="mode",
            loss="ce_channels",
            trainable=True,
        ),
        paper=_PAPER,
        notes=_NOTES,
    )
)

register_model(
    ModelRecord(
        name="sun-shen-regression",
        display_name="Sun & Shen U-Net regression (YUV)",
        description="The same U-Net regressing U and V with the mean squared error.",
        builder=SunShenUNet,
        kwargs={"mode": "regression"},
        config=ModelConfig(
            color_space="yuv",
            target="regression",
            heads=("ab",),
            num_bins=0,
            input_size=128,
            stride=8,
            logits_stride=None,
            ab_stride=1,
            default_temperature=1.0,
            default_decoder="ab",
            loss="mse",
            trainable=True,
        ),
        paper=_PAPER,
        notes=_NOTES,
    )
)
