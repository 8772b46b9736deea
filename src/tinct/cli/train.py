"""``tinct train``: train or fine-tune a registered recipe on folders of colour images.

With ``--name NAME`` the run is a fine-tune through :func:`tinct.finetune` (the
napari Train widget's code path: examples held out by source, palette matching,
the best weights kept) and the result is registered as the user model NAME.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

#: Flags whose default is the from-scratch recipe's; with ``--name`` an unchanged one takes
#: :func:`tinct.finetune`'s default instead (argument name -> finetune keyword).
_FINETUNE_KNOBS = {"lr": "lr", "warmup": "warmup", "batch_size": "batch_size", "crop": "crop"}
_DEFAULTS: dict[str, Any] = {}
#: Largest --crop and --batch-size, and the most crop pixels one step may hold
#: (--batch-size x --crop^2): bounded before any memory is spent.
MAX_CROP = 1024
MAX_BATCH = 1024
MAX_BATCH_PIXELS = 2**25


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    p = sub.add_parser(
        "train",
        help="train or fine-tune a model on colour images",
        description="Train a registered recipe (see `tinct models`) on folders of colour images. "
        "Runs are budgeted by --steps or --minutes, checkpoint every few minutes and resume "
        "with --resume; the result is a .safetensors file usable as `--model PATH`. "
        "Multi-process (DDP): torchrun --nproc-per-node N -m tinct train ... "
        "With --name NAME the run fine-tunes --init (default: --recipe) on the --data examples "
        "and registers the result as the user model NAME (usable as `--model NAME` everywhere, "
        "listed by `tinct models`); Ctrl-C then stops it and keeps the best weights so far.",
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
    p.add_argument(
        "--out", help="run folder (checkpoints, log.csv, weights); required unless --name"
    )
    p.add_argument(
        "--name",
        help="fine-tune and register the result as this user model (a new name: lowercase "
        "letters, digits, '.', '_', '-')",
    )
    p.add_argument(
        "--replace", action="store_true", help="with --name: replace a user model of that name"
    )
    p.add_argument("--init", help="start from this model name or weights file (fine-tuning)")
    budget = p.add_argument_group("budget (at least one)")
    budget.add_argument("--steps", type=int, default=0, help="number of optimiser steps")
    budget.add_argument("--minutes", type=float, default=0.0, help="wall-clock minutes")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help=f"images per step, 1 to {MAX_BATCH}, at most {MAX_BATCH_PIXELS:,} crop pixels a "
        "step (default: 16)",
    )
    p.add_argument(
        "--crop",
        type=int,
        default=128,
        help=f"training crop side in pixels, 16 to {MAX_CROP} (default: 128)",
    )
    p.add_argument(
        "--lr", type=float, default=2e-3,
        help="peak learning rate (default: 0.002; with --name: 0.0003)",
    )  # fmt: skip
    p.add_argument(
        "--rebalance", type=float, default=0.5, help="class rebalancing, 0 = off (default: 0.5)"
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="linear learning-rate warm-up steps (default: 200; with --name: 20)",
    )
    p.add_argument(
        "--p-no-hints",
        type=float,
        default=0.3,
        help="share of images trained without hints (default: 0.3)",
    )
    p.add_argument(
        "--regression-weight",
        type=float,
        default=10.0,
        help="weight of the L1 term on ab beside the cross-entropy (default: 10)",
    )
    p.add_argument(
        "--snapshot-every",
        type=float,
        default=0.0,
        help="export <out>/snapshots/step_N.safetensors every this many minutes, to choose "
        "a checkpoint on held-out protocol metrics afterwards (default: 0 = never)",
    )
    p.add_argument(
        "--val-fraction", type=float, default=0.02, help="share of images held out (default: 0.02)"
    )
    p.add_argument(
        "--val-every", type=float, default=10.0, help="validation interval in minutes (default: 10)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads, at most 4 x the cores (default: 0 = torch default)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--cache-dir", help="cache decoded images here (faster restarts)")
    p.set_defaults(func=run)
    _DEFAULTS.update({k: p.get_default(k) for k in _FINETUNE_KNOBS})


def _check_name(args: argparse.Namespace) -> None:
    """Usage errors of a ``--name`` fine-tune."""
    from tinct.cli._options import UsageError
    from tinct.models import user_store
    from tinct.models.catalog import availability, record_for

    try:
        key = user_store.check_new_name(args.name, replace=args.replace)
    except ValueError as exc:
        raise UsageError("--name", str(exc)) from None
    if key != args.name:  # stored lowercase (looked up in any case): said, not silent
        print(
            f"tinct train: --name {args.name!r} registers the model as {key!r} "
            "(user-model names are lowercase)",
            file=sys.stderr,
        )
    for flag, bad in (("--resume", args.resume), ("--cache-dir", args.cache_dir)):
        if bad:
            raise UsageError(flag, "does not apply with --name (a fine-tune starts afresh)")
    if args.out:  # it was ignored: the fine-tune wrote nothing there
        raise UsageError(
            "--out", "does not apply with --name (the model goes to the user models, listed "
            "by tinct models); leave out --name to train into a run folder",
        )  # fmt: skip
    base, flag = (args.init, "--init") if args.init else (args.recipe, "--recipe")
    record = record_for(base)
    if not Path(base).is_file() and not availability(record)[1]:
        raise UsageError(flag, f"{base} has no trained weights to fine-tune; give --init")


def _check_device(args: argparse.Namespace) -> None:
    """``--device``: an unknown name is a usage error, a missing GPU a runtime failure.

    Both are one line naming the flag, before any image is decoded (torch's own
    errors came only after, as ``AssertionError: Torch not compiled with CUDA``).
    """
    import re

    from tinct.cli._options import UsageError, check_device

    name = args.device.strip().lower()
    if name not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", name):
        raise UsageError("--device", f"must be auto, cpu, cuda or cuda:N, got {args.device!r}")
    check_device(name)
    args.device = name


def _check(args: argparse.Namespace) -> None:
    """Usage errors of ``tinct train``, each naming its flag."""
    from tinct.cli._options import UsageError, check_folder_path
    from tinct.models.registry import UnknownModelError, get_record, list_models
    from tinct.training.datasets import find_images

    if not args.steps and not args.minutes:
        raise UsageError("--steps", "give a budget with --steps N and/or --minutes M")
    for flag, given in (("--name", args.name), ("--out", args.out), ("--init", args.init),
                        ("--cache-dir", args.cache_dir)):  # fmt: skip
        if given is not None and not given.strip():  # '' was taken for "not given"
            raise UsageError(flag, "is empty; give a value or leave the flag out")
    if args.replace and not args.name:
        raise UsageError("--replace", "applies only with --name")
    if not args.out and not args.name:
        raise UsageError("--out", "give a run folder with --out DIR (or --name NAME)")
    for flag, value in (
        ("--minutes", args.minutes), ("--lr", args.lr), ("--rebalance", args.rebalance),
        ("--p-no-hints", args.p_no_hints), ("--regression-weight", args.regression_weight),
        ("--snapshot-every", args.snapshot_every), ("--val-fraction", args.val_fraction),
        ("--val-every", args.val_every),
    ):  # fmt: skip
        if not math.isfinite(value):  # inf (or 1e309) passed "> 0": --lr inf trained NaNs
            raise UsageError(flag, f"must be a finite number, got {value}")
    cores = os.cpu_count() or 1
    for flag, value, ok, rule in (
        ("--steps", args.steps, args.steps >= 0, ">= 0"),
        ("--minutes", args.minutes, args.minutes >= 0, ">= 0"),
        (
            "--batch-size",
            args.batch_size,
            1 <= args.batch_size <= MAX_BATCH,
            f"in [1, {MAX_BATCH}]",
        ),
        ("--crop", args.crop, 16 <= args.crop <= MAX_CROP, f"in [16, {MAX_CROP}]"),
        ("--lr", args.lr, args.lr > 0, "> 0"),
        ("--rebalance", args.rebalance, 0 <= args.rebalance <= 1, "in [0, 1]"),
        ("--warmup", args.warmup, args.warmup >= 0, ">= 0"),
        ("--p-no-hints", args.p_no_hints, 0 <= args.p_no_hints <= 1, "in [0, 1]"),
        ("--val-fraction", args.val_fraction, 0 <= args.val_fraction < 1, "in [0, 1)"),
        ("--val-every", args.val_every, args.val_every > 0, "> 0"),
        ("--regression-weight", args.regression_weight, args.regression_weight >= 0, ">= 0"),
        ("--snapshot-every", args.snapshot_every, args.snapshot_every >= 0, ">= 0"),
        ("--seed", args.seed, 0 <= args.seed < 2**32, "in [0, 2^32 - 1]"),
        ("--threads", args.threads, 0 <= args.threads <= 4 * cores, f"in [0, {4 * cores}]"),
    ):
        if not ok:
            raise UsageError(flag, f"must be {rule}, got {value}")
    _check_device(args)
    if args.batch_size * args.crop**2 > MAX_BATCH_PIXELS:
        raise UsageError(
            "--batch-size", f"{args.batch_size} crops of {args.crop}x{args.crop} are "
            f"{args.batch_size * args.crop**2:,} pixels a step, more than {MAX_BATCH_PIXELS:,}; "
            "lower --batch-size or --crop",
        )  # fmt: skip
    try:
        record = get_record(args.recipe)
    except UnknownModelError as exc:
        raise UsageError("--recipe", str(exc)) from None
    if not record.config.trainable:
        names = ", ".join(r.name for r in list_models() if r.config.trainable)
        raise UsageError("--recipe", f"{record.name} is not trainable; trainable recipes: {names}")
    if args.init:
        from tinct.models.catalog import record_for

        try:
            record_for(args.init)
        except (UnknownModelError, FileNotFoundError, ValueError) as exc:
            raise UsageError("--init", str(exc)) from None
    try:
        find_images(args.data)
    except FileNotFoundError as exc:
        raise UsageError("--data", str(exc)) from None
    if args.name:
        _check_name(args)
    if args.out:
        check_folder_path(args.out, "--out")
    if args.cache_dir:  # made after every image is decoded: a file there failed only then
        check_folder_path(args.cache_dir, "--cache-dir")


def _finetune(args: argparse.Namespace) -> int:
    """``tinct train --name``: fine-tune and register a user model (Ctrl-C keeps the best)."""
    import signal
    import threading

    from tinct.training.finetuning import finetune

    cancel = threading.Event()
    shown = {"best": None, "step": -1}

    def show(p: Any) -> None:
        if p.phase != "training":
            print(p.message, file=sys.stderr)
        elif p.best != shown["best"] or p.step - shown["step"] >= 25:
            print(p.message, file=sys.stderr)
            shown.update(best=p.best, step=p.step)

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("stopping: keeping the best weights so far (Ctrl-C again aborts)", file=sys.stderr)

    knobs = {
        kw: getattr(args, arg)
        for arg, kw in _FINETUNE_KNOBS.items()
        if getattr(args, arg) != _DEFAULTS.get(arg)
    }
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = finetune(
            folders=list(args.data),
            name=args.name,
            base=args.init or args.recipe,
            minutes=args.minutes,
            steps=args.steps,
            replace=args.replace,
            progress=show,
            cancel=cancel,
            device=args.device,
            threads=args.threads,
            seed=args.seed,
            **knobs,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    um = result.model
    print(f"registered user model {um.name} ({um.path}): {um.summary()}")
    print(f"use it with: tinct colorize --model {um.name} IMAGE")
    return 0


def run(args: argparse.Namespace) -> int:
    """Execute ``tinct train``."""
    from tinct.cli._options import make_folder
    from tinct.training.config import TrainConfig
    from tinct.training.train import train

    _check(args)
    if args.name:
        return _finetune(args)
    make_folder(args.out, "--out")
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
        regression_weight=args.regression_weight,
        snapshot_minutes=args.snapshot_every,
        val_fraction=args.val_fraction,
        val_every_minutes=args.val_every,
        device=args.device,
        threads=args.threads,
        seed=args.seed,
        cache_dir=args.cache_dir,
    )
    train(cfg, resume=args.resume)
    return 0
