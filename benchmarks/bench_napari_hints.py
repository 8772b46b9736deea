"""Latency of a hint edit in the napari widget (512 x 512 image, Live on).

Moves one of ten hint points and measures the wall time until the output layer
holds the new colours, through the real path: Points event -> Live timer
timer -> thread_worker -> engine (a network pass with the new hints, the hint
propagation, decoding) -> layer update in the main thread. Run under a display::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_napari_hints.py

The target (issue 15) is a median within 250 ms on this project's 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics

import numpy as np
from napari_timing import time_change, wait_idle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--hints", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--model", default="tinct-base")
    args = parser.parse_args(argv)
    os.environ.pop("TINCT_NAPARI_SYNC", None)

    import napari
    from skimage import data
    from skimage.transform import resize

    viewer = napari.Viewer(show=False)
    _, w = viewer.window.add_plugin_dock_widget("tinct", "Colorize")
    rgb = (resize(data.astronaut(), (args.size, args.size)) * 255).astype(np.uint8)
    gray = (rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    w.image.value = viewer.add_image(gray, name="gray")
    w.model.value = args.model

    rng = np.random.default_rng(0)
    pts = w.add_hints_layer()
    coords = rng.uniform(20, args.size - 20, (args.hints, 2))
    pts.add(coords)
    pts.face_color = np.array([[*(rgb[int(r), int(c)] / 255.0), 1.0] for r, c in coords])
    w.run()
    wait_idle(w)
    out = next(layer for layer in viewer.layers if layer.name.startswith("gray colorized"))
    w.live.value = True
    wait_idle(w)
    times = []
    for _i in range(args.repeats):
        moved = np.asarray(pts.data).copy()
        moved[0] = rng.uniform(20, args.size - 20, 2)
        times.append(time_change(w, out, lambda moved=moved: setattr(pts, "data", moved)))
    ms = [1000 * t for t in times]
    print(
        f"{args.size}x{args.size} {args.model}, {args.hints} hints: hint moved -> output layer "
        f"updated: median {statistics.median(ms):.0f} ms, min {min(ms):.0f}, max {max(ms):.0f} "
        f"over {len(ms)} edits (includes the Live timer); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    viewer.close()


if __name__ == "__main__":
    main()
