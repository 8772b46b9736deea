"""What the engine needs to know about a model, read from its registry record.

:class:`ModelInfo` condenses ``model.record.config``; :func:`bin_centres` gives
the centres of its output bins and :func:`log_probs` normalises its logits per
distribution (joint, or per channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ModelInfo", "bin_centres", "log_probs", "net_shape"]


@dataclass(frozen=True)
class ModelInfo:
    """What the engine needs to know about a model (from its record's config)."""

    space: str
    target: str
    heads: tuple[str, ...]
    hints: bool
    global_hint: bool
    input_size: int
    stride: int
    num_bins: int
    bins_per_channel: int | None
    channel_range: tuple[float, float] | None
    default_temperature: float
    default_decoder: str
    name: str

    @classmethod
    def of(cls, model: Any) -> ModelInfo:
        """Read a model's ``record.config`` (falling back to ``ModelConfig`` defaults)."""
        from tinct.models.registry import ModelConfig

        record = getattr(model, "record", None)
        cfg = getattr(record, "config", None) or ModelConfig()
        return cls(
            space=cfg.color_space,
            target=cfg.target,
            heads=tuple(cfg.heads),
            hints=bool(cfg.hints),
            global_hint=bool(cfg.global_hint),
            input_size=int(cfg.input_size),
            stride=int(getattr(model, "stride", None) or cfg.stride),
            num_bins=int(cfg.num_bins),
            bins_per_channel=cfg.bins_per_channel,
            channel_range=cfg.channel_range,
            default_temperature=float(cfg.default_temperature),
            default_decoder=str(cfg.default_decoder),
            name=str(getattr(record, "name", type(model).__name__)),
        )

    @property
    def joint(self) -> bool:
        """Logits over joint (a, b) bins (MRF, conditioning, suggestions apply)."""
        return self.target in ("gamut313", "grid529")

    @property
    def has_logits(self) -> bool:
        """The model has a classification head."""
        return "logits" in self.heads


def bin_centres(info: ModelInfo, device: torch.device | str | None = None) -> Tensor | None:
    """Bin centres for a model's target.

    Returns:
        ``(Q, 2)`` ab centres for joint targets; ``(2, K)`` per-channel centres
        for ``"channel"``; ``(2, K)`` (hue in radians, chroma) for
        ``"hue_chroma"``; ``None`` for regression.
    """
    from tinct import bins

    if info.target == "gamut313":
        return bins.gamut_bins(device=device)
    if info.target == "grid529":
        return bins.grid_bins(device=device)
    if info.target in ("channel", "hue_chroma"):
        k = int(info.bins_per_channel or 0)
        lo, hi = info.channel_range or (0.0, 1.0)
        vals = bins.uniform_bins(k, lo, hi, device=device)
        if info.target == "channel":
            return torch.stack((vals, vals))
        return torch.stack((bins.hue_bins(k, device=device), vals))
    return None


def log_probs(logits: Tensor, info: ModelInfo) -> Tensor:
    """Normalise logits to log-probabilities per distribution (joint, or per channel)."""
    logits = logits.float()
    if info.joint:
        return F.log_softmax(logits, dim=1)
    b, q, h, w = logits.shape
    return F.log_softmax(logits.view(b, 2, q // 2, h, w), dim=2).view(b, q, h, w)


def net_shape(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Network input size with the long side ``long_side`` and the aspect ratio kept."""
    h, w = size
    s = long_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))
