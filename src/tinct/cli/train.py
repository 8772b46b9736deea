"""``tinct train``: train or fine-tune a registered recipe on folders of colour images."""

from __future__ import annotations

import argparse
import os


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
    p.add_argument("--recipe", default="tinct-base", help="registry name of the model to train")
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
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--crop", type=int, default=128, help="training crop side (pixels)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--rebalance", type=float, default=0.5, help="class rebalancing, 0 = off")
    p.add_argument("--warmup", type=int, default=200, help="linear learning-rate warm-up steps")
    p.add_argument(
        "--p-no-hints", type=float, default=0.3, help="share of images trained without hints"
    )
    p.add_argument("--val-fraction", type=float, default=0.02, help="share of images held out")
    p.add_argument("--val-every", type=float, default=10.0, help="validation interval (minutes)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", help="cache decoded images here (faster restarts)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``tinct train``."""
    from tinct.train import TrainConfig, train

    if not args.steps and not args.minutes:
        print("tinct train: give a budget with --steps N and/or --minutes M")
        return 2
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
