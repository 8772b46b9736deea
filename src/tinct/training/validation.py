"""Validation during training: PSNR of colorization on the held-out images of a run.

:func:`validate` is the built-in validation of :func:`tinct.training.train.train`
(every ``val_every_minutes``, written to ``log.csv`` and the exported weights'
metadata): PSNR at 256 px of automatic colorization, of colorization with
simulated hints, and of the gray image itself (a floor).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tinct.bins import gamut_bins
from tinct.training.datasets import ImageBank
from tinct.training.sampling import simulate_hints

__all__ = ["validate"]


@torch.no_grad()
def validate(
    model: nn.Module, bank: ImageBank, indices: list[int], device: torch.device, hints: int = 10
) -> dict[str, float]:
    """PSNR of automatic and hinted colorization on held-out images (256 px).

    Automatic uses the annealed mean (T = 0.38) of the logits when the model
    has them, else its regression output; hinted uses the regression output
    when present. The model is put in eval mode and back in its former mode.

    Args:
        model: The network being trained (not a DDP wrapper).
        bank: The run's decoded images.
        indices: Held-out images of ``bank``.
        device: Where the model runs.
        hints: Simulated hints per image of the hinted score (seeded, the same
            hints at every validation).

    Returns:
        Mean PSNR in dB: ``psnr_auto``, ``psnr_<hints>hints`` and
        ``psnr_gray`` (the gray image itself, a floor).
    """
    from tinct.color import lab_to_rgb, rgb_to_lab
    from tinct.decode import decode

    was_training = model.training
    model.eval()
    centres = gamut_bins(device=device)
    g = torch.Generator().manual_seed(1234)
    sums = {"psnr_auto": 0.0, f"psnr_{hints}hints": 0.0, "psnr_gray": 0.0}
    for start in range(0, len(indices), 16):
        chunk = indices[start : start + 16]
        rgb = torch.from_numpy(np.stack([bank.images[i] for i in chunk])).to(device)
        rgb = rgb.permute(0, 3, 1, 2).float() / 255.0
        lab = rgb_to_lab(rgb)
        lum, ab = lab[:, :1], lab[:, 1:]
        for key, n in (("psnr_auto", 0), (f"psnr_{hints}hints", hints), ("psnr_gray", -1)):
            if n < 0:
                pred = torch.zeros_like(ab)
            else:
                h_ab, h_mask = simulate_hints(ab, [n] * len(chunk), g, spread=0.25)
                out = model(lum, h_ab, h_mask, None)
                if n == 0 and out.logits is not None:
                    pred = decode(out.logits, centres, "annealed_mean", temperature=0.38)
                else:
                    pred = out.ab if out.ab is not None else decode(out.logits, centres, "mean")
                pred = torch.nn.functional.interpolate(
                    pred, size=ab.shape[-2:], mode="bilinear", align_corners=False
                )
            out_rgb = (lab_to_rgb(torch.cat((lum, pred), 1)) * 255).round()
            mse = (out_rgb - (rgb * 255).round()).pow(2).flatten(1).mean(1)
            sums[key] += float((10 * torch.log10(255.0**2 / mse.clamp_min(1e-10))).sum())
    model.train(was_training)
    return {k: v / len(indices) for k, v in sums.items()}
