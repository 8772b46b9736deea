"""Pack the training photographs into one tar for a GPU machine (<= about 50 MiB).

The GPU machine sees only the repository's working tree (64 MiB in all, the
tracked files included), so the training images travel re-encoded small (128 x
128 JPEG, the quality lowered -- then the side -- until the tar fits the budget
left beside the tracked files), together with the run's held-out split at 256 x
256 for choosing the checkpoint (protocol A1). The evaluation set is never packed.

    python scripts/gpu/pack_data.py --train ../shared/data/train --out .gpu/train128.tar
"""

from __future__ import annotations

import argparse
import io
import subprocess
import tarfile
from pathlib import Path

from PIL import Image

from tinct.training.config import split_indices
from tinct.training.datasets import find_images


def _jpeg(path: Path, side: int, quality: int) -> bytes:
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = side / min(w, h)
        im = im.resize((max(side, round(w * s)), max(side, round(h * s))), Image.Resampling.LANCZOS)
        w, h = im.size
        im = im.crop(
            ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
        )
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality, optimize=True)
        return buf.getvalue()


def tracked_bytes() -> int:
    """Bytes of the files git tracks (they travel to the GPU machine too)."""
    names = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout.split(
        b"\0"
    )
    return sum(Path(n.decode()).stat().st_size for n in names if n and Path(n.decode()).exists())


def pack(paths, held, train, out: Path, side: int, quality: int) -> int:
    """Write the tar; returns its size in bytes."""
    with tarfile.open(out, "w") as tar:
        for part, idx, s, q in (("train", train, side, quality), ("held", held, 256, 90)):
            for i in idx:
                p = paths[i]
                data = _jpeg(p, s, q)
                info = tarfile.TarInfo(f"{part}/{p.parent.name}__{p.stem}.jpg")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True, help="training folder (shared/data/train)")
    ap.add_argument("--out", default=".gpu/train128.tar")
    ap.add_argument(
        "--budget-mib",
        type=float,
        default=None,
        help="largest tar (default: 62 MiB minus the tracked files)",
    )
    ap.add_argument("--val-fraction", type=float, default=0.02)
    args = ap.parse_args()
    budget = (args.budget_mib * 2**20) if args.budget_mib else 62 * 2**20 - tracked_bytes()
    paths = find_images(args.train)
    held, train = split_indices(len(paths), args.val_fraction, 0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for side, quality in ((128, 85), (128, 75), (128, 65), (112, 70), (96, 70), (96, 55)):
        size = pack(paths, held, train, out, side, quality)
        print(f"{side} px, q{quality}: {size / 2**20:.1f} MiB (budget {budget / 2**20:.1f})")
        if size <= budget:
            break
    else:
        raise SystemExit(f"{out} does not fit in {budget / 2**20:.1f} MiB")
    print(f"{out}: {len(train)} train ({side} px, q{quality}) + {len(held)} held-out")


if __name__ == "__main__":
    main()
