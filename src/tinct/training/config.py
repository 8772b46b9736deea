"""What a training run is: its configuration, progress reports and hooks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from tinct.models.targets import get_target
from tinct.training.datasets import ImageBank

__all__ = ["TrainConfig", "TrainHooks", "TrainProgress", "build_model", "split_indices"]


@dataclass
class TrainConfig:
    """Everything a training run needs; saved with checkpoints and exports.

    Attributes:
        recipe: Registry name of the model to train (e.g. ``"tinct-base"``).
        data: Folders of colour images.
        out: Run folder (checkpoints, log, exported weights).
        init: Model name or weights file to start from (fine-tuning), or None.
        steps: Step budget (0 = unlimited).
        minutes: Wall-clock budget (0 = unlimited).
        batch_size: Images per step (per process).
        crop: Training crop side in pixels.
        image_size: Images are decoded to squares of this side first.
        rescale: ``(low, high)`` range of the random rescale of each batch before
            cropping, relative to ``image_size`` (the crop never exceeds the image).
        lr: Peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        warmup: Linear warm-up steps.
        regression_weight: Weight of the L1 term (SIGGRAPH17 uses 10).
        rebalance: Class-rebalancing strength (0 = off, 1 = Zhang's full weights).
        p_no_hints: Share of images trained without hints.
        val_fraction: Share of images held out for validation.
        val_every_minutes: Validation interval.
        checkpoint_minutes: Checkpoint interval.
        snapshot_minutes: Export ``<out>/snapshots/step_<N>.safetensors`` at this
            interval (0 = never), so a checkpoint can be chosen afterwards on
            held-out protocol metrics rather than on the loss.
        seed: Random seed.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        cache_dir: Where decoded image arrays are cached.
        threads: Torch CPU threads (0 = torch default).
    """

    recipe: str = "tinct-base"
    data: list[str] = field(default_factory=list)
    out: str = "runs/tinct-base"
    init: str | None = None
    steps: int = 0
    minutes: float = 0.0
    batch_size: int = 16
    crop: int = 128
    image_size: int = 256
    rescale: tuple[float, float] = (0.5, 1.0)
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    regression_weight: float = 10.0
    rebalance: float = 0.5
    p_no_hints: float = 0.3
    val_fraction: float = 0.02
    val_every_minutes: float = 10.0
    checkpoint_minutes: float = 5.0
    snapshot_minutes: float = 0.0
    seed: int = 0
    device: str = "auto"
    cache_dir: str | None = None
    threads: int = 0


@dataclass(frozen=True)
class TrainProgress:
    """Where a run stands; passed to :attr:`TrainHooks.progress` after each step and validation.

    Attributes:
        step: Optimiser steps done.
        seconds: Wall-clock seconds of training so far.
        fraction: Share of the budget (steps or minutes, whichever is further) used, in [0, 1].
        loss: Running mean of the total loss (None before the first step).
        metrics: The latest validation metrics (empty before the first validation).
        best: Best value of :attr:`TrainHooks.best_key` so far (None without one).
        best_step: The step of ``best`` (0 = the starting weights).
    """

    step: int
    seconds: float
    fraction: float
    loss: float | None
    metrics: dict[str, float]
    best: float | None = None
    best_step: int | None = None


@dataclass
class TrainHooks:
    """How a caller other than the command line drives :func:`~tinct.training.train.train`.

    Attributes:
        bank: Train on these decoded images instead of ``cfg.data``.
        held_out: Indices of ``bank`` validated on and never trained on
            (default: the seeded :func:`split_indices` of ``cfg.val_fraction``).
        data_description: How the exported metadata describes the data.
        validate: ``validate(model) -> metrics``, replacing the built-in
            validation on the held-out images (the model is in eval mode inside).
        best_key: Keep the weights with the highest ``metrics[best_key]``
            (the starting weights are validated too) and export those rather
            than the last ones.
        progress: Called with a :class:`TrainProgress` after every step and validation.
        cancel: Object with ``is_set()``; once set the run stops before its next
            step and exports as if its budget had run out.
    """

    bank: ImageBank | None = None
    held_out: Sequence[int] | None = None
    data_description: str | None = None
    validate: Callable[[nn.Module], dict[str, float]] | None = None
    best_key: str | None = None
    progress: Callable[[TrainProgress], None] | None = None
    cancel: Any = None


def split_indices(n: int, fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """The run's seeded split of ``n`` images: ``(held_out, training)`` indices.

    At most 256 images (``round(n * fraction)``) are held out. Scripts that tune
    on a run's held-out images (``scripts/tune_defaults.py``) use the same rule.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(256, round(n * fraction))
    return sorted(int(i) for i in order[:n_val]), [int(i) for i in order[n_val:]]


def _config_of(model: nn.Module) -> Any:
    record = getattr(getattr(model, "module", model), "record", None)
    return None if record is None else record.config


def _can_validate(config: Any) -> bool:
    """Validation PSNR goes through Lab: defined for Lab models with 313 bins or regression."""
    return config is None or (
        config.color_space == "lab" and get_target(config.target).validates_in_lab
    )


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(recipe: str, init: str | None) -> nn.Module:
    """Build the recipe's network, optionally initialised from a model or file."""
    from tinct.models import load_model

    if init:
        return load_model(init, device="cpu", pretrained=True).train()
    return load_model(recipe, device="cpu", pretrained=False).train()
