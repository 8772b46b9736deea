"""How much colour can be guessed from gray levels alone, per domain folder.

A context-free baseline for the domain models: on the training split of a folder
(:func:`tinct.datasets.split_by_source`) it learns the mean CIELAB ``(a, b)`` per
luminance level (40 levels), then paints the held-out tiles with it, at full and
half strength, under protocol A1 (256 x 256, PSNR on RGB uint8). A trained model
that cannot beat this has learnt nothing a lookup table would not::

    python benchmarks/luminance_baseline.py --domain ../shared/data/domain
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

from tinct.metrics import psnr
from tinct.training.datasets import find_images, split_by_source

FOLDERS = (
    "histology/monuseg_multiorgan",
    "histology/glioma_gbm_tcga",
    "astronomy/jwst_tiles",
    "astronomy/hubble_top100_128px",
)
LEVELS = 40
SIDE = 256


def _lab(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        rgb = im.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    return rgb2lab(np.asarray(rgb))


def _level(lab: np.ndarray) -> np.ndarray:
    return np.clip((lab[..., 0] / 100.0 * LEVELS).astype(int), 0, LEVELS - 1)


def _rgb(lab: np.ndarray) -> np.ndarray:
    return (np.clip(lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)


def fit(paths: list[Path]) -> np.ndarray:
    """``(LEVELS, 2)`` mean ab per luminance level over ``paths``."""
    total = np.zeros((LEVELS, 2))
    count = np.zeros(LEVELS)
    for p in paths:
        lab = _lab(p)
        k = _level(lab).ravel()
        for c in range(2):
            total[:, c] += np.bincount(k, lab[..., c + 1].ravel(), LEVELS)
        count += np.bincount(k, minlength=LEVELS)
    return total / np.maximum(count, 1)[:, None]


def score(paths: list[Path], table: np.ndarray, strength: float) -> float:
    """Mean PSNR (dB) of the table's colour times ``strength`` on ``paths``."""
    out = []
    for p in paths:
        lab = _lab(p)
        truth = _rgb(lab)
        pred = lab.copy()
        pred[..., 1:] = table[_level(lab)] * strength
        out.append(psnr(_rgb(pred), truth))
    return float(np.mean(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domain", required=True, help="shared/data/domain")
    ap.add_argument("--folders", nargs="+", default=list(FOLDERS))
    args = ap.parse_args()
    print("| held-out folder | tiles | gray | table x 1 | table x 0.5 |")
    print("|---|---:|---:|---:|---:|")
    for folder in args.folders:
        train, held = split_by_source(find_images(Path(args.domain) / folder))
        table = fit(train)
        gray, full, half = (score(held, table, s) for s in (0.0, 1.0, 0.5))
        print(f"| {folder} | {len(held)} | {gray:.2f} | {full:.2f} | {half:.2f} |")


if __name__ == "__main__":
    main()
