"""Registry entry for the classical, non-learned baseline ``levin``.

The solver lives in :mod:`tinct.levin`; it is imported when the model is
built, so importing the registry stays cheap (and free of import cycles).
"""

from __future__ import annotations

from typing import Any

from tinct.models.base import ColorModel
from tinct.models.registry import ModelConfig, ModelRecord, register_model

__all__: list[str] = []

_PAPER = "A. Levin, D. Lischinski, Y. Weiss. Colorization using Optimization. SIGGRAPH 2004."


def _build_levin(**kwargs: Any) -> ColorModel:
    from tinct.levin import LevinColorizer

    return LevinColorizer(**kwargs)


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
