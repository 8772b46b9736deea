"""Pack the training photographs into one tar for a GPU machine (<= about 50 MiB).

The GPU machine sees only the repository's working tree (64 MiB in all), so the
training images travel re-encoded at 128 x 128 (JPEG q85), together with the
run's held-out split at 256 x 256 for choosing the checkpoint (protocol A1).
The evaluation set is never packed.

    python scripts/gpu/pack_data.py --train ../shared/data/train --out .gpu/train128.tar
"""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

from PIL import Image

from tinct.datasets import find_images
from tinct.train import split_indices


def _jpeg(path: Path, side: int, quality: int) -> bytes:
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = side / min(w, h)
        im = im.resize((max(side, round(w * s)), max(side, round(h * s))), Image.Resampling.LANCZOS)
        w, h = im.size
        im = im.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality, optimize=True)
        return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True, help="training folder (shared/data/train)")
    ap.add_argument("--out", default=".gpu/train128.tar")
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--val-fraction", type=float, default=0.02)
    args = ap.parse_args()
    paths = find_images(args.train)
    held, train = split_indices(len(paths), args.val_fraction, 0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w") as tar:
        for part, idx, side, q in (("train", train, args.side, args.quality), ("held", held, 256, 90)):
            for i in idx:
                p = paths[i]
                data = _jpeg(p, side, q)
                info = tarfile.TarInfo(f"{part}/{p.parent.name}__{p.stem}.jpg")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB, {len(train)} train + {len(held)} held-out")


if __name__ == "__main__":
    main()
