"""Pick a model's default temperature / decoder on images held out from its training run.

The images are the validation split of the training run (``--val-fraction`` of
`tinct train`, seed 0), so the evaluation set (BSDS500 test) is never used for tuning.

    python scripts/tune_defaults.py --weights runs/tinct-base/tinct-base.safetensors \
        --train-data ../shared/data/train --out runs/tune
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinct.engine.options import ColorizeOptions
from tinct.training.config import split_indices
from tinct.training.datasets import find_images
from tinct.training.evaluate import EvalConfig, evaluate


def heldout_dir(train_data: str, out: Path, fraction: float, seed: int) -> Path:
    """Symlink the run's held-out images (same rule as tinct.training.train) into ``out``."""
    paths = find_images(train_data)
    held, _ = split_indices(len(paths), fraction, seed)
    out.mkdir(parents=True, exist_ok=True)
    for i in held:
        p = paths[i]
        dst = out / f"{p.parent.name}__{p.name}"
        if not dst.exists():
            dst.symlink_to(p.resolve())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--train-data", required=True)
    ap.add_argument("--out", default="runs/tune")
    ap.add_argument("--val-fraction", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperatures", default="0.2,0.3,0.38,0.5,0.7,1.0")
    ap.add_argument("--decoders", default="annealed_mean,ab")
    ap.add_argument("--hints", default="0,10")
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    data = heldout_dir(args.train_data, out / "heldout", args.val_fraction, args.seed)
    hints = [int(h) for h in args.hints.split(",")]
    rows = []
    for decoder in args.decoders.split(","):
        temps = (
            [float(t) for t in args.temperatures.split(",")]
            if decoder == "annealed_mean"
            else [None]
        )
        for t in temps:
            res = evaluate(
                EvalConfig(
                    models=["gray", args.weights] if not rows else [args.weights],
                    data=[str(data)],
                    hints=hints,
                    out=str(out / f"{decoder}-{t}"),
                    limit=args.limit,
                    full_res=False,
                    options=ColorizeOptions(decoder=decoder, temperature=t),
                    examples=0,
                ),
                log=lambda s: None,
            )
            for label, m in res.items():
                rows.append((decoder, t, label, m["psnr"], m["colourfulness"]))
                psnr, colour = m["psnr"], m["colourfulness"]
                print(f"{decoder:14s} T={t} {label:60s} psnr {psnr:.3f} colourfulness {colour:.3f}")


if __name__ == "__main__":
    main()
