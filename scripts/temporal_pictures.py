"""Pictures of temporal mode for docs/temporal.md (tinct-base, CPU).

``python scripts/temporal_pictures.py`` writes

* ``docs/images/temporal-pan.jpg``: a bsds500_test pan sequence (12 frames, 8 px per
  frame, gray noise sigma 3): frames 0, 4, 8 and 11 of the gray input, plane-by-plane
  colorization, temporal mode, and temporal mode with one hint on frame 0;
* ``docs/images/temporal-camvid.jpg``: a real street drive (CamVid 0016E5, frames 2 s
  apart, from shared/data/train/camvid), plane by plane and temporal;
* ``out/temporal/camvid_0016E5.mp4`` and ``..._colorized.mp4``: that drive as a 4 fps
  clip, colorized through ``tinct.engine.video`` (for looking at, not committed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = Path("/work/shared/data")


def label(img: np.ndarray, text: str) -> np.ndarray:
    im = Image.fromarray(img).convert("RGB")
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, 8 + 7 * len(text), 16), fill=(0, 0, 0))
    d.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(im)


def grid(rows: list[list[np.ndarray]], gap: int = 4) -> np.ndarray:
    h, w = rows[0][0].shape[:2]
    out = np.full((len(rows) * (h + gap) - gap, len(rows[0]) * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            img = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img
            out[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = img
    return out


def main() -> None:
    import bench_temporal as B

    import tinct
    from tinct import Hint

    c = tinct.Colorizer("tinct-base", device="cpu")
    rgb = np.asarray(Image.open(B.DATA / "100039.jpg").convert("RGB"))
    gray, truth, step = B.pan_sequence(rgb, np.random.default_rng(0))
    ind = c.colorize(gray)
    tmp = c.colorize(gray, temporal=True)
    r, col = B.hint_spot(truth[0], step)
    hint = Hint(r, col, color=(40, 90, 230), size=10)
    hinted = c.colorize(gray, hints=[hint], temporal=True)
    frames = [0, 4, 8, 11]
    rows = [
        [label(gray[t], f"gray {t}") for t in frames],
        [label(ind[t], f"plane by plane {t}") for t in frames],
        [label(tmp[t], f"temporal {t}") for t in frames],
        [label(hinted[t], f"hint on 0, frame {t}") for t in frames],
    ]
    r0 = Image.fromarray(rows[3][0])
    ImageDraw.Draw(r0).rectangle((col - 6, r - 6, col + 6, r + 6), outline=(255, 255, 0), width=2)
    rows[3][0] = np.asarray(r0)
    out = ROOT / "docs" / "images"
    Image.fromarray(grid(rows)).save(out / "temporal-pan.jpg", quality=85)
    print("flicker plane by plane", B.flicker(ind, step), "temporal", B.flicker(tmp, step))

    files = sorted((SHARED / "train" / "camvid").glob("train_0016E5_0*.jpg"))[:12]
    seq = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    ind = c.colorize(seq)
    tmp = c.colorize(seq, temporal=True)
    show = [0, 1, 2, 3, 4, 5]
    rows = [
        [label(seq[t], f"gray {t}") for t in show],
        [label(ind[t], f"plane by plane {t}") for t in show],
        [label(tmp[t], f"temporal {t}") for t in show],
    ]
    Image.fromarray(grid(rows)).save(out / "temporal-camvid.jpg", quality=85)

    import imageio_ffmpeg

    from tinct.engine import video

    clip_dir = ROOT / "out" / "temporal"
    clip_dir.mkdir(parents=True, exist_ok=True)
    src = clip_dir / "camvid_0016E5.mp4"
    files = sorted((SHARED / "train" / "camvid").glob("train_0016E5_0[0-2]*.jpg"))
    w = imageio_ffmpeg.write_frames(str(src), (256, 256), fps=4, codec="libx264", quality=None,
                                    macro_block_size=1, output_params=["-crf", "16"],
                                    ffmpeg_log_level="error")  # fmt: skip
    w.send(None)
    for f in files:
        w.send(np.ascontiguousarray(np.asarray(Image.open(f).convert("RGB"))))
    w.close()
    info = video.colorize_video(c, src, video.output_path(src, clip_dir), temporal=True)
    print(f"{src}: {info.frames} frames at {info.fps} fps")


if __name__ == "__main__":
    main()
