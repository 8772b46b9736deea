"""The seeds' central comparisons at a small, equal budget (docs/evaluation.md).

* regression vs classification: Sun & Shen's YUV U-Net trained with MSE and with 20 bins per
  U/V channel, and Hwang & Zhou's CIELUV network with Huber regression and with 50 bins per
  U/V channel — same steps, batch, crops and data for each pair;
* MRF vs no MRF (Melas-Kyriazi & Han): the same classification model (``--mrf-model``,
  e.g. tinct-base) decoded by its mode with and without the edge-aware MRF.

    python scripts/seed_comparison.py --data ../shared/data/train --eval ../shared/data/eval \
        --steps 1500 --out runs/seeds
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinct.engine.options import ColorizeOptions
from tinct.training.config import TrainConfig
from tinct.training.evaluate import EvalConfig, evaluate
from tinct.training.train import train

PAIRS = ("sun-shen-regression", "sun-shen-classification", "hwang-zhou-regression",
         "hwang-zhou-classification")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="training images")
    ap.add_argument("--eval", required=True, help="evaluation images")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--mrf-model", help="classification model for the MRF comparison")
    ap.add_argument("--recipes", nargs="+", default=list(PAIRS))
    ap.add_argument("--limit", type=int, default=0, help="evaluate on the first N images")
    ap.add_argument("--out", default="runs/seeds")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    out = Path(args.out)
    weights = []
    for recipe in args.recipes:
        path = out / recipe / f"{recipe}.safetensors"
        if not path.exists():
            path = train(
                TrainConfig(
                    recipe=recipe,
                    data=[args.data],
                    out=str(out / recipe),
                    steps=args.steps,
                    batch_size=args.batch_size,
                    crop=args.crop,
                    p_no_hints=1.0,
                    val_fraction=0.0,
                    threads=args.threads,
                    cache_dir=args.cache_dir,
                )
            )
        weights.append(str(path))
    evaluate(
        EvalConfig(
            models=["gray", *weights],
            data=[args.eval],
            hints=[0],
            out=str(out / "report"),
            limit=args.limit,
            full_res=False,
        )
    )
    print((out / "report" / "report.md").read_text())
    if args.mrf_model:
        for weight in (0.0, 1.0, 3.0):
            evaluate(
                EvalConfig(
                    models=[args.mrf_model],
                    data=[args.eval],
                    hints=[0],
                    out=str(out / f"mrf-{weight}"),
                    limit=args.limit,
                    full_res=False,
                    options=ColorizeOptions(decoder="mode", mrf_weight=weight),
                )
            )
            print(f"MRF weight {weight}:", (out / f"mrf-{weight}" / "report.md").read_text())


if __name__ == "__main__":
    main()
