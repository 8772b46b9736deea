"""The same 8 evaluation images before and after the colour work of issue 15.

The images are every 25th of the sorted evaluation folder (not picked by how
they look). Protocol A1: resized to 256 x 256, the model sees the neutral-gray
version; the 10 hints are the protocol's (6 x 6 patches of the truth's mean ab,
seed 0). Columns:

1. the gray input;
2. *before*: tinct-base's former automatic default, the annealed mean at T = 1;
3. *after*: today's automatic default (the coherent decoder);
4. *after, 10 hints*: today's default with the protocol's 10 hints;
5. the ground truth.

Each tile is labelled with its PSNR (dB) and false-colour rate (%) so that the
picture and the numbers can be read together::

    python benchmarks/before_after.py --data ../shared/data/eval/bsds500_test \
        --out docs/images/before-after.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage.color import lab2rgb, rgb2lab

import tinct
from tinct.metrics import false_colour_rate, psnr
from tinct.training.datasets import find_images
from tinct.training.evaluate import make_hints

SIDE = 256
TILE = 200


def protocol_image(path: Path) -> np.ndarray:
    """``(256, 256, 3)`` uint8 RGB, resized bicubically as protocol A1 does."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BICUBIC))


def neutral_gray(rgb: np.ndarray) -> np.ndarray:
    """The image with its chroma removed (L kept), ``(H, W, 3)`` uint8."""
    lab = rgb2lab(rgb)
    lab[..., 1:] = 0.0
    return (np.clip(lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)


def labelled(rgb: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
    """The tile at ``TILE`` px, with PSNR and false-colour rate when ``truth`` is given."""
    im = Image.fromarray(rgb).resize((TILE, TILE), Image.Resampling.BICUBIC)
    if truth is not None:
        rate = false_colour_rate(rgb2lab(rgb)[..., 1:], rgb2lab(truth)[..., 1:])
        text = f"{psnr(rgb, truth):.1f} dB  {100 * rate:.0f}%"
        draw = ImageDraw.Draw(im)
        draw.rectangle((0, 0, 8 + 6 * len(text), 14), fill=(0, 0, 0))
        draw.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(im)


def hints_for(rgb: np.ndarray, n: int, seed: int) -> list[tinct.Hint]:
    """The protocol's ``n`` hints for one image, as :class:`tinct.Hint` patches."""
    hs = make_hints(rgb2lab(rgb), n, np.random.default_rng(seed))
    half = hs.size / 2.0
    return [
        tinct.Hint(
            float(r) + half - 0.5, float(c) + half - 0.5, ab=(float(a), float(b)), size=hs.size
        )
        for r, c, (a, b) in zip(hs.rows, hs.cols, hs.ab, strict=True)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="evaluation folder (bsds500_test)")
    ap.add_argument("--out", default="docs/images/before-after.jpg")
    ap.add_argument("--every", type=int, default=25, help="take every N-th sorted image")
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    paths = find_images(args.data)[:: args.every][: args.count]
    colorizer = tinct.Colorizer("tinct-base", device="cpu")
    rows = []
    for path in paths:
        truth = protocol_image(path)
        gray = neutral_gray(truth)
        before = np.asarray(colorizer.colorize(gray, decoder="annealed_mean", temperature=1.0))
        after = np.asarray(colorizer.colorize(gray))
        hinted = np.asarray(colorizer.colorize(gray, hints=hints_for(truth, 10, args.seed)))
        tiles = [labelled(gray, None)]
        tiles += [labelled(x[..., :3], truth) for x in (before, after, hinted)]
        tiles.append(labelled(truth, None))
        rows.append(np.concatenate(tiles, axis=1))
        print(path.name, *(f"{psnr(x[..., :3], truth):.2f}" for x in (gray, before, after, hinted)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(out, quality=88)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
