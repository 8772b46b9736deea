"""Training loop for every registered recipe: train, fine-tune, resume, export.

The loop is budgeted by steps or by wall-clock minutes: the learning rate
follows a cosine over whichever budget runs out first, so a run stopped by
its time limit still ends annealed. Checkpoints are written atomically every
few minutes and ``resume=True`` continues from the last one. Under
``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
DistributedDataParallel (gloo on CPU, NCCL on CUDA) and each process draws
from its own shard of the images.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from tinct.bins import encode_hard, gamut_bins
from tinct.training.datasets import Batch, BatchSampler, ImageBank, find_images, simulate_hints
from tinct.training.losses import hard_cross_entropy, regression_loss, soft_cross_entropy

__all__ = [
    "TrainConfig",
    "TrainHooks",
    "TrainProgress",
    "class_weights_from_bank",
    "export_checkpoint",
    "export_weights",
    "train",
]


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
    """How a caller that is not the command line drives :func:`train` (see :mod:`tinct.finetune`).

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


def class_weights_from_bank(
    bank: ImageBank, strength: float, *, samples: int = 512, seed: int = 0
) -> Tensor | None:
    """Rebalancing weights from the empirical 313-bin prior of the images.

    ``w = ((1 - 0.5) * p + 0.5 / Q) ** -strength``, normalised so the expected
    weight under the prior is 1 (reference §1.8 with ``alpha = strength``).

    Args:
        bank: Training images.
        strength: Exponent alpha (0 disables rebalancing).
        samples: Images used to estimate the prior.
        seed: Which images.

    Returns:
        ``(313,)`` weights or None when ``strength`` is 0.
    """
    if strength <= 0:
        return None
    from tinct.color import rgb_to_lab

    g = np.random.default_rng(seed)
    pick = g.choice(len(bank), size=min(samples, len(bank)), replace=False)
    centres = gamut_bins()
    counts = torch.zeros(313, dtype=torch.float64)
    for chunk in np.array_split(pick, max(1, len(pick) // 64)):
        rgb = torch.from_numpy(np.stack([bank.images[int(i)] for i in chunk]))
        rgb = rgb.permute(0, 3, 1, 2).float() / 255.0
        ab = torch.nn.functional.avg_pool2d(rgb_to_lab(rgb)[:, 1:], 4)
        counts += torch.bincount(encode_hard(ab, centres).flatten(), minlength=313).double()
    prior = counts / counts.sum()
    mix = 0.5 * prior + 0.5 / 313
    w = mix.pow(-strength)
    w = w / (prior * w).sum()
    return w.float()


#: Chrominance scale of each colour space (brings regression targets to about [-1, 1]).
CHROMA_SCALE = {"lab": 110.0, "luv": 100.0, "yuv": 0.6}


def _classification_loss(
    logits: Tensor, batch: Batch, config: Any, class_weights: Tensor | None
) -> Tensor:
    """Cross-entropy for the model's bin target (see ``ModelConfig.target``)."""
    from tinct import bins
    from tinct.color import lab_to_lch

    dev = logits.device
    if config.target == "gamut313":
        return soft_cross_entropy(
            logits, batch.ab, gamut_bins(device=dev), class_weights=class_weights, keep=batch.keep
        )
    if config.target == "grid529":
        return hard_cross_entropy(logits, batch.ab, bins.grid_bins(device=dev), keep=batch.keep)
    small = torch.nn.functional.adaptive_avg_pool2d(batch.ab, logits.shape[-2:])
    k = config.bins_per_channel
    lo, hi = config.channel_range
    keep = batch.keep[:, None, None]
    if config.target == "channel":
        centres = bins.uniform_bins(k, lo, hi, device=dev).expand(2, k)
        idx = bins.encode_hard_channels(small, centres)
        ce = sum(
            F.cross_entropy(logits[:, j * k : (j + 1) * k].float(), idx[:, j], reduction="none")
            for j in range(2)
        )
        return (ce * keep).mean()
    if config.target == "hue_chroma":
        lch = lab_to_lch(torch.cat((torch.zeros_like(small[:, :1]), small), 1))
        chroma, hue = lch[:, 1:2], lch[:, 2:3].remainder(2 * math.pi)
        hue_idx = bins.encode_hard_channels(
            hue, bins.hue_bins(k, device=dev)[None], period=2 * math.pi
        )
        chroma_idx = bins.encode_hard_channels(chroma, bins.chroma_bins(k, hi, device=dev)[None])
        hue_ce = F.cross_entropy(logits[:, :k].float(), hue_idx[:, 0], reduction="none")
        chroma_ce = F.cross_entropy(logits[:, k:].float(), chroma_idx[:, 0], reduction="none")
        # hue is undefined for gray pixels: weight it by chroma (Larsson et al.)
        hue_w = (chroma[:, 0] / 20.0).clamp(max=1.0)
        return ((hue_ce * hue_w + chroma_ce) * keep).mean()
    raise ValueError(f"no classification loss for target {config.target!r}")


def compute_losses(
    model: nn.Module, batch: Batch, centres: Tensor, class_weights: Tensor | None, cfg: TrainConfig
) -> dict[str, Tensor]:
    """Forward one batch and return the named loss terms (``"total"`` included).

    The recipe's ``ModelConfig.loss`` picks the terms: ``ce`` for the bin head
    (soft-encoded and rebalanced for the 313 gamut bins, hard for the others),
    ``l1`` / ``mse`` / ``huber`` for the regression head, weighted by
    ``cfg.regression_weight`` when both heads train together.
    """
    config = _config_of(model)
    out = model(batch.lum, batch.hint_ab, batch.hint_mask, batch.global_hint)
    loss = config.loss if config is not None else "ce+l1"
    parts = loss.split("+")
    terms: dict[str, Tensor] = {}
    if out.logits is not None and any(p.startswith("ce") or p.startswith("soft_ce") for p in parts):
        if config is None or config.target == "gamut313":
            terms["ce"] = soft_cross_entropy(
                out.logits, batch.ab, centres, class_weights=class_weights, keep=batch.keep
            )
        else:
            terms["ce"] = _classification_loss(out.logits, batch, config, class_weights)
    reg = [p for p in parts if p in ("l1", "mse", "huber")]
    if out.ab is not None and reg:
        scale = CHROMA_SCALE[config.color_space if config is not None else "lab"]
        weight = cfg.regression_weight if "ce" in terms else 1.0
        terms[reg[0]] = weight * regression_loss(
            out.ab, batch.ab, reg[0], scale=scale, keep=batch.keep
        )
    if not terms:
        raise ValueError(f"recipe loss {loss!r} matches none of the model's outputs")
    terms["total"] = sum(terms.values())  # type: ignore[assignment]
    return terms


def _config_of(model: nn.Module) -> Any:
    record = getattr(getattr(model, "module", model), "record", None)
    return None if record is None else record.config


def _can_validate(config: Any) -> bool:
    """Validation PSNR goes through Lab: defined for Lab models with 313 bins or regression."""
    return config is None or (
        config.color_space == "lab" and config.target in ("gamut313", "regression")
    )


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


@torch.no_grad()
def validate(
    model: nn.Module, bank: ImageBank, indices: list[int], device: torch.device, hints: int = 10
) -> dict[str, float]:
    """PSNR of automatic and hinted colorization on held-out images (256 px).

    Automatic uses the annealed mean (T = 0.38) of the logits when the model
    has them, else its regression output; hinted uses the regression output
    when present.
    """
    from tinct.color import lab_to_rgb, rgb_to_lab
    from tinct.decode import decode

    was_training = model.training
    model.eval()
    centres = gamut_bins(device=device)
    g = torch.Generator().manual_seed(1234)
    sums = {"psnr_auto": 0.0, f"psnr_{hints}hints": 0.0, "psnr_gray": 0.0}
    for start in range(0, len(indices), 16):
        chunk = indices[start : start + 16]
        rgb = torch.from_numpy(np.stack([bank.images[i] for i in chunk])).to(device)
        rgb = rgb.permute(0, 3, 1, 2).float() / 255.0
        lab = rgb_to_lab(rgb)
        lum, ab = lab[:, :1], lab[:, 1:]
        for key, n in (("psnr_auto", 0), (f"psnr_{hints}hints", hints), ("psnr_gray", -1)):
            if n < 0:
                pred = torch.zeros_like(ab)
            else:
                h_ab, h_mask = simulate_hints(ab, [n] * len(chunk), g, spread=0.25)
                out = model(lum, h_ab, h_mask, None)
                if n == 0 and out.logits is not None:
                    pred = decode(out.logits, centres, "annealed_mean", temperature=0.38)
                else:
                    pred = out.ab if out.ab is not None else decode(out.logits, centres, "mean")
                pred = torch.nn.functional.interpolate(
                    pred, size=ab.shape[-2:], mode="bilinear", align_corners=False
                )
            out_rgb = (lab_to_rgb(torch.cat((lum, pred), 1)) * 255).round()
            mse = (out_rgb - (rgb * 255).round()).pow(2).flatten(1).mean(1)
            sums[key] += float((10 * torch.log10(255.0**2 / mse.clamp_min(1e-10))).sum())
    model.train(was_training)
    return {k: v / len(indices) for k, v in sums.items()}


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def export_weights(model: nn.Module, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write the model's weights as safetensors with JSON-able metadata.

    Args:
        model: The trained network (DDP wrappers are unwrapped).
        path: Output ``.safetensors`` file.
        metadata: Recipe, data, steps, hardware, time, metrics...

    Returns:
        The written path.
    """
    from tinct.models.weights import save_weights

    model = getattr(model, "module", model)
    return save_weights(model, Path(path), metadata)


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so a killed run writes its checkpoint first."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def _is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


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
        p_no_hints=cfg.p_no_hints,
        seed=cfg.seed * 1000 + rank,
        indices=train_idx,
        device=device,
        color_space=config.color_space if config is not None else "lab",
    )
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    centres = gamut_bins(device=device)
    class_w = class_weights_from_bank(bank, cfg.rebalance)
    class_w = None if class_w is None else class_w.to(device)
    step, elapsed_before = 0, 0.0
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sampler.generator.set_state(state["generator"])
        step, elapsed_before = int(state["step"]), float(state["elapsed"])
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
    best: dict[str, Any] = {"score": None, "step": None, "state": None, "metrics": {}}

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
        log(f"step {step} val {json.dumps({k: round(v, 3) for k, v in metrics.items()})}")
    report()
    cancelled = False

    def save_checkpoint() -> None:
        if not _is_main():
            return
        tmp = ckpt.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "generator": sampler.generator.get_state(),
                "step": step,
                "elapsed": elapsed_before + time.monotonic() - start,
                "config": json.dumps(asdict(cfg)),
            },
            tmp,
        )
        tmp.replace(ckpt)

    _stop_on_sigterm()
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
                val_str = json.dumps({k: round(v, 3) for k, v in metrics.items()})
                last_val = now
                log(f"step {step} val {val_str}")
            if writer and (step % 25 == 0 or val_str):
                writer.writerow(
                    [
                        step,
                        f"{(elapsed_before + now - start) / 60:.2f}",
                        f"{opt.param_groups[0]['lr']:.2e}",
                        f"{running['total']:.4f}",
                        f"{running.get('ce', 0):.4f}",
                        f"{running.get('l1', 0):.4f}",
                        val_str,
                    ]
                )
                csv_f.flush()  # type: ignore[union-attr]
            if step % 100 == 0 and _is_main():
                log(
                    f"step {step} {(elapsed_before + now - start) / 60:.1f} min "
                    f"loss {running['total']:.4f} lr {opt.param_groups[0]['lr']:.2e}"
                )
            if now - last_ckpt > cfg.checkpoint_minutes * 60:
                save_checkpoint()
                last_ckpt = now
            if cfg.snapshot_minutes and now - last_snap > cfg.snapshot_minutes * 60 and _is_main():
                meta = {"model": cfg.recipe, "steps": step, "train_config": asdict(cfg)}
                (out / "snapshots").mkdir(exist_ok=True)
                export_weights(model, out / "snapshots" / f"step_{step:06d}.safetensors", meta)
                last_snap = now
            report()
    finally:
        save_checkpoint()
        if csv_f:
            csv_f.close()
    wall = elapsed_before + time.monotonic() - start
    result = out / f"{cfg.recipe}.safetensors"
    if _is_main():
        if can_validate:
            metrics = run_validation()
            keep_if_best(metrics)
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
        log(f"exported {result} after {step} steps ({wall / 60:.1f} min): {metrics}")
    if distributed:
        dist.barrier()
    return result


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
