"""What the engine needs to know about a model, read from its registry record.

:class:`ModelInfo` condenses ``model.record.config`` and carries the model's
:class:`~tinct.models.targets.Target`; :func:`bin_centres` gives the centres of
its output bins and :func:`log_probs` normalises its logits per distribution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from tinct.models.registry import ModelConfig
from tinct.models.targets import Target, get_target

#: ModelConfig fields read through :class:`ModelInfo`.
_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelConfig))

__all__ = ["ModelInfo", "bin_centres", "log_probs", "net_shape"]


@dataclass(frozen=True)
class ModelInfo:
    """What the engine needs to know about a loaded model: its record's config, read through.

    Attributes:
        config: The record's :class:`~tinct.models.registry.ModelConfig`.
        target: The config's :class:`~tinct.models.targets.Target`.
        stride: Spatial multiple the network needs (the network's own, else the config's).
        name: The record's name (the class name for a model without a record).
    """

    config: ModelConfig
    target: Target
    stride: int
    name: str

    @classmethod
    def of(cls, model: Any) -> ModelInfo:
        """Read a model's ``record.config`` (falling back to ``ModelConfig`` defaults)."""
        record = getattr(model, "record", None)
        cfg = getattr(record, "config", None) or ModelConfig()
        return cls(
            config=cfg,
            target=get_target(cfg.target),
            stride=int(getattr(model, "stride", None) or cfg.stride),
            name=str(getattr(record, "name", type(model).__name__)),
        )

    @property
    def space(self) -> str:
        """The colour space (``ModelConfig.color_space``)."""
        return str(self.config.color_space)

    def __getattr__(self, name: str) -> Any:
        """Every other field reads the config (``info.hints``, ``info.input_size``, ...)."""
        if name in _CONFIG_FIELDS:
            return getattr(self.config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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


def net_shape(size: Sequence[int], long_side: int) -> tuple[int, int]:
    """Network input size with the long side ``long_side`` and the aspect ratio kept."""
    h, w = size
    s = long_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))
