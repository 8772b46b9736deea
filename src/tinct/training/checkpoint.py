"""Checkpoints of a training run: written atomically, resumed with a clear error.

A checkpoint (``<out>/checkpoint.pt``) holds the model's and the optimiser's
state, the batch sampler's random state, the step and the seconds trained so
far, so ``tinct train --resume`` continues where a stopped or killed run left
off. It is read with ``torch.load(weights_only=True)``: never unpickled; and only if it
is a regular file (a FIFO in its place is refused, not waited on).
"""

from __future__ import annotations

import json
import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tinct.training.config import TrainConfig

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint", "stop_on_sigterm"]

#: The entries every tinct checkpoint has.
_KEYS = ("model", "optimizer", "generator", "step", "elapsed")


class CheckpointError(RuntimeError):
    """``checkpoint.pt`` cannot be resumed from (unreadable, or another model's)."""


def save_checkpoint(
    path: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    generator: torch.Generator,
    *,
    step: int,
    elapsed: float,
    cfg: TrainConfig,
) -> None:
    """Write a checkpoint atomically (a temporary file, then a rename).

    Args:
        path: Where the checkpoint goes (``<out>/checkpoint.pt``).
        model: The model being trained (not a DDP wrapper).
        opt: Its optimiser.
        generator: The batch sampler's random generator.
        step: Optimiser steps taken so far.
        elapsed: Seconds trained so far, across resumes.
        cfg: The run's configuration (stored as JSON, for the record).
    """
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "generator": generator.get_state(),
                "step": step,
                "elapsed": elapsed,
                "config": json.dumps(asdict(cfg)),
            },
            tmp,
        )
        tmp.replace(path)
    finally:  # stopped mid-write (a second Ctrl-C): no half-written checkpoint.tmp is left
        tmp.unlink(missing_ok=True)


def load_checkpoint(
    path: Path, model: nn.Module, opt: torch.optim.Optimizer, generator: torch.Generator
) -> tuple[int, float]:
    """Load a checkpoint into the model, the optimiser and the sampler; ``(step, seconds)``.

    Raises:
        CheckpointError: The file is not a readable checkpoint, or it belongs to
            another model; the message says how to start afresh (never torch's
            advice to load it with ``weights_only=False``).
    """
    from tinct.engine.filelimits import open_regular

    fresh = "run without --resume to start afresh (the checkpoint is then replaced)"
    try:
        fh = open_regular(path)  # a FIFO would block torch.load for ever
    except OSError as exc:
        raise CheckpointError(f"cannot resume: {exc}; {fresh}") from None
    try:
        with fh:
            state = torch.load(fh, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or any(k not in state for k in _KEYS):
            raise ValueError("not a tinct checkpoint")
    except Exception:  # torch raises many kinds (and suggests weights_only=False): not ours
        raise CheckpointError(
            f"cannot resume: {path} is not a readable tinct checkpoint (truncated or corrupt?); "
            + fresh
        ) from None
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
    except (RuntimeError, ValueError, KeyError, TypeError):
        raise CheckpointError(
            f"cannot resume: {path} holds another model's weights (a different --recipe?); " + fresh
        ) from None
    return int(state["step"]), float(state["elapsed"])


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so a killed run writes its checkpoint first.

    Only in the main thread (signal handlers can be set nowhere else); a run in
    a worker thread (the napari Train widget) is stopped by its cancel event.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
