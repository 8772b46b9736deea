"""tinct.engine.render: decoded chrominance to full-resolution colour (edge-aware, scratch)."""

import types

import numpy as np
import torch
import torch.nn.functional as F

from engine_helpers import gradient_image
from tinct import color
from tinct.engine.colorizer import Colorizer
from tinct.models.base import ColorModel, ModelOutput
from tinct.models.registry import ModelConfig


def test_upsampling_beats_bilinear_with_oracle_chroma():
    """Given the true chroma on a 1/4 network grid, the edge-aware path beats bilinear ab."""
    from skimage import data

    from tinct.upsample import resize

    rgb = data.coffee()
    H, W = rgb.shape[:2]
    lab = color.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255)
    hn, wn = round(H * 256 / max(H, W)), round(W * 256 / max(H, W))
    coarse = resize(lab[:, 1:], (-(-hn // 4), -(-wn // 4)))

    class Oracle(ColorModel):
        stride = 8

        def __init__(self):
            super().__init__()
            cfg = ModelConfig(
                target="regression", heads=("ab",), num_bins=0, logits_stride=None,
                ab_stride=4, default_decoder="ab",
            )  # fmt: skip
            self.record = types.SimpleNamespace(name="oracle", config=cfg)

        def forward(self, lum, *args):
            out = torch.zeros(1, 2, lum.shape[-2] // 4, lum.shape[-1] // 4)
            out[..., : coarse.shape[-2], : coarse.shape[-1]] = coarse
            return ModelOutput(ab=out)

    gray_lab = torch.cat((lab[:, :1], torch.zeros_like(lab[:, 1:])), 1)
    gray = (color.lab_to_rgb(gray_lab)[0, 0].numpy() * 255 + 0.5).astype(np.uint8)
    ours = Colorizer(Oracle(), device="cpu").colorize(gray).astype(np.float64)
    up = F.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False)
    base = color.lab_to_rgb(torch.cat((lab[:, :1], up), 1))[0].permute(1, 2, 0).numpy()
    base = (base * 255 + 0.5).astype(np.uint8).astype(np.float64)

    def psnr(x):
        return 10 * np.log10(255**2 / np.mean((x - rgb) ** 2))

    assert psnr(ours) > psnr(base) + 0.5


def test_scratch_buffer_reuse_across_images_of_different_sizes(tiny):
    """Renders reuse one scratch buffer; results do not depend on what it held before."""
    big, small = gradient_image(1100, 1000), gradient_image(300, 280)
    first_small = tiny.colorize(small, temperature=0.5)
    tiny.clear_cache()
    tiny.colorize(big)
    again_small = tiny.colorize(small, temperature=0.5)
    np.testing.assert_array_equal(first_small, again_small)
    fresh = Colorizer(tiny.model, device="cpu").colorize(big)
    np.testing.assert_array_equal(tiny.colorize(big), fresh)


def test_a_saturated_hint_spread_onto_highlights_keeps_the_photos_lightness():
    """Out-of-gamut colour loses chroma, not lightness (it used to be clipped per channel).

    A deep blue hint at the dark end of a ramp propagates to its bright end, where sRGB
    holds little blue: per-channel clipping made those pixels up to 8 L darker.
    """
    import tinct

    gray = np.tile(np.linspace(40, 250, 128), (96, 1)).astype(np.uint8)
    hint = tinct.Hint(row=48, col=10, color=(0.1, 0.25, 1.0))
    out = tinct.Colorizer("tinct-base", device="cpu").colorize(gray, hints=[hint])
    lab = color.rgb_to_lab(torch.from_numpy(out).permute(2, 0, 1)[None].float() / 255)[0]
    flat = torch.from_numpy(np.repeat(gray[..., None], 3, -1)).permute(2, 0, 1)[None]
    want = color.rgb_to_lab(flat.float() / 255)[0]
    assert (lab[0] - want[0]).abs().max() < 1.0  # L kept (clipped: 8.4 off)
    assert lab[2, :, :40].mean() < -60 and lab[2, :, 100:].mean() < -5  # blue throughout
