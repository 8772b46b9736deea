"""``tinct evaluate``: the hint-sweep protocol over models and baselines."""

from __future__ import annotations

import argparse
import os


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
        help="baselines (gray, levin), registry names or weights files",
    )
    p.add_argument(
        "--data",
        nargs="+",
        default=[os.environ["TINCT_EVAL_DATA"]] if os.environ.get("TINCT_EVAL_DATA") else None,
        required=not os.environ.get("TINCT_EVAL_DATA"),
        help="folders of colour images (default: $TINCT_EVAL_DATA)",
    )
    p.add_argument("--hints", default="0,1,10,100", help="comma-separated hint counts")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--limit", type=int, default=0, help="only the first N images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-full-res", action="store_true", help="skip full-resolution PSNR")
    p.add_argument("--device", default="cpu")
    p.add_argument("--decoder", help="decoder override for every model")
    p.add_argument("--temperature", type=float, help="temperature override")
    p.add_argument("--mrf-weight", type=float, help="MRF weight override")
    p.add_argument("--propagation", type=float, help="hint-propagation override (0 = off)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``tinct evaluate``."""
    from tinct.evaluate import EvalConfig, evaluate

    try:
        hints = [int(x) for x in args.hints.split(",") if x.strip()]
    except ValueError:
        print(f"tinct evaluate: --hints must be integers, got {args.hints!r}")
        return 2
    cfg = EvalConfig(
        models=args.models,
        data=list(args.data),
        hints=hints,
        out=args.out,
        limit=args.limit,
        seed=args.seed,
        full_res=not args.no_full_res,
        device=args.device,
        decoder=args.decoder,
        temperature=args.temperature,
        mrf_weight=args.mrf_weight,
        propagation=args.propagation,
    )
    evaluate(cfg)
    print(f"report: {cfg.out}/report.md")
    return 0
