"""The classical, non-learned baseline ``levin``: its registry entry and model wrapper.

The solver lives in the numerical core (:mod:`tinct.levin`);
:class:`LevinColorizer` wraps it as a :class:`~tinct.models.ColorModel`, so the
engine runs it like any network.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from tinct.levin import propagate_batch
from tinct.models.base import ColorModel, ModelOutput
from tinct.models.registry import ModelConfig, ModelRecord, register_model

__all__ = ["LevinColorizer"]

_PAPER = "A. Levin, D. Lischinski, Y. Weiss. Colorization using Optimization. SIGGRAPH 2004."


def _build_levin(**kwargs: Any) -> ColorModel:
    return LevinColorizer(**kwargs)


class LevinColorizer(ColorModel):
    """Levin et al.'s optimisation as a :class:`ColorModel` (registry name ``levin``).

    No trainable weights. ``forward(lum, hint_ab, hint_mask)``: ``lum``
    ``(B, 1, H, W)`` CIELAB L in [0, 100]; ``hint_ab`` ``(B, 2, H, W)`` CIELAB
    a, b; ``hint_mask`` ``(B, 1, H, W)`` (> 0.5 = hint). Returns ``ab``
    ``(B, 2, H, W)``; zeros (gray) for an image without hints. Runs on the CPU
    with numpy/scipy whatever the device of the inputs (not differentiable).

    Args:
        max_pixels: Solve larger images at reduced size (see :func:`~tinct.levin.levin_colorize`).
        sigma_scale: Edge sensitivity (see :func:`~tinct.levin.levin_colorize`).
    """

    stride = 1

    def __init__(self, max_pixels: int = 384 * 384, sigma_scale: float = 0.1):
        super().__init__()
        self.max_pixels = max_pixels
        self.sigma_scale = sigma_scale

    def forward(
        self,
        lum: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hint: Tensor | None = None,
    ) -> ModelOutput:
        """Propagate the hints of each image of the batch."""
        if hint_ab is None or hint_mask is None:
            return ModelOutput(ab=lum.new_zeros(lum.shape[0], 2, *lum.shape[-2:]))
        ab = propagate_batch(
            lum, hint_ab, hint_mask, max_pixels=self.max_pixels, sigma_scale=self.sigma_scale
        )
        return ModelOutput(ab=ab.to(lum.dtype))


register_model(
    ModelRecord(
        name="levin",
        display_name="Levin et al. (classical, needs hints)",
        description="Colorization by optimization: hint colours spread to neighbours of similar "
        "luminance by solving a sparse linear system. No network; without hints the result "
        "stays gray.",
        builder=_build_levin,
        config=ModelConfig(
            color_space="lab",
            target="regression",
            heads=("ab",),
            num_bins=0,
            hints=True,
            hints_required=True,
            input_size=384,
            stride=1,
            logits_stride=None,
            ab_stride=1,
            default_temperature=1.0,
            default_decoder="ab",
            loss="none",
            trainable=False,
        ),
        paper=_PAPER,
        notes="Solved at most 384 x 384 pixels (larger images at reduced size, ab upsampled).",
    )
)
