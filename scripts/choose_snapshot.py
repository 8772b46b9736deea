"""Score a training run's snapshots on its held-out images and say which one to ship.

For a run made with ``tinct train ... --snapshot-every M --out RUN`` (see
docs/training.md, "Choosing the checkpoint"): protocol A1 at 0 and 10 hints on the
images the run held out, for the starting weights and every snapshot; the rule is
:func:`tinct.training.selection.choose`. Writes ``RUN/scores.json`` and prints a table::

    python scripts/choose_snapshot.py --run runs/cont0 --data ../shared/data/train --limit 80
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinct.training.selection import held_out_images, score_snapshots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, type=Path, help="the run folder (--out of tinct train)")
    ap.add_argument("--data", required=True, nargs="+", help="the run's --data folders")
    ap.add_argument("--init", default="tinct-base", help="the run's starting weights")
    ap.add_argument("--limit", type=int, default=0, help="held-out images scored (0 = all)")
    ap.add_argument("--val-fraction", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", help="score only these snapshot stems")
    args = ap.parse_args()
    snaps = sorted((args.run / "snapshots").glob("step_*.safetensors"))
    if args.only:
        snaps = [p for p in snaps if p.stem in args.only]
    if not snaps:
        raise SystemExit(f"no snapshots in {args.run / 'snapshots'}")
    images = held_out_images(args.data, args.val_fraction, args.seed)
    result = score_snapshots(
        snaps, images, init=args.init, out=args.run / "snapshot-report", limit=args.limit
    )
    (args.run / "scores.json").write_text(json.dumps(result, indent=1))
    print(f"{'weights':<22} {'auto dB':>8} {'10 hints':>9} {'colour':>7} {'false':>7}")
    for name, s in [(f"start ({args.init})", result["init"]), *result["scores"].items()]:
        print(
            f"{name:<22} {s['psnr_auto']:8.2f} {s['psnr_10']:9.2f} "
            f"{s['colourful_auto']:7.2f} {s['false_auto'] * 100:6.1f}%"
        )
    verdict = "ship it" if result["ships"] else "does not beat the start: do not ship"
    print(f"best: {result['best']} ({verdict})")


if __name__ == "__main__":
    main()
