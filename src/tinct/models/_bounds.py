"""Sane bounds of a :class:`~tinct.models.ModelConfig`.

Registered configs are written by hand, but a weights file's metadata may ask
for anything (``tinct.models._from_file``): every field is typed and bounded
before the config is used to build or feed a network.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MAX_BINS", "MAX_INPUT_SIZE", "MAX_STRIDE", "check_config_bounds"]

#: Largest working resolution (long side, pixels) a config may ask for.
MAX_INPUT_SIZE = 2048
#: Largest stride (input multiple, output downsampling).
MAX_STRIDE = 256
#: Most bins of a classification head.
MAX_BINS = 4096


def check_config_bounds(cfg: Any) -> None:
    """Types and sane bounds of every field (before anything is built from them)."""

    def integer(name: str, lo: int, hi: int, optional: bool = False) -> None:
        v = getattr(cfg, name)
        if v is None and optional:
            return
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")

    def number(name: str, lo: float, hi: float, optional: bool = False) -> None:
        v = getattr(cfg, name)
        if v is None and optional:
            return
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
            raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {v!r}")

    integer("input_size", 16, MAX_INPUT_SIZE)
    integer("stride", 1, MAX_STRIDE)
    integer("logits_stride", 1, MAX_STRIDE, optional=True)
    integer("ab_stride", 1, MAX_STRIDE, optional=True)
    integer("num_bins", 0, MAX_BINS)
    integer("bins_per_channel", 1, MAX_BINS // 2, optional=True)
    number("default_temperature", 0.0, 1000.0)
    number("hint_propagation", 0.0, 1e6, optional=True)
    for name in ("hints", "hints_required", "global_hint", "mrf", "trainable"):
        if not isinstance(getattr(cfg, name), bool):
            raise ValueError(f"{name} must be true or false, got {getattr(cfg, name)!r}")
    for name in ("default_decoder", "hint_decoder", "loss"):
        v = getattr(cfg, name)
        if not (v is None and name == "hint_decoder") and (not isinstance(v, str) or len(v) > 64):
            raise ValueError(f"{name} must be a short string, got {v!r}"[:200])
    if cfg.channel_range is not None:
        lo_hi = cfg.channel_range
        if (
            not isinstance(lo_hi, tuple)
            or len(lo_hi) != 2
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in lo_hi)
            or not lo_hi[0] < lo_hi[1]
        ):
            raise ValueError(f"channel_range must be two finite numbers lo < hi, got {lo_hi!r}")
