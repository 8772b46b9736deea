"""Throughput of ``tinct batch`` (images/s) against the number of worker processes.

Generates N gray images, then colorizes them (1) serially in this process and
(2) with :func:`tinct.scale.batch.run_batch` on LocalClusters of 1, 2, ... worker
processes. Clusters get :data:`tinct.scale.batch.LOCAL_CLUSTER_CONFIG` as ``tinct batch``
does (``--trim`` keeps Dask's default ``MALLOC_TRIM_THRESHOLD_`` to measure
its cost). Cluster start-up and each worker's model load + first call are
excluded from the timed run (every worker is warmed up first) and reported
separately as the "cold start".

Usage::

    python benchmarks/bench_batch.py                              # 64 images of 256x256
    python benchmarks/bench_batch.py --images 200 --size 512 --workers 1 2 4 --threads 1
    python benchmarks/bench_batch.py --model tinct-base --pretrained   # trained weights
    python benchmarks/bench_batch.py --images 32 --json batch.json     # also save the numbers

Without ``--pretrained`` the model has random weights (saved to a temporary
file that every worker loads): the cost of a pass does not depend on the
weights' values.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tinct.engine.options import ColorizeOptions
from tinct.scale.batch import LOCAL_CLUSTER_CONFIG, run_batch


def _make_images(folder: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        f = rng.uniform(2, 12, 2)
        img = 127 + 90 * np.sin(f[0] * yy + i) * np.cos(f[1] * xx) + rng.normal(0, 10, (size, size))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"img{i:04d}.png")


def _warm(model: str, device: str, pretrained: bool, threads: int) -> int:
    from tinct.scale.workers import worker_colorizer

    c = worker_colorizer(model, device, pretrained=pretrained, threads=threads)
    c.colorize(np.full((64, 64), 128, np.uint8))
    return os.getpid()


def _serial(src: Path, out: Path, opts: ColorizeOptions, pretrained: bool, threads: int) -> float:
    from tinct.scale.file_task import colorize_file
    from tinct.scale.planning import find_inputs

    torch.set_num_threads(threads)
    _warm(opts.model, opts.device, pretrained, threads)
    files = find_inputs(src)
    t0 = time.perf_counter()
    for f in files:
        r = colorize_file(f, out, opts, threads=threads, pretrained=pretrained)
        assert r.status == "done", r.error
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--size", type=int, default=256, help="image side in pixels")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--model", default="tinct-small")
    ap.add_argument("--pretrained", action="store_true", help="trained weights (else random)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--trim", action="store_true", help="keep Dask's MALLOC_TRIM_THRESHOLD_ in the workers"
    )
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)

    import dask
    from distributed import Client, LocalCluster

    tmp = Path(tempfile.mkdtemp(prefix="tinct-bench-batch-"))
    try:
        model = args.model
        if not args.pretrained:
            import tinct
            from tinct.models.weights import save_weights

            m = tinct.load_model(args.model, pretrained=False)
            model = str(save_weights(m, tmp / f"{args.model}-random.safetensors"))
        opts = ColorizeOptions(model=model, device=args.device)
        src = tmp / "in"
        src.mkdir()
        _make_images(src, args.images, args.size)
        print(
            f"# tinct batch: {args.images} images of {args.size}x{args.size}, {args.model} "
            f"({'trained' if args.pretrained else 'random'} weights), device {args.device}, "
            f"{args.threads} torch thread(s) per worker"
            f"{', MALLOC_TRIM_THRESHOLD_=65536' if args.trim else ''}; {os.cpu_count()} cores, "
            f"{platform.processor() or platform.machine()}"
        )
        rows = []
        secs = _serial(src, tmp / "out-serial", opts, args.pretrained, args.threads)
        rows.append(("serial (in-process)", float("nan"), secs))
        for n in args.workers:
            t0 = time.perf_counter()
            with (
                dask.config.set({} if args.trim else LOCAL_CLUSTER_CONFIG),
                LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=40,
                ) as cluster,
                Client(cluster) as client,
            ):  # fmt: skip
                client.run(_warm, model, args.device, args.pretrained, args.threads)
                cold = time.perf_counter() - t0
                t1 = time.perf_counter()
                s = run_batch(
                    src, tmp / f"out-{n}", opts, client=client, threads_per_worker=args.threads,
                    pretrained=args.pretrained, progress=False,
                )  # fmt: skip
                secs = time.perf_counter() - t1
            assert s.done == args.images and s.failed == 0, s.line()
            rows.append((f"{n} worker{'s' if n > 1 else ''}", cold, secs))
        base = rows[0][2]
        print(
            f"| {'run':<20} | {'cold start s':>12} | {'time s':>8} | {'images/s':>8} | speed-up |"
        )
        print(f"|{'-' * 22}|{'-' * 14}|{'-' * 10}|{'-' * 10}|----------|")
        for name, cold, secs in rows:
            c = "-" if np.isnan(cold) else f"{cold:.1f}"
            print(
                f"| {name:<20} | {c:>12} | {secs:8.2f} | {args.images / secs:8.1f} "
                f"| {base / secs:7.2f}x |"
            )
        if args.json:
            res = {
                "images": args.images,
                "size": args.size,
                "model": args.model,
                "pretrained": args.pretrained,
                "device": args.device,
                "threads_per_worker": args.threads,
                "trim": args.trim,
                "rows": [
                    {
                        "run": name,
                        "workers": 0 if np.isnan(cold) else int(name.split()[0]),
                        "cold_start_s": None if np.isnan(cold) else cold,
                        "time_s": secs,
                        "images_per_s": args.images / secs,
                        "speedup": base / secs,
                    }
                    for name, cold, secs in rows
                ],
            }
            with open(args.json, "w") as f:
                json.dump(res, f, indent=2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
