"""Building blocks shared by several model families (not public API)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

#: Typical magnitude of each colour space's chrominance, used to scale
#: regression outputs: CIELAB a/b (+-110), CIELUV u/v (+-100, as binned by
#: Hwang & Zhou), YUV U/V (+-0.6).
CHROMA_SCALE = {"lab": 110.0, "luv": 100.0, "yuv": 0.6}


def normalize_lum(lum: Tensor, color_space: str) -> Tensor:
    """Map luminance in physical units to about [-0.5, 0.5] (L: (L-50)/100; Y: Y-0.5)."""
    if color_space == "yuv":
        return lum - 0.5
    return (lum - 50.0) / 100.0


def conv_bn_relu(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1
) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> ReLU, 'same' padding for odd kernels."""
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def scaled(width: float, *channels: int) -> tuple[int, ...]:
    """Channel counts multiplied by ``width`` (at least 4 each)."""
    return tuple(max(4, round(c * width)) for c in channels)


def resize_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of ``(B, C, h, w)`` to ``size`` (no-op if already there)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class VGGTrunk(nn.Module):
    """VGG16-style encoder on one input channel, BatchNorm before every ReLU.

    Block ``i`` has ``depths[i]`` 3x3 convs of ``widths[i]`` channels; a 2x2
    max-pool precedes every block but the first, so block ``i`` runs at
    stride ``2**i``.

    Args:
        widths: Channels per block (VGG16: 64, 128, 256, 512, 512).
        depths: Convs per block (VGG16: 2, 2, 3, 3, 3).
    """

    def __init__(self, widths: tuple[int, ...], depths: tuple[int, ...] = (2, 2, 3, 3, 3)):
        super().__init__()
        blocks = []
        cin = 1
        for w, d in zip(widths, depths, strict=True):
            layers = [conv_bn_relu(cin if i == 0 else w, w) for i in range(d)]
            blocks.append(nn.Sequential(*layers))
            cin = w
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Features of every block, at strides 1, 2, 4, ..."""
        feats = []
        for i, block in enumerate(self.blocks):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            feats.append(x)
        return feats
