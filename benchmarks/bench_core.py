"""Timings of tinct's numerical core: colour conversion and MRF smoothing.

Usage::

    python benchmarks/bench_core.py            # CPU (and CUDA if available)
    python benchmarks/bench_core.py --size 2048 --repeats 5 --threads 1
    python benchmarks/bench_core.py --json core.json   # also save the numbers
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from tinct import bins, color, mrf


def _time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time in ms over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _bench_device(dev: torch.device, args: argparse.Namespace) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    rgb = torch.rand(3, args.size, args.size, device=dev)
    lab = color.rgb_to_lab(rgb)
    n = f"{args.size}x{args.size}"
    ms = _time(lambda: color.rgb_to_lab(rgb), args.repeats, dev)
    print(f"{'rgb_to_lab ' + n + ' float32':44s} {dev.type:7s} {ms:10.1f}")
    rows.append({"op": "rgb_to_lab", "device": dev.type, "size": args.size, "ms": ms})
    ms = _time(lambda: color.lab_to_rgb(lab), args.repeats, dev)
    print(f"{'lab_to_rgb ' + n + ' float32':44s} {dev.type:7s} {ms:10.1f}")
    rows.append({"op": "lab_to_rgb", "device": dev.type, "size": args.size, "ms": ms})
    centres = bins.gamut_bins(device=dev)
    it = args.iterations
    for s in args.mrf_sizes:
        g = torch.Generator(device="cpu").manual_seed(0)
        logits = torch.randn(1, 313, s, s, generator=g).to(dev)
        lum = (torch.rand(1, 1, s, s, generator=g) * 100).to(dev)

        def run(logits: torch.Tensor = logits, lum: torch.Tensor = lum) -> object:
            return mrf.smooth(logits, centres, lum, weight=1.0, iterations=it)

        ms = _time(run, args.repeats, dev)
        name = f"mrf.smooth {s}x{s}x313 per iteration ({it} it)"
        print(f"{name:44s} {dev.type:7s} {ms / it:10.1f}")
        row = {"op": "mrf.smooth", "device": dev.type, "size": s, "iterations": it, "ms": ms}
        rows.append({**row, "ms_per_iteration": ms / it})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096, help="colour conversion image side")
    ap.add_argument("--mrf-sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--iterations", type=int, default=5, help="MRF iterations per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--cpu-only", action="store_true")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'benchmark':44s} {'device':7s} {'ms':>10s}")
    rows = []
    for dev in devices:
        with torch.no_grad():
            rows += _bench_device(dev, args)
    if args.json:
        res = {"torch_threads": torch.get_num_threads(), "repeats": args.repeats, "rows": rows}
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
