"""Levin et al. colorization vs the gray baseline under protocol A1 (reference §4).

Protocol A1: every image squashed to 256 x 256 (PIL bicubic), L from that
image (skimage rgb2lab), N random 6 x 6 hint patches whose top-left corner is
drawn from Normal(centre, size / 4) (clipped), each carrying the mean
ground-truth ab of its patch (mask = 1 on the patch); the result (L + ab ->
sRGB, uint8) is scored by PSNR against the 256 x 256 RGB image (peak 255,
MSE over the whole image), averaged over images.

Usage::

    python benchmarks/levin_eval.py [--data DIR] [--hints 10 50] [--limit N] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

from tinct.levin import levin_colorize

DATA = Path("/work/shared/data/eval/bsds500_test")
SIZE = 256
PATCH = 6


def random_hints(ab: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = ab.shape[:2]
    hint_ab = np.zeros_like(ab)
    mask = np.zeros((h, w), dtype=bool)
    for _ in range(n):
        y = int(np.clip(rng.normal((h - PATCH + 1) / 2, (h - PATCH + 1) / 4), 0, h - PATCH))
        x = int(np.clip(rng.normal((w - PATCH + 1) / 2, (w - PATCH + 1) / 4), 0, w - PATCH))
        hint_ab[y : y + PATCH, x : x + PATCH] = ab[y : y + PATCH, x : x + PATCH].mean((0, 1))
        mask[y : y + PATCH, x : x + PATCH] = True
    return hint_ab, mask


def psnr(rgb_u8: np.ndarray, lum: np.ndarray, ab: np.ndarray) -> float:
    lab = np.concatenate((lum[..., None], ab), axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # out-of-gamut Z clipping
        out = np.clip(np.round(lab2rgb(lab) * 255), 0, 255)
    mse = np.mean((out - rgb_u8.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--hints", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sigma-scale", type=float, default=0.1)
    args = parser.parse_args()

    files = sorted(p for p in args.data.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    files = files[: args.limit]
    gray, levin = [], {n: [] for n in args.hints}
    seconds, cpu = [], []
    for i, path in enumerate(files):
        rgb = np.asarray(
            Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.Resampling.BICUBIC)
        )
        lab = rgb2lab(rgb)
        lum, ab = lab[..., 0], lab[..., 1:]
        gray.append(psnr(rgb, lum, np.zeros_like(ab)))
        for n in args.hints:
            rng = np.random.default_rng([args.seed, i, n])
            hint_ab, mask = random_hints(ab, n, rng)
            t, c = time.perf_counter(), time.process_time()
            pred = levin_colorize(lum, hint_ab, mask, sigma_scale=args.sigma_scale)
            seconds.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            levin[n].append(psnr(rgb, lum, pred))
    print(
        f"images: {len(files)} ({args.data}), {SIZE}x{SIZE}, {PATCH}x{PATCH} hint patches, "
        f"sigma_scale {args.sigma_scale}"
    )
    print(f"gray (ab = 0):        {np.mean(gray):.2f} dB")
    for n in args.hints:
        sem = np.std(levin[n]) / np.sqrt(len(levin[n]))
        print(
            f"levin, {n:3d} hints:     {np.mean(levin[n]):.2f} dB (s.e.m. {sem:.2f}; "
            f"{np.mean(levin[n]) - np.mean(gray):+.2f} dB vs gray)"
        )
    print(
        f"levin solve time: wall mean {np.mean(seconds):.3f} s (max {np.max(seconds):.3f} s), "
        f"CPU mean {np.mean(cpu):.3f} s"
    )


if __name__ == "__main__":
    main()
