"""Bundled sample data.

``chelsea.png`` is scikit-image's ``data.chelsea()`` (Chelsea the cat, public
domain, 300 x 451 RGB), stored here so ``tinct demo`` works without network
access or scikit-image's data cache.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["load_sample", "sample_path"]


def sample_path() -> Path:
    """Path of the bundled sample image (colour PNG)."""
    return Path(str(resources.files("tinct.data").joinpath("chelsea.png")))


def load_sample(gray: bool = True) -> np.ndarray:
    """The sample image.

    Args:
        gray: Return the uint8 ``(H, W)`` gray version (same CIELAB lightness as
            the colour image); ``False`` returns the ``(H, W, 3)`` uint8 colour image.

    Returns:
        The image array.
    """
    from PIL import Image

    with Image.open(sample_path()) as im:
        rgb = np.array(im.convert("RGB"))  # a writable copy (torch.from_numpy below)
    if not gray:
        return rgb
    import torch

    from tinct import color

    lin = color.srgb_to_linear(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0)
    m = color.XYZ_FROM_RGB[1]
    y = (lin[0] * m[0] + lin[1] * m[1] + lin[2] * m[2]).clamp(0.0, 1.0)
    v = color.linear_to_srgb(y).clamp(0.0, 1.0)
    return (v * 255.0 + 0.5).to(torch.uint8).numpy()
