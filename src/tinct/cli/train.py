"""``tinct train``: train or fine-tune a registered recipe on folders of colour images."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    p = sub.add_parser(
        "train",
        help="train or fine-tune a model on colour images",
        description="Train a registered recipe (see `tinct models`) on folders of colour images. "
        "Runs are budgeted by --steps or --minutes, checkpoint every few minutes and resume "
        "with --resume; the result is a .safetensors file usable as `--model PATH`. "
        "Multi-process (DDP): torchrun --nproc-per-node N -m tinct train ...",
    )
    p.add_argument(
        "--recipe",
        default="tinct-base",
        help="registry name of the model to train (default: tinct-base)",
    )
    p.add_argument(
        "--data",
        nargs="+",
        default=[os.environ["TINCT_DATA"]] if os.environ.get("TINCT_DATA") else None,
        required=not os.environ.get("TINCT_DATA"),
        help="folders of colour images (default: $TINCT_DATA)",
    )
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.csv, weights)")
    p.add_argument("--init", help="start from this model name or weights file (fine-tuning)")
    budget = p.add_argument_group("budget (at least one)")
    budget.add_argument("--steps", type=int, default=0, help="number of optimiser steps")
    budget.add_argument("--minutes", type=float, default=0.0, help="wall-clock minutes")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--batch-size", type=int, default=16, help="images per step (default: 16)")
    p.add_argument(
        "--crop", type=int, default=128, help="training crop side in pixels (default: 128)"
    )
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 0.002)")
    p.add_argument(
        "--rebalance", type=float, default=0.5, help="class rebalancing, 0 = off (default: 0.5)"
    )
    p.add_argument(
        "--warmup", type=int, default=200, help="linear learning-rate warm-up steps (default: 200)"
    )
    p.add_argument(
        "--p-no-hints",
        type=float,
        default=0.3,
        help="share of images trained without hints (default: 0.3)",
    )
    p.add_argument(
        "--val-fraction", type=float, default=0.02, help="share of images held out (default: 0.02)"
    )
    p.add_argument(
        "--val-every", type=float, default=10.0, help="validation interval in minutes (default: 10)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument(
        "--threads", type=int, default=0, help="CPU threads (default: 0 = torch default)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--cache-dir", help="cache decoded images here (faster restarts)")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    """Usage errors of ``tinct train``, each naming its flag."""
    from tinct.cli._options import UsageError
    from tinct.datasets import find_images
    from tinct.models.registry import UnknownModelError, get_record, list_models

    if not args.steps and not args.minutes:
        raise UsageError("--steps", "give a budget with --steps N and/or --minutes M")
    for flag, value, ok, rule in (
        ("--steps", args.steps, args.steps >= 0, ">= 0"),
        ("--minutes", args.minutes, args.minutes >= 0, ">= 0"),
        ("--batch-size", args.batch_size, args.batch_size >= 1, ">= 1"),
        ("--crop", args.crop, args.crop >= 16, ">= 16"),
        ("--lr", args.lr, args.lr > 0, "> 0"),
        ("--rebalance", args.rebalance, 0 <= args.rebalance <= 1, "in [0, 1]"),
        ("--warmup", args.warmup, args.warmup >= 0, ">= 0"),
        ("--p-no-hints", args.p_no_hints, 0 <= args.p_no_hints <= 1, "in [0, 1]"),
        ("--val-fraction", args.val_fraction, 0 <= args.val_fraction < 1, "in [0, 1)"),
        ("--val-every", args.val_every, args.val_every > 0, "> 0"),
        ("--threads", args.threads, args.threads >= 0, ">= 0"),
    ):
        if not ok:
            raise UsageError(flag, f"must be {rule}, got {value}")
    try:
        record = get_record(args.recipe)
    except UnknownModelError as exc:
        raise UsageError("--recipe", str(exc)) from None
    if not record.config.trainable:
        names = ", ".join(r.name for r in list_models() if r.config.trainable)
        raise UsageError("--recipe", f"{record.name} is not trainable; trainable recipes: {names}")
    if args.init:
        from tinct.catalog import record_for

        try:
            record_for(args.init)
        except (UnknownModelError, FileNotFoundError, ValueError) as exc:
            raise UsageError("--init", str(exc)) from None
    try:
        find_images(args.data)
    except FileNotFoundError as exc:
        raise UsageError("--data", str(exc)) from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError("--out", f"{out} is a file, not a folder")


def run(args: argparse.Namespace) -> int:
    """Execute ``tinct train``."""
    from tinct.cli._options import RuntimeFailure
    from tinct.train import TrainConfig, train

    _check(args)
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeFailure(f"cannot create {args.out}: {exc.strerror}") from None
    cfg = TrainConfig(
        recipe=args.recipe,
        data=list(args.data),
        out=args.out,
        init=args.init,
        steps=args.steps,
        minutes=args.minutes,
        batch_size=args.batch_size,
        crop=args.crop,
        lr=args.lr,
        rebalance=args.rebalance,
        warmup=args.warmup,
        p_no_hints=args.p_no_hints,
        val_fraction=args.val_fraction,
        val_every_minutes=args.val_every,
        device=args.device,
        threads=args.threads,
        seed=args.seed,
        cache_dir=args.cache_dir,
    )
    train(cfg, resume=args.resume)
    return 0
