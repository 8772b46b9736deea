"""What the engine needs to know about a model, read from its registry record.

:class:`ModelInfo` condenses ``model.record.config`` and carries the model's
:class:`~tinct.models.targets.Target`; :func:`bin_centres` gives the centres of
its output bins and :func:`log_probs` normalises its logits per distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from tinct.models.targets import Target, get_target

__all__ = ["ModelInfo", "bin_centres", "log_probs", "net_shape"]


@dataclass(frozen=True)
class ModelInfo:
    """What the engine needs to know about a model (from its record's config)."""

    space: str
    target: Target
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
            target=get_target(cfg.target),
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
        return self.target.joint

    @property
    def has_logits(self) -> bool:
        """The model has a classification head."""
        return "logits" in self.heads


def bin_centres(info: ModelInfo, device: torch.device | str | None = None) -> Tensor | None:
    """Bin centres for a model's target (see :meth:`tinct.models.targets.Target.centres`)."""
    return info.target.centres(info.bins_per_channel, info.channel_range, device)


def log_probs(logits: Tensor, info: ModelInfo) -> Tensor:
    """Normalise logits to log-probabilities per distribution (joint, or per channel)."""
    return info.target.log_probs(logits)


def net_shape(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Network input size with the long side ``long_side`` and the aspect ratio kept."""
    h, w = size
    s = long_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))
