"""Fine-tuning demonstration: tinct-base -> H&E histology, before/after on held-out tiles.

Splits the histology tiles by *source slide* (tiles of one slide never straddle the
split), fine-tunes from the shipped tinct-base weights on the training part, and evaluates
both models on the held-out part with protocol A1 (0 and 10 hints).

    python scripts/finetune_histology.py --data ../shared/data/domain/histology \
        --minutes 10 --out runs/histology

Writes <out>/split/{train,heldout} (symlinks), <out>/run (the fine-tuning run) and
<out>/report (the evaluation report).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from tinct.training.config import TrainConfig
from tinct.training.datasets import find_images
from tinct.training.evaluate import EvalConfig, evaluate
from tinct.training.train import train


def slide_of(path: Path) -> str:
    """Source-slide id of a tile: the file stem without its ``_x<left>_y<top>`` suffix."""
    stem = re.sub(r"_x\d+_y\d+$", "", path.stem)
    return f"{path.parent.name}/{stem}"


def split(data: Path, out: Path, heldout_every: int) -> tuple[Path, Path]:
    """Deterministic split by slide: every ``heldout_every``-th slide (sorted) is held out."""
    slides = sorted({slide_of(p) for p in find_images(data)})
    held = set(slides[::heldout_every])
    dirs = out / "train", out / "heldout"
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    for p in find_images(data):
        dst = dirs[slide_of(p) in held] / f"{p.parent.name}__{p.name}"
        if not dst.exists():
            dst.symlink_to(p.resolve())
    return dirs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="histology folder (domain/histology)")
    ap.add_argument("--out", default="runs/histology")
    ap.add_argument("--init", default="tinct-base", help="model to fine-tune")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--heldout-every", type=int, default=5, help="hold out every k-th slide")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    out = Path(args.out)
    train_dir, held_dir = split(Path(args.data), out / "split", args.heldout_every)
    n_train, n_held = len(find_images(train_dir)), len(find_images(held_dir))
    print(f"train tiles: {n_train}, held-out tiles: {n_held}")
    weights = train(
        TrainConfig(
            recipe="tinct-base",
            init=args.init,
            data=[str(train_dir)],
            out=str(out / "run"),
            minutes=args.minutes,
            lr=args.lr,
            warmup=20,
            val_fraction=0.0,
            threads=args.threads,
        )
    )
    evaluate(
        EvalConfig(
            models=["gray", args.init, str(weights)],
            data=[str(held_dir)],
            hints=[0, 10],
            out=str(out / "report"),
            full_res=False,
        )
    )
    print((out / "report" / "report.md").read_text())


if __name__ == "__main__":
    main()
