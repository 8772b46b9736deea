"""Benchmark of temporal mode: flicker and PSNR on pan sequences, and video speed.

``python benchmarks/bench_temporal.py pan`` builds, from each bsds500_test image,
a 12-frame 256 x 256 sequence of a crop moving 8 px per frame along the image's
long side, with independent gray-level noise (sigma 3 of 255) added to each
frame, and colorizes it with tinct-base plane by plane (independent) and with
``temporal=True``. It reports

* **flicker**: the mean absolute CIELAB ab difference between consecutive
  output frames over their overlapping content, after aligning them by the known
  motion (8 px), averaged over frame pairs and sequences;
* **PSNR** of every frame against the true colour crop (RGB, peak 255), averaged;
* **hint carry**: a hint placed on frame 0 of each sequence at a coloured spot;
  the distance in ab to the hint colour of the same content on frame 11, with and
  without the hint.

``python benchmarks/bench_temporal.py video`` builds a 1920 x 1080, 300-frame
clip (a slow pan and zoom over a photo, with moving noise) with the bundled
ffmpeg and colorizes it with ``tinct colorize --temporal``'s code path
(:func:`tinct.engine.video.colorize_video`), reporting frames per second and the peak
resident memory of a fresh process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path("/work/shared/data/eval/bsds500_test")
FRAMES, SIZE, STEP, NOISE = 12, 256, 8, 3.0


def pan_sequence(
    rgb: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """``(gray (T, S, S) uint8, truth (T, S, S, 3) uint8, step (dy, dx))`` of a moving crop."""
    from skimage.color import lab2rgb, rgb2lab

    h, w = rgb.shape[:2]
    dy, dx = (0, STEP) if w >= h else (STEP, 0)
    y0 = (h - SIZE - dy * (FRAMES - 1)) // 2
    x0 = (w - SIZE - dx * (FRAMES - 1)) // 2
    truth = np.stack(
        [
            rgb[y0 + t * dy : y0 + t * dy + SIZE, x0 + t * dx : x0 + t * dx + SIZE]
            for t in range(FRAMES)
        ]
    )
    lum = rgb2lab(truth)[..., 0]
    gray = lab2rgb(np.stack((lum, np.zeros_like(lum), np.zeros_like(lum)), -1))[..., 0] * 255.0
    gray = gray + rng.normal(0.0, NOISE, gray.shape)
    return np.clip(gray + 0.5, 0, 255).astype(np.uint8), truth, (dy, dx)


def flicker(out: np.ndarray, step: tuple[int, int]) -> float:
    """Mean |ab(t+1) - ab(t)| over the content both frames show (motion-aligned)."""
    from skimage.color import rgb2lab

    ab = rgb2lab(out)[..., 1:]
    dy, dx = step
    a = ab[1:, : SIZE - dy, : SIZE - dx]  # frame t+1 at (y, x) shows frame t's (y + dy, x + dx)
    b = ab[:-1, dy:, dx:]
    return float(np.abs(a - b).mean())


def hint_spot(truth0: np.ndarray, step: tuple[int, int]) -> tuple[int, int]:
    """A saturated spot of frame 0 that stays inside the frame until frame 11."""
    from skimage.color import rgb2lab

    lab = rgb2lab(truth0)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    dy, dx = step
    m = 24
    lo_y, lo_x = m + dy * (FRAMES - 1), m + dx * (FRAMES - 1)
    region = chroma[lo_y : SIZE - m, lo_x : SIZE - m]
    from scipy.ndimage import uniform_filter

    region = uniform_filter(region, 9)
    r, c = np.unravel_index(np.argmax(region), region.shape)
    return int(r + lo_y), int(c + lo_x)


def run_pan(args: argparse.Namespace) -> dict:
    from PIL import Image
    from skimage.color import rgb2lab

    import tinct
    from tinct import Hint
    from tinct.metrics import psnr

    files = sorted(DATA.glob("*.jpg"))[: args.images]
    c = tinct.Colorizer("tinct-base", device="cpu", num_threads=args.threads)
    rng = np.random.default_rng(0)
    res: dict[str, list[float]] = {
        k: []
        for k in (
            "flicker_ind",
            "flicker_tmp",
            "psnr_ind",
            "psnr_tmp",
            "hint_off",
            "hint_on",
            "hint_ind",
        )
    }
    t_ind = t_tmp = 0.0
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB"))
        gray, truth, step = pan_sequence(rgb, rng)
        t = time.perf_counter()
        ind = c.colorize(gray)
        t_ind += time.perf_counter() - t
        t = time.perf_counter()
        tmp = c.colorize(gray, temporal=True)
        t_tmp += time.perf_counter() - t
        res["flicker_ind"].append(flicker(ind, step))
        res["flicker_tmp"].append(flicker(tmp, step))
        res["psnr_ind"].append(statistics.mean(psnr(o, g) for o, g in zip(ind, truth, strict=True)))
        res["psnr_tmp"].append(statistics.mean(psnr(o, g) for o, g in zip(tmp, truth, strict=True)))
        if args.hints:
            r, col = hint_spot(truth[0], step)
            colour = tuple(
                int(v) for v in truth[0, r - 2 : r + 3, col - 2 : col + 3].reshape(-1, 3).mean(0)
            )
            target = rgb2lab(np.array([[colour]], np.uint8))[0, 0, 1:]
            hinted = c.colorize(gray, hints=[Hint(r, col, color=colour, size=8)], temporal=True)
            ind_h = c.colorize(gray, hints=[Hint(r, col, color=colour, size=8)])
            dy, dx = step
            r11, c11 = r - dy * (FRAMES - 1), col - dx * (FRAMES - 1)

            for key, img in (("hint_off", tmp), ("hint_on", hinted), ("hint_ind", ind_h)):
                ab = rgb2lab(img[FRAMES - 1, r11 - 2 : r11 + 3, c11 - 2 : c11 + 3])[..., 1:]
                res[key].append(float(np.hypot(*(ab.reshape(-1, 2).mean(0) - target))))
        if args.verbose:
            print(
                f"{f.name}: flicker {res['flicker_ind'][-1]:.3f} -> {res['flicker_tmp'][-1]:.3f}, "
                f"PSNR {res['psnr_ind'][-1]:.2f} -> {res['psnr_tmp'][-1]:.2f}",
                flush=True,
            )
    out = {k: statistics.mean(v) for k, v in res.items() if v}
    out["flicker_ratio"] = out["flicker_tmp"] / out["flicker_ind"]
    out["psnr_delta"] = out["psnr_tmp"] - out["psnr_ind"]
    out["sequences"] = len(files)
    out["s_per_frame_ind"] = t_ind / (len(files) * FRAMES)
    out["s_per_frame_tmp"] = t_tmp / (len(files) * FRAMES)
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("what", choices=("pan", "video"))
    p.add_argument("--images", type=int, default=200, help="bsds500_test images to use")
    p.add_argument("--threads", default="auto", help="Colorizer num_threads")
    p.add_argument("--no-hints", dest="hints", action="store_false")
    p.add_argument("--frames", type=int, default=300, help="video frames")
    p.add_argument("--independent", action="store_true", help="video: also time independent mode")
    p.add_argument("--out", default="out/bench_temporal", help="video: where clips are written")
    p.add_argument("--json", type=Path)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    if args.threads != "auto":
        args.threads = int(args.threads)
    out = run_pan(args) if args.what == "pan" else run_video(args)
    for k, v in out.items():
        print(f"{k:>18}: {v:.4f}" if isinstance(v, float) else f"{k:>18}: {v}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


def make_clip(path: Path, frames: int, size: tuple[int, int] = (1080, 1920)) -> None:
    """A gray H.264 clip: a slow pan and zoom over an upscaled photo, grain sigma 3 per frame."""
    import imageio_ffmpeg
    from PIL import Image

    h, w = size
    photo = Image.open(sorted(DATA.glob("*.jpg"))[0]).convert("L")
    big = photo.resize((int(w * 1.3), int(w * 1.3 * photo.height / photo.width)), Image.BICUBIC)
    rng = np.random.default_rng(0)
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=25,
        codec="libx264",
        quality=None,
        macro_block_size=1,
        output_params=["-preset", "veryfast", "-crf", "18"],
        ffmpeg_log_level="error",
    )
    writer.send(None)
    for t in range(frames):
        z = 1.0 + 0.1 * t / max(1, frames - 1)  # zoom in by 10 %
        cw, ch = w / z * 1.05, h / z * 1.05
        x0 = (big.width - cw) * (0.1 + 0.8 * t / max(1, frames - 1))  # pan left to right
        y0 = (big.height - ch) / 2
        crop = big.resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
        g = np.asarray(crop, np.float32) + rng.normal(0, 3, (h, w)).astype(np.float32)
        g = np.clip(g + 0.5, 0, 255).astype(np.uint8)
        writer.send(np.ascontiguousarray(np.repeat(g[..., None], 3, -1)))
    writer.close()


_CHILD = """
import json, os, resource, sys, time
import tinct
from tinct.engine import video
threads = sys.argv[4] if sys.argv[4] == "auto" else int(sys.argv[4])
c = tinct.Colorizer("tinct-base", device="cpu", num_threads=threads)
t = time.perf_counter()
info = video.colorize_video(c, sys.argv[1], sys.argv[2], temporal=sys.argv[3] == "1")
dt = time.perf_counter() - t
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
n = info.frames
print(json.dumps({
    "frames": n, "seconds": dt, "fps": n / dt,
    "cpu_s_per_frame": (me.ru_utime + me.ru_stime) / n,
    "ffmpeg_cpu_s_per_frame": (kids.ru_utime + kids.ru_stime) / n,
    "load_avg_1min": os.getloadavg()[0],
    "peak_rss_mb": me.ru_maxrss / 1024, "ffmpeg_peak_rss_mb": kids.ru_maxrss / 1024,
}))
"""


def run_video(args: argparse.Namespace) -> dict:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    clip = out_dir / f"pan_zoom_1080p_{args.frames}.mp4"
    if not clip.exists():
        t = time.perf_counter()
        make_clip(clip, args.frames)
        print(f"built {clip} in {time.perf_counter() - t:.1f} s", flush=True)
    res: dict = {"clip": str(clip)}
    for mode in ["1", "0"] if args.independent else ["1"]:
        dst = out_dir / f"{clip.stem}_{'temporal' if mode == '1' else 'independent'}.mp4"
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(clip), str(dst), mode, str(args.threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        name = "temporal" if mode == "1" else "independent"
        for k, v in r.items():
            res[f"{name}_{k}"] = v
    return res


if __name__ == "__main__":
    main()
