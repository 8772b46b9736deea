"""``tinct evaluate``: the hint-sweep protocol over models and baselines."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from tinct.cli._options import (
    UsageError,
    add_option_arguments,
    check_device,
    check_model,
    ensure_weights,
    make_folder,
    options_from_args,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    p = sub.add_parser(
        "evaluate",
        help="measure models against baselines (PSNR vs number of hints)",
        description="Protocol A1 of docs/evaluation.md: images resized to 256x256, random 6x6 "
        "ground-truth hints, RGB PSNR; also full-resolution PSNR, AuC, colourfulness and "
        "saturation difference. Writes report.md, results.csv, psnr_vs_hints.png and "
        "examples.png to --out.",
    )
    p.add_argument(
        "--models",
        nargs="+",
        default=["gray", "levin", "tinct-base"],
        help="baselines (gray, levin), registry names or weights files "
        "(default: gray levin tinct-base)",
    )
    p.add_argument(
        "--data",
        nargs="+",
        default=[os.environ["TINCT_EVAL_DATA"]] if os.environ.get("TINCT_EVAL_DATA") else None,
        required=not os.environ.get("TINCT_EVAL_DATA"),
        help="folders of colour images (default: $TINCT_EVAL_DATA)",
    )
    p.add_argument(
        "--hints",
        default="0,1,10,100",
        help="comma-separated hint counts, each at most 65536 (the 256 x 256 pixels) "
        "(default: 0,1,10,100)",
    )
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument(
        "--limit", type=int, default=None, help="only the first N images, N >= 1 (default: all)"
    )
    p.add_argument("--seed", type=int, default=0, help="hint seed, >= 0 (default: 0)")
    p.add_argument("--no-full-res", action="store_true", help="skip full-resolution PSNR")
    add_option_arguments(
        p, exclude=("model", "temporal"), title="colorization options (every model)"
    )
    p.set_defaults(func=run)


def _hint_counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(
            "--hints", f"must be comma-separated whole numbers, got {text!r}"
        ) from None
    if not counts or min(counts) < 0:
        raise UsageError("--hints", f"must be hint counts >= 0, got {text!r}")
    from tinct.training.evaluate import SIDE

    if max(counts) > SIDE * SIDE:
        raise UsageError(
            "--hints", f"at most {SIDE * SIDE} hints (the {SIDE} x {SIDE} pixels of the "
            f"protocol's images), got {max(counts)}",
        )  # fmt: skip
    return counts


def run(args: argparse.Namespace) -> int:
    """Execute ``tinct evaluate``."""
    from tinct.training.datasets import find_images
    from tinct.training.evaluate import BASELINES, EvalConfig, evaluate

    hints = _hint_counts(args.hints)
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit", f"must be >= 1 (leave it out for all images), got {args.limit}")
    if args.seed < 0:
        raise UsageError("--seed", f"must be >= 0, got {args.seed}")
    options = options_from_args(args, device=args.device or "cpu")
    records = [_check_model(options.replace(model=name)) for name in args.models
               if name not in BASELINES]  # fmt: skip
    check_device(options.device)
    try:
        find_images(args.data)
    except FileNotFoundError as exc:
        raise UsageError("--data", str(exc)) from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError("--out", f"{out} is a file, not a folder")
    _check_out_apart(out, args.data)
    make_folder(out, "--out")
    for record in records:
        ensure_weights(record)
    cfg = EvalConfig(
        models=args.models,
        data=list(args.data),
        hints=hints,
        out=str(out),
        limit=args.limit or 0,
        seed=args.seed,
        full_res=not args.no_full_res,
        device=options.device,
        options=options,
    )
    evaluate(cfg)
    print(f"report: {cfg.out}/report.md")
    return 0


def _check_out_apart(out: Path, data: list[str]) -> None:
    """The report may not go into a --data folder: its PNGs would be read as data next time.

    Raises:
        UsageError: ``out`` is a ``--data`` folder or inside one.
    """
    where = out.resolve()
    for folder in data:
        root = Path(folder).resolve()
        if root.is_dir() and (where == root or root in where.parents):
            raise UsageError(
                "--out", f"{out} is inside --data {folder}: the report's images (examples.png, "
                "psnr_vs_hints.png) would be read as data by the next run; choose a folder "
                "outside it",
            )  # fmt: skip


def _check_model(options: Any) -> Any:
    """``check_model`` for ``--models``; an unknown name's message also lists the baselines."""
    try:
        return check_model(options, model_flag="--models")
    except UsageError as exc:
        if not exc.message.startswith("unknown model"):
            raise
        from tinct.training.evaluate import BASELINES

        names = ", ".join(BASELINES)
        raise UsageError(exc.flag, f"{exc.message}; baselines: {names}") from None
