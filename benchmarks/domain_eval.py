"""Domain evaluation: H&E histology and telescope tiles, held out by source image.

In each folder of ``shared/data/domain`` the tiles of the last quarter of source
images (sorted by source id, :func:`tinct.training.datasets.split_by_source`) are held
out; no model is trained or tuned on them. Protocol A1 (256 x 256, the model
sees gray, random 6 x 6 ground-truth hints) through :func:`tinct.training.evaluate.evaluate`:

    python benchmarks/domain_eval.py --domain ../shared/data/domain \
        --models gray levin tinct-base tinct-he tinct-astro --out runs/domain-eval

Prints one table per folder (PSNR at 0 and 10 hints, colourfulness, false colour).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinct.training.datasets import find_images, split_by_source
from tinct.training.evaluate import EvalConfig, evaluate

FOLDERS = {
    "monuseg_multiorgan": "histology/monuseg_multiorgan",
    "glioma_gbm_tcga": "histology/glioma_gbm_tcga",
    "jwst_tiles": "astronomy/jwst_tiles",
    "hubble_top100_128px": "astronomy/hubble_top100_128px",
}


def held_out(domain: Path, folder: str) -> list[Path]:
    """The held-out tiles of one domain folder."""
    return split_by_source(find_images(domain / folder))[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domain", required=True, help="shared/data/domain")
    ap.add_argument("--models", nargs="+", default=["gray", "levin", "tinct-base"])
    ap.add_argument("--folders", nargs="+", default=list(FOLDERS), choices=list(FOLDERS))
    ap.add_argument("--hints", default="0,10")
    ap.add_argument("--out", default="runs/domain-eval")
    args = ap.parse_args()
    for name in args.folders:
        files = held_out(Path(args.domain), FOLDERS[name])
        print(f"\n## {name}: {len(files)} held-out tiles")
        res = evaluate(
            EvalConfig(
                models=args.models,
                data=[str(p) for p in files],
                hints=[int(h) for h in args.hints.split(",")],
                out=str(Path(args.out) / name),
                full_res=False,
            ),
            log=lambda s: None,
        )
        print("| model | hints | PSNR | colourfulness | false colour |")
        print("|---|---:|---:|---:|---:|")
        for label, row in res.items():
            model, n = label.rsplit(" @ ", 1)
            print(
                f"| {model} | {n.split()[0]} | {row['psnr']:.2f} | {row['colourfulness']:.2f} "
                f"| {100 * row['false_colour']:.1f} % |"
            )


if __name__ == "__main__":
    main()
