"""How far to trust the network's colour against the propagated hints (issue 15).

For each tuning image it runs tinct-base with ``N`` protocol hints three times,
with the network's trust forced to 0 (plain propagation), 0.5 and 1 (the learned
gate as is), and records what :func:`tinct.engine.fusion.hint_reliability` sees: the
mean ab error of the automatic colour under the hints. It then scores trust
rules ``trust = ceiling(N) * clamp((hi - error) / (hi - lo), 0, 1)`` by
interpolating each image's PSNR between the three runs, against Levin.

Tuning sets only -- never the evaluation set or held-out domain tiles:
``photo`` (the training run's held-out photographs), ``he`` and ``astro`` (the
*training* split by source of the domain folders)::

    python benchmarks/trust_study.py run --set photo --hints 10 --limit 60
    python benchmarks/trust_study.py fit
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.color import rgb2lab

import tinct
import tinct.engine.fusion as fusion
from tinct.engine.hint_raster import hint_influence
from tinct.metrics import psnr
from tinct.training.config import split_indices
from tinct.training.datasets import find_images, split_by_source
from tinct.training.evaluate import BASELINES, make_hints, method_for

DOMAIN = {
    "he": ("histology/monuseg_multiorgan", "histology/glioma_gbm_tcga"),
    "astro": ("astronomy/jwst_tiles", "astronomy/hubble_top100_128px"),
}
TRUSTS = (0.0, 0.5, 1.0)


def tuning_paths(which: str, limit: int, train: Path, domain: Path) -> list[Path]:
    """The tuning images of one set (evenly spread over the domain training splits)."""
    if which == "photo":
        paths = find_images(train)
        return [paths[i] for i in split_indices(len(paths), 0.02, 0)[0]][:limit]
    out: list[Path] = []
    for folder in DOMAIN[which]:
        tr = split_by_source(find_images(domain / folder))[0]
        out += tr[:: max(1, len(tr) // (limit // 2))][: limit // 2]
    return out


def run(args: argparse.Namespace) -> None:
    forced = {"trust": 1.0}
    seen: dict[str, float] = {}

    def reliability(auto_ab, patches, net_size):
        b, _, h, w = auto_ab.shape
        weight, target = hint_influence(patches, (h, w), h / net_size[0], b, 0.0)
        err = (auto_ab.float() - target).norm(dim=1, keepdim=True)
        seen["error"] = float((weight * err).sum() / weight.sum().clamp_min(1e-6))
        return auto_ab.new_full((b,), forced["trust"])

    fusion.hint_reliability = reliability  # the engine calls it through the module
    opts = tinct.ColorizeOptions()
    colorize = method_for("tinct-base", options=opts)
    for cell in colorize.__closure__ or ():  # no result cache: every run recomputes
        if isinstance(cell.cell_contents, tinct.Colorizer):
            cell.cell_contents.cache_size = 0
    rows = []
    paths = tuning_paths(args.set, args.limit, Path(args.train), Path(args.domain))
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB").resize((256, 256), Image.Resampling.BICUBIC))
        hints = make_hints(rgb2lab(rgb), args.hints, np.random.default_rng([7, i, args.hints]))
        row = {"levin": psnr(BASELINES["levin"](rgb, hints), rgb)}
        for t in TRUSTS:
            forced["trust"] = t
            row[f"t{t}"] = psnr(colorize(rgb, hints), rgb)
        row["error"] = seen["error"]
        rows.append(row)
    out = Path(args.out) / f"trust_{args.set}_{args.hints}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"hints": args.hints, "rows": rows}))
    means = {k: round(float(np.mean([r[k] for r in rows])), 2) for k in rows[0]}
    print(args.set, args.hints, len(rows), means, "->", out)


def _at(row: dict[str, float], t: float) -> float:
    """PSNR at trust ``t``: the parabola through the three measured trusts."""
    y0, y1, y2 = row["t0.0"], row["t0.5"], row["t1.0"]
    return y0 + (4 * y1 - 3 * y0 - y2) * t + 2 * (y2 - 2 * y1 + y0) * t * t


def fit(args: argparse.Namespace) -> None:
    sets = {}
    for f in sorted(Path(args.out).glob("trust_*.json")):
        d = json.loads(f.read_text())
        sets[f.stem] = (d["hints"], d["rows"])
    levin = {k: np.mean([r["levin"] for r in rows]) for k, (_, rows) in sets.items()}

    def score(lo: float, hi: float, many: float, ceiling_at: int) -> dict[str, float]:
        res = {}
        for k, (n, rows) in sets.items():
            top = 1.0 if n <= 1 else max(many, 1 - (1 - many) * (n - 1) / (ceiling_at - 1))
            ts = [top * float(np.clip((hi - r["error"]) / (hi - lo), 0, 1)) for r in rows]
            res[k] = float(np.mean([_at(r, t) for r, t in zip(rows, ts, strict=True)])) - levin[k]
        return res

    grid = itertools.product((5, 10, 15, 20, 25), (30, 40, 45, 50), (0.4, 0.5, 0.6, 0.8, 1.0))
    ranked = sorted(
        ((score(lo, hi, m, 10), lo, hi, m) for lo, hi, m in grid if hi > lo),
        key=lambda x: (-min(x[0].values()), -sum(x[0].values())),
    )
    print("PSNR - Levin (dB) per tuning set; best worst-case first")
    for res, lo, hi, m in ranked[:8]:
        print(f"lo {lo:>2} hi {hi} ceiling {m}:", {k: round(float(v), 2) for k, v in res.items()})
    shipped = score(fusion.RELIABLE_ERROR, fusion.UNRELIABLE_ERROR, fusion.MANY_HINTS_TRUST, 10)
    print("shipped:", {k: round(float(v), 2) for k, v in shipped.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("run", "fit"))
    ap.add_argument("--set", choices=("photo", "he", "astro"), default="photo")
    ap.add_argument("--hints", type=int, default=10)
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--train", default="../shared/data/train")
    ap.add_argument("--domain", default="../shared/data/domain")
    ap.add_argument("--out", default="runs/trust")
    args = ap.parse_args()
    run(args) if args.mode == "run" else fit(args)


if __name__ == "__main__":
    main()
