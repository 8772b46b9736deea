"""Shared by the colour tests (test_color, test_luv_yuv): the RGB cube, tensor/array shortcuts."""

import numpy as np
import torch


def rgb_cube() -> np.ndarray:
    """103,823 colours spread over the 8-bit RGB cube, as an (N, 1, 3) float64 image."""
    v = np.round(np.linspace(0, 255, 47))
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r, g, b], -1).reshape(-1, 1, 3) / 255.0


def to_t(img: np.ndarray, dtype=torch.float64, device="cpu") -> torch.Tensor:
    return torch.from_numpy(np.moveaxis(img, -1, 0).copy()).to(dtype=dtype, device=device)


def to_np(t: torch.Tensor) -> np.ndarray:
    return np.moveaxis(t.detach().cpu().double().numpy(), 0, -1)
