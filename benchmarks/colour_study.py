"""Decoding study for issue 15: which decoder invents the least colour.

Runs tinct-base once per image (protocol A1: 256 x 256, the model sees gray,
``N`` random 6 x 6 ground-truth hints) and scores many decoders on the
cached network output: PSNR, colourfulness (ratio of set means, Hasler &
Suesstrunk) and the false-colour rate (:func:`tinct.metrics.false_colour_rate`).

Tune on held-out *training* images only:

    python benchmarks/colour_study.py --heldout ../shared/data/train --limit 120
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def heldout_paths(train: str, fraction: float = 0.02, seed: int = 0) -> list[Path]:
    from tinct.training.config import split_indices
    from tinct.training.datasets import find_images

    paths = find_images(train)
    held, _ = split_indices(len(paths), fraction, seed)
    return [paths[i] for i in held]


def load(paths, side=256):
    from PIL import Image
    from skimage.color import rgb2lab

    ims = []
    for p in paths:
        im = Image.open(p).convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
        rgb = np.asarray(im)
        ims.append((rgb, rgb2lab(rgb)))
    return ims


def score(preds, truths):
    from skimage.color import rgb2lab

    from tinct import metrics

    ps, fc, cp, ct = [], [], [], []
    for pred, (rgb, lab) in zip(preds, truths, strict=True):
        ps.append(metrics.psnr(pred, rgb))
        fc.append(metrics.false_colour_rate(rgb2lab(pred)[..., 1:], lab[..., 1:]))
        cp.append(metrics.colourfulness(pred))
        ct.append(metrics.colourfulness(rgb))
    return {
        "psnr": float(np.mean(ps)),
        "colourful": float(np.mean(cp) / np.mean(ct)),
        "false": float(np.mean(fc)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heldout", help="training folder; its held-out split is used")
    ap.add_argument("--data", help="a folder of images instead")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--hints", type=int, default=0)
    ap.add_argument("--model", default="tinct-base")
    ap.add_argument("--decoders", default="mean")
    ap.add_argument("--temps", default="1.0")
    args = ap.parse_args()

    import study_decoders  # noqa: F401  registers experimental decoders

    import tinct
    from tinct.training.evaluate import make_hints

    if args.heldout:
        paths = heldout_paths(args.heldout)
    else:
        from tinct.training.datasets import find_images

        paths = find_images(args.data)
    paths = paths[: args.limit]
    truths = load(paths)
    hint_sets = [
        make_hints(lab, args.hints, np.random.default_rng([0, i, args.hints]))
        for i, (_, lab) in enumerate(truths)
    ]
    c = tinct.Colorizer(args.model)
    combos = [(d, float(t)) for d in args.decoders.split(",") for t in args.temps.split(",")]
    preds = {k: [] for k in combos}
    t0 = time.time()
    from tinct.engine.hints import Hint

    for (rgb, _), hs in zip(truths, hint_sets, strict=True):
        half = hs.size / 2 - 0.5
        hints = [
            Hint(float(r) + half, float(cc) + half, ab=(float(a), float(b)), size=hs.size)
            for r, cc, (a, b) in zip(hs.rows, hs.cols, hs.ab, strict=True)
        ]
        for d, t in combos:
            out = c.colorize(rgb, hints=hints, decoder=d, temperature=t)
            preds[(d, t)].append(np.asarray(out)[..., :3])
    print(f"# {len(paths)} images, {args.hints} hints, {time.time() - t0:.0f} s")
    for k, v in preds.items():
        s = score(v, truths)
        print(
            f"{k[0]:>24} T={k[1]:<5} psnr {s['psnr']:.3f}  colourful {s['colourful']:.3f}"
            f"  false {s['false']:.4f}"
        )


if __name__ == "__main__":
    main()
