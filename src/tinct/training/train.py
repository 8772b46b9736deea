"""Training loop for every registered recipe: train, fine-tune, resume, export.

The loop is budgeted by steps or by wall-clock minutes: the learning rate
follows a cosine over whichever budget runs out first, so a run stopped by
its time limit still ends annealed. Checkpoints are written atomically every
few minutes and ``resume=True`` continues from the last one
(:mod:`tinct.training.checkpoint`); held-out images are scored by
:func:`tinct.training.validation.validate` unless the hooks bring their own. Under
``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
DistributedDataParallel (gloo on CPU, NCCL on CUDA) and each process draws
from its own shard of the images.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from tinct.bins import gamut_bins
from tinct.training.checkpoint import load_checkpoint, save_checkpoint, stop_on_sigterm
from tinct.training.config import (
    TrainConfig,
    TrainHooks,
    TrainProgress,
    _can_validate,
    _config_of,
    _device,
    build_model,
    split_indices,
)
from tinct.training.datasets import ImageBank, find_images, skipped_message
from tinct.training.export import _hardware, export_weights
from tinct.training.losses import (
    class_weights_from_bank,
    compute_losses,
)
from tinct.training.sampling import BatchSampler
from tinct.training.validation import validate

__all__ = ["train"]


def _lr_factor(step: int, elapsed: float, cfg: TrainConfig) -> float:
    frac = 0.0
    if cfg.steps:
        frac = max(frac, step / cfg.steps)
    if cfg.minutes:
        frac = max(frac, elapsed / (cfg.minutes * 60.0))
    warm = min(1.0, (step + 1) / max(1, cfg.warmup))
    return warm * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))


def _budget_left(step: int, elapsed: float, cfg: TrainConfig) -> bool:
    if cfg.steps and step >= cfg.steps:
        return False
    return not (cfg.minutes and elapsed >= cfg.minutes * 60.0)


def _is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def _rounded(metrics: dict[str, float]) -> str:
    """Validation metrics as the log shows them: JSON, 3 decimals."""
    return json.dumps({k: round(v, 3) for k, v in metrics.items()})


def _log_row(step: int, minutes: float, lr: float, running: dict[str, float], val: str) -> list:
    """One line of ``log.csv``: step, minutes, lr, the running loss terms, validation."""
    terms = [f"{running[k]:.4f}" if k in running else "" for k in ("total", "ce", "l1")]
    return [step, f"{minutes:.2f}", f"{lr:.2e}", *terms, val]


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    hooks: TrainHooks | None = None,
) -> Path:
    """Run (or resume) a training run; returns the exported weights file.

    Args:
        cfg: The run's configuration.
        resume: Continue from ``<out>/checkpoint.pt`` if it exists.
        log: Where progress lines go.
        hooks: In-memory images, own held-out split and validation, best-weights
            keeping, progress and cancellation (see :class:`TrainHooks`).

    Returns:
        Path of ``<out>/<recipe>.safetensors``.
    """
    hooks = hooks or TrainHooks()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    lo, hi = (float(x) for x in cfg.rescale)
    if not 0.0 < lo <= hi:
        raise ValueError(f"rescale must be (low, high) with 0 < low <= high, got {cfg.rescale}")
    device = _device(cfg.device)
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + rank)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    if hooks.bank is not None:
        bank, paths = hooks.bank, list(hooks.bank.paths)
        val_idx = sorted({int(i) for i in hooks.held_out or ()})
        held = set(val_idx)
        train_idx = [i for i in range(len(bank)) if i not in held]
        if not train_idx:
            raise ValueError("every image is held out: nothing is left to train on")
    else:
        paths = find_images(cfg.data)
        bank = ImageBank(paths, size=cfg.image_size, cache_dir=cfg.cache_dir, progress=_is_main())
        paths = bank.paths
        if bank.skipped:
            log(skipped_message(bank.skipped))
        val_idx, train_idx = split_indices(len(bank), cfg.val_fraction, cfg.seed)
    n_val = len(val_idx)
    train_idx = train_idx[rank::world]
    model = build_model(cfg.recipe, cfg.init).to(device)
    config = _config_of(model)
    if config is not None and not config.trainable:
        raise ValueError(f"recipe {cfg.recipe!r} is not trainable")
    sampler = BatchSampler(
        bank,
        batch_size=cfg.batch_size,
        crop=cfg.crop,
        scale=(lo, hi),
        p_no_hints=cfg.p_no_hints,
        seed=cfg.seed * 1000 + rank,
        indices=train_idx,
        device=device,
        color_space=config.color_space if config is not None else "lab",
    )
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    centres = gamut_bins(device=device)
    class_w = class_weights_from_bank(bank, cfg.rebalance)
    class_w = None if class_w is None else class_w.to(device)
    step, elapsed_before = 0, 0.0
    ckpt = out / "checkpoint.pt"
    if resume and not ckpt.exists():
        log(f"no checkpoint at {ckpt} to resume from: starting a fresh run")
    elif resume:
        step, elapsed_before = load_checkpoint(ckpt, model, opt, sampler.generator)
        log(f"resumed from {ckpt} at step {step} ({elapsed_before / 60:.1f} min)")
    net: nn.Module = model
    if distributed:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    log_file = out / "log.csv"
    new_log = not log_file.exists() or not resume
    csv_f = open(log_file, "w" if new_log else "a", newline="") if _is_main() else None  # noqa: SIM115
    writer = csv.writer(csv_f) if csv_f else None
    if writer and new_log:
        writer.writerow(["step", "minutes", "lr", "loss", "ce", "l1", "val"])
    start = time.monotonic()
    last_ckpt = last_val = last_snap = start
    metrics: dict[str, float] = {}
    running: dict[str, float] = {}
    can_validate = bool(
        _is_main() and val_idx and (hooks.validate is not None or _can_validate(config))
    )
    no_val = "" if can_validate or not _is_main() else (
        f"validation PSNR is not measured for {cfg.recipe}" if val_idx
        else "no held-out images" if hooks.bank is not None
        else f"no images held out: --val-fraction {cfg.val_fraction:g} of {len(bank)} images "
        "is less than one; raise it to validate"
    )  # fmt: skip
    if no_val:
        log(f"no validation: {no_val}")
    best: dict[str, Any] = {"score": None, "step": None, "state": None, "metrics": {}}
    logged_step = -1  # the step of log.csv's last line

    def run_validation() -> dict[str, float]:
        if hooks.validate is None:
            return validate(model, bank, val_idx, device)
        was_training = model.training
        model.eval()
        try:
            return hooks.validate(model)
        finally:
            model.train(was_training)

    def keep_if_best(found: dict[str, float]) -> None:
        score = found.get(hooks.best_key) if hooks.best_key else None
        if score is not None and (best["score"] is None or score > best["score"]):
            state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            best.update(score=score, step=step, state=state, metrics=dict(found))

    def report() -> None:
        if hooks.progress is None:
            return
        elapsed = elapsed_before + time.monotonic() - start
        frac = max(
            step / cfg.steps if cfg.steps else 0.0,
            elapsed / (cfg.minutes * 60) if cfg.minutes else 0.0,
        )
        hooks.progress(
            TrainProgress(
                step=step,
                seconds=elapsed,
                fraction=min(1.0, frac),
                loss=running.get("total"),
                metrics=dict(metrics),
                best=best["score"],
                best_step=best["step"],
            )
        )

    if can_validate and hooks.best_key:  # the starting weights are a candidate too
        metrics = run_validation()
        keep_if_best(metrics)
        log(f"step {step} val {_rounded(metrics)}")
    report()
    cancelled = False

    def checkpoint() -> None:
        if _is_main():
            elapsed = elapsed_before + time.monotonic() - start
            save_checkpoint(
                ckpt, model, opt, sampler.generator, step=step, elapsed=elapsed, cfg=cfg
            )

    stop_on_sigterm()
    try:
        while True:
            elapsed = elapsed_before + time.monotonic() - start
            cancelled = hooks.cancel is not None and bool(hooks.cancel.is_set())
            stop = torch.tensor([0 if _budget_left(step, elapsed, cfg) and not cancelled else 1])
            if distributed:  # every rank stops at the same step (clocks differ)
                dist.all_reduce(stop, op=dist.ReduceOp.MAX)
            if stop.item():
                break
            for group in opt.param_groups:
                group["lr"] = cfg.lr * _lr_factor(step, elapsed, cfg)
            batch = sampler.next()
            if device.type == "cuda":
                batch.lum = batch.lum.contiguous(memory_format=torch.channels_last)
            with autocast:
                terms = compute_losses(net, batch, centres, class_w, cfg)
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            step += 1
            for k, v in terms.items():
                val = float(v.detach())
                running[k] = 0.98 * running.get(k, val) + 0.02 * val
            now = time.monotonic()
            val_str = ""
            if can_validate and now - last_val > cfg.val_every_minutes * 60:
                metrics = run_validation()
                keep_if_best(metrics)
                val_str = _rounded(metrics)
                last_val = now
                log(f"step {step} val {val_str}")
            if writer and (step % 25 == 0 or val_str):
                minutes = (elapsed_before + now - start) / 60
                lr = opt.param_groups[0]["lr"]
                writer.writerow(_log_row(step, minutes, lr, running, val_str))
                csv_f.flush()  # type: ignore[union-attr]
                logged_step = step
            if step % 100 == 0 and _is_main():
                log(
                    f"step {step} {(elapsed_before + now - start) / 60:.1f} min "
                    f"loss {running['total']:.4f} lr {opt.param_groups[0]['lr']:.2e}"
                )
            if now - last_ckpt > cfg.checkpoint_minutes * 60:
                checkpoint()
                last_ckpt = now
            if cfg.snapshot_minutes and now - last_snap > cfg.snapshot_minutes * 60 and _is_main():
                meta = {"model": cfg.recipe, "steps": step, "train_config": asdict(cfg)}
                (out / "snapshots").mkdir(exist_ok=True)
                export_weights(model, out / "snapshots" / f"step_{step:06d}.safetensors", meta)
                last_snap = now
            report()
    finally:
        checkpoint()
        if csv_f:
            csv_f.close()
    wall = elapsed_before + time.monotonic() - start
    result = out / f"{cfg.recipe}.safetensors"
    if _is_main():
        if can_validate:
            metrics = run_validation()
            keep_if_best(metrics)
        if can_validate or logged_step != step:  # the run's last line: where it ended
            with open(log_file, "a", newline="") as f:
                row = _log_row(step, wall / 60, opt.param_groups[0]["lr"], running,
                               _rounded(metrics) if can_validate else "")  # fmt: skip
                csv.writer(f).writerow(row)
        kept = step
        if best["state"] is not None and best["step"] != step:  # an earlier step did better
            model.load_state_dict(best["state"])
            kept, metrics = best["step"], best["metrics"]
            log(f"keeping the weights of step {kept} ({hooks.best_key} {best['score']:.3f})")
        report()
        export_weights(
            model,
            result,
            {
                "model": cfg.recipe,
                "recipe": cfg.recipe,
                "init": cfg.init or "",
                "data": hooks.data_description
                or ", ".join(cfg.data) + f" ({len(paths)} images, {n_val} held out)",
                "steps": step,
                "kept_step": kept,
                "cancelled": cancelled,
                "batch_size": cfg.batch_size * world,
                "crop": cfg.crop,
                "hardware": f"{world} x {_hardware(device)}",
                "wall_time_s": round(wall, 1),
                "metrics": metrics,
                "train_config": asdict(cfg),
            },
        )
        scores = _rounded(metrics) if metrics else f"no validation ({no_val or 'no metrics'})"
        steps = f"{step} step{'' if step == 1 else 's'}"
        log(f"exported {result} after {steps} ({wall / 60:.1f} min): {scores}")
    if distributed:
        dist.barrier()
    return result
