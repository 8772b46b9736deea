"""Zhang et al.'s networks: ECCV 2016 (automatic) and SIGGRAPH 2017 (user-guided).

Exact ports of the ``colorizers`` PyTorch package's ``ECCVGenerator`` and
``SIGGRAPHGenerator``, written from the published layer tables: module
names, ``nn.Sequential`` indices and tensor shapes match the official
``state_dict`` files (82 and 107 keys), so they load with ``strict=True``.

* :class:`ECCV16` returns the 313-bin logits of ``model8.6`` (1/4 resolution)
  so any temperature can be applied downstream, and ``ab`` = the official
  output (plain softmax expectation, i.e. T = 1, upsampled x4 bilinearly).
* :class:`SIGGRAPH17` takes L plus local hints and returns ``ab`` (tanh x 110,
  full resolution) and, as ``logits``, its 529-class head on conv8_3 (1/4
  resolution; unused by the official forward) for colour suggestions / MRF.

``width`` scales every trunk width (1.0 = the published network); the
``zhang2016`` recipe uses ECCV16 at reduced width for training on CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinct.bins import gamut_bins
from tinct.models.base import ColorModel, ModelOutput
from tinct.models.registry import ModelConfig, ModelRecord, Weights, register_model

__all__ = ["ECCV16", "SIGGRAPH17"]

L_CENT, L_NORM, AB_NORM = 50.0, 100.0, 110.0

_ZHANG_LICENSE = "BSD-2-Clause"
_ECCV_PAPER = "R. Zhang, P. Isola, A. A. Efros. Colorful Image Colorization. ECCV 2016."
_SIGGRAPH_PAPER = (
    "R. Zhang, J.-Y. Zhu, P. Isola, X. Geng, A. S. Lin, T. Yu, A. A. Efros. Real-Time "
    "User-Guided Image Colorization with Learned Deep Priors. SIGGRAPH 2017."
)


def _conv_relu(
    channels: list[int], *, dilation: int = 1, last_stride: int = 1, bn: bool = True
) -> nn.Sequential:
    """Conv3x3 + ReLU for each consecutive pair in ``channels``, then BatchNorm.

    Indices follow the official layout: convs at 0, 2, 4, BN last.
    """
    layers: list[nn.Module] = []
    n = len(channels) - 1
    for i in range(n):
        stride = last_stride if i == n - 1 else 1
        layers += [
            nn.Conv2d(channels[i], channels[i + 1], 3, stride, padding=dilation, dilation=dilation),
            nn.ReLU(inplace=True),
        ]
    if bn:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


def _w(width: float, c: int) -> int:
    return max(1, round(c * width))


class ECCV16(ColorModel):
    """ECCV16 classification network (``zhang-eccv16``, ``zhang2016``).

    Args:
        width: Multiplier of the trunk widths (64, 128, 256, 512); 1.0 is the
            published network (32.2 M parameters).
        num_bins: Number of ab bins (313 in-gamut bins).

    ``forward(lum)``: ``lum`` ``(B, 1, H, W)`` CIELAB L in [0, 100], H and W
    multiples of 8. Returns ``logits`` ``(B, 313, H/4, W/4)`` and ``ab``
    ``(B, 2, H, W)`` in CIELAB units (softmax expectation at T = 1). Hints are
    ignored.
    """

    stride = 8

    def __init__(self, width: float = 1.0, num_bins: int = 313):
        super().__init__()
        c1, c2, c3, c4 = (_w(width, c) for c in (64, 128, 256, 512))
        self.model1 = _conv_relu([1, c1, c1], last_stride=2)
        self.model2 = _conv_relu([c1, c2, c2], last_stride=2)
        self.model3 = _conv_relu([c2, c3, c3, c3], last_stride=2)
        self.model4 = _conv_relu([c3, c4, c4, c4])
        self.model5 = _conv_relu([c4, c4, c4, c4], dilation=2)
        self.model6 = _conv_relu([c4, c4, c4, c4], dilation=2)
        self.model7 = _conv_relu([c4, c4, c4, c4])
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(c4, c3, 4, 2, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c3, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c3, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, num_bins, 1),
        )
        self.model_out = nn.Conv2d(num_bins, 2, 1, bias=False)
        if num_bins == 313:
            with torch.no_grad():  # expectation over the bin centres, as in the release
                centres = gamut_bins(device=self.model_out.weight.device)
                self.model_out.weight.copy_(centres.T[:, :, None, None] / AB_NORM)

    def forward(
        self,
        lum: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hint: Tensor | None = None,
    ) -> ModelOutput:
        """Predict 313-bin logits (1/4 res) and the official T=1 ab (full res)."""
        x = (lum - L_CENT) / L_NORM
        for block in (
            self.model1,
            self.model2,
            self.model3,
            self.model4,
            self.model5,
            self.model6,
            self.model7,
            self.model8,
        ):
            x = block(x)
        logits = x
        ab = self.model_out(torch.softmax(logits, dim=1)) * AB_NORM
        ab = F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)
        return ModelOutput(logits=logits, ab=ab)


class SIGGRAPH17(ColorModel):
    """SIGGRAPH17 user-guided network (``zhang-siggraph17``).

    Args:
        width: Multiplier of the widths (64, 128, 256, 512); 1.0 = published.
        num_classes: Size of the classification head (529 = 23 x 23 ab grid).

    ``forward(lum, hint_ab, hint_mask)``: ``lum`` ``(B, 1, H, W)`` CIELAB L in
    [0, 100]; ``hint_ab`` ``(B, 2, H, W)`` CIELAB a, b (0 where no hint);
    ``hint_mask`` ``(B, 1, H, W)`` in {0, 1}; H, W multiples of 8. Returns
    ``ab`` ``(B, 2, H, W)`` in CIELAB units (tanh x 110) and ``logits``
    ``(B, 529, H/4, W/4)`` over :func:`tinct.bins.grid_bins`.
    """

    stride = 8

    def __init__(self, width: float = 1.0, num_classes: int = 529):
        super().__init__()
        c1, c2, c3, c4 = (_w(width, c) for c in (64, 128, 256, 512))
        self.model1 = _conv_relu([4, c1, c1])
        self.model2 = _conv_relu([c1, c2, c2])
        self.model3 = _conv_relu([c2, c3, c3, c3])
        self.model4 = _conv_relu([c3, c4, c4, c4])
        self.model5 = _conv_relu([c4, c4, c4, c4], dilation=2)
        self.model6 = _conv_relu([c4, c4, c4, c4], dilation=2)
        self.model7 = _conv_relu([c4, c4, c4, c4])
        self.model8up = nn.Sequential(nn.ConvTranspose2d(c4, c3, 4, 2, 1))
        self.model3short8 = nn.Sequential(nn.Conv2d(c3, c3, 3, 1, 1))
        self.model8 = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c3, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c3, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(c3),
        )
        self.model9up = nn.Sequential(nn.ConvTranspose2d(c3, c2, 4, 2, 1))
        self.model2short9 = nn.Sequential(nn.Conv2d(c2, c2, 3, 1, 1))
        self.model9 = nn.Sequential(
            nn.ReLU(inplace=True), nn.Conv2d(c2, c2, 3, 1, 1), nn.ReLU(inplace=True),
            nn.BatchNorm2d(c2),
        )  # fmt: skip
        self.model10up = nn.Sequential(nn.ConvTranspose2d(c2, c2, 4, 2, 1))
        self.model1short10 = nn.Sequential(nn.Conv2d(c1, c2, 3, 1, 1))
        self.model10 = nn.Sequential(
            nn.ReLU(inplace=True), nn.Conv2d(c2, c2, 3, 1, 1), nn.LeakyReLU(0.2)
        )
        self.model_class = nn.Sequential(nn.Conv2d(c3, num_classes, 1))
        self.model_out = nn.Sequential(nn.Conv2d(c2, 2, 1), nn.Tanh())

    def forward(
        self,
        lum: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hint: Tensor | None = None,
    ) -> ModelOutput:
        """Predict ab (full res, tanh x 110) and 529-class logits (1/4 res)."""
        b, _, h, w = lum.shape
        if hint_ab is None:
            hint_ab = lum.new_zeros(b, 2, h, w)
        if hint_mask is None:
            hint_mask = lum.new_zeros(b, 1, h, w)
        x = torch.cat(((lum - L_CENT) / L_NORM, hint_ab / AB_NORM, hint_mask), dim=1)
        conv1 = self.model1(x)
        conv2 = self.model2(conv1[:, :, ::2, ::2])
        conv3 = self.model3(conv2[:, :, ::2, ::2])
        x = self.model4(conv3[:, :, ::2, ::2])
        x = self.model7(self.model6(self.model5(x)))
        conv8 = self.model8(self.model8up(x) + self.model3short8(conv3))
        logits = self.model_class(conv8)
        conv9 = self.model9(self.model9up(conv8) + self.model2short9(conv2))
        conv10 = self.model10(self.model10up(conv9) + self.model1short10(conv1))
        ab = self.model_out(conv10) * AB_NORM
        return ModelOutput(logits=logits, ab=ab)


register_model(
    ModelRecord(
        name="zhang-eccv16",
        display_name="Zhang ECCV16 (automatic)",
        description="Colorful Image Colorization: VGG-style classifier over 313 ab bins, "
        "decoded by annealed mean. Automatic, no hints.",
        builder=ECCV16,
        config=ModelConfig(
            color_space="lab",
            target="gamut313",
            heads=("logits", "ab"),
            num_bins=313,
            input_size=256,
            stride=8,
            logits_stride=4,
            ab_stride=1,
            default_temperature=0.38,
            default_decoder="annealed_mean",
            loss="soft_ce_rebalanced",
            trainable=False,
        ),
        weights=Weights(
            file_name="colorization_release_v2-9b330a0b.pth",
            url="https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth",
            sha256="9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9",
            size=128_976_165,
            license=_ZHANG_LICENSE,
            citation=_ECCV_PAPER,
            format="pth",
        ),
        paper=_ECCV_PAPER,
        notes="Exact port of the official PyTorch weights. The official forward decodes at "
        "T = 1 (plain expectation, returned as `ab`); tinct decodes the logits with the "
        "paper's annealed mean, T = 0.38, by default.",
    )
)

register_model(
    ModelRecord(
        name="zhang-siggraph17",
        display_name="Zhang SIGGRAPH17 (user-guided)",
        description="Real-Time User-Guided Colorization: U-Net taking L plus local colour "
        "hints, ab regression at full resolution, 529-class head for suggestions.",
        builder=SIGGRAPH17,
        config=ModelConfig(
            color_space="lab",
            target="grid529",
            heads=("logits", "ab"),
            num_bins=529,
            hints=True,
            input_size=256,
            stride=8,
            logits_stride=4,
            ab_stride=1,
            default_temperature=1.0,
            default_decoder="ab",
            loss="ce+l1",
            trainable=False,
        ),
        weights=Weights(
            file_name="siggraph17-df00044c.pth",
            url="https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth",
            sha256="df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66",
            size=136_787_426,
            license=_ZHANG_LICENSE,
            citation=_SIGGRAPH_PAPER,
            format="pth",
        ),
        paper=_SIGGRAPH_PAPER,
        notes="Exact port of the official PyTorch weights (Caffe-converted; mask 0/1, not "
        "centred). The regression head `ab` is the output; the 529-class logits (unused by "
        "the official forward) serve colour suggestions (soften with T = 5).",
    )
)

register_model(
    ModelRecord(
        name="zhang2016",
        display_name="Zhang 2016 recipe (train it yourself)",
        description="ECCV16 architecture at reduced width, trained by tinct with soft-encoded "
        "(10 NN, sigma 5), class-rebalanced (lambda 0.5) cross-entropy over 313 bins.",
        builder=ECCV16,
        kwargs={"width": 0.25},
        config=ModelConfig(
            color_space="lab",
            target="gamut313",
            heads=("logits", "ab"),
            num_bins=313,
            input_size=176,
            stride=8,
            logits_stride=4,
            ab_stride=1,
            default_temperature=0.38,
            default_decoder="annealed_mean",
            loss="soft_ce_rebalanced",
            trainable=True,
        ),
        paper=_ECCV_PAPER,
        notes="Same module as zhang-eccv16 with width 0.25 (16-128 channels, about 2 M "
        "parameters instead of 32 M) so it trains on a CPU; random initialisation (the paper "
        "used k-means init); otherwise the paper's loss and decoding.",
    )
)
