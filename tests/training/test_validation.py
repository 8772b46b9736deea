"""tinct.training.validation: the built-in held-out PSNR of a training run."""

from __future__ import annotations

import math

import numpy as np
import torch

import tinct
from tinct.training.datasets import ImageBank
from tinct.training.validation import validate


def _bank(n: int = 3) -> ImageBank:
    rng = np.random.default_rng(0)
    images = [
        np.clip(rng.integers(0, 256, 3) + rng.integers(-40, 40, (48, 48, 3)), 0, 255).astype(
            np.uint8
        )
        for _ in range(n)
    ]
    return ImageBank.from_arrays(images, 48)


def test_scores_auto_hinted_and_gray_and_restores_the_mode():
    torch.manual_seed(0)
    model = tinct.load_model("tinct-small", pretrained=False)
    model.train()
    bank = _bank()
    got = validate(model, bank, [0, 2], torch.device("cpu"), hints=4)
    assert set(got) == {"psnr_auto", "psnr_4hints", "psnr_gray"}
    assert all(math.isfinite(v) and v > 0 for v in got.values())
    assert model.training  # back in the mode it came in
    assert validate(model, bank, [0, 2], torch.device("cpu"), hints=4) == got  # seeded hints
