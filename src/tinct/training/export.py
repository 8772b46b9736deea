"""Exporting a trained model: weights files with their metadata, from a run or a checkpoint."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tinct.training.config import (
    TrainConfig,
    build_model,
)

__all__ = ["export_checkpoint", "export_weights"]


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    n = torch.get_num_threads()
    return f"{platform.processor() or platform.machine()} CPU, {n} thread{'' if n == 1 else 's'}"


def export_weights(model: nn.Module, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write the model's weights as safetensors with JSON-able metadata.

    Args:
        model: The trained network (DDP wrappers are unwrapped).
        path: Output ``.safetensors`` file.
        metadata: Recipe, data, steps, hardware, time, metrics...

    Returns:
        The written path.

    The file is written under a hidden temporary name and renamed into place: stopped
    mid-write (Ctrl-C, a full disk), it leaves the previous weights as they were and no
    half-written file that would load as a truncated model.
    """
    import os

    from tinct.models.weights import save_weights

    model = getattr(model, "module", model)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_weights(model, tmp, metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def export_checkpoint(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Export the latest checkpoint of a (possibly still running) run as safetensors.

    Args:
        run_dir: The run folder holding ``checkpoint.pt``.
        path: Output file (default ``<run_dir>/<recipe>-step<N>.safetensors``).

    Returns:
        The written path.
    """
    run_dir = Path(run_dir)
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    cfg = TrainConfig(**json.loads(state["config"]))
    model = build_model(cfg.recipe, None)
    model.load_state_dict(state["model"])
    step = int(state["step"])
    path = Path(path) if path else run_dir / f"{cfg.recipe}-step{step}.safetensors"
    return export_weights(
        model,
        path,
        {
            "model": cfg.recipe,
            "recipe": cfg.recipe,
            "steps": step,
            "wall_time_s": round(float(state["elapsed"]), 1),
            "train_config": asdict(cfg),
            "data": ", ".join(cfg.data),
        },
    )
