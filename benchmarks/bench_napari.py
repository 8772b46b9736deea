"""Latency of a Live temperature change in the napari widget (1024 x 1024 image).

Measures the wall time from moving the temperature slider to the output layer
holding the new colours, through the real path: Live debounce timer ->
thread_worker -> engine re-decode from its cache (no network pass) -> layer
update in the main thread. Run under a display::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_napari.py

(``--json OUT`` also saves the numbers.)

Uses trained ``tinct-base`` weights when present, random weights otherwise
(the re-decode cost does not depend on the weight values).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
from napari_timing import time_change, wait_idle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--model", default="tinct-base")
    parser.add_argument(
        "--decoder", default="annealed_mean", help="decoder box value (a distribution decoder)"
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    os.environ.pop("TINCT_NAPARI_SYNC", None)

    import napari
    import torch
    from skimage import data
    from skimage.transform import resize

    from tinct.engine.colorizer import Colorizer
    from tinct.models import get_record, weights_status
    from tinct.napari_plugin.logic import decoder_option

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    pretrained = weights_status(get_record(args.model)) in ("bundled", "downloaded", "built in")
    made: list[Colorizer] = []

    def factory(model: str, device: str) -> Colorizer:
        made.append(Colorizer(model, device="cpu", pretrained=pretrained))
        return made[-1]

    viewer = napari.Viewer(show=False)
    _, w = viewer.window.add_plugin_dock_widget("tinct", "Colorize")
    w.colorizer_factory = factory
    gray = (resize(data.camera(), (args.size, args.size)) * 255).astype(np.uint8)
    w.image.value = viewer.add_image(gray, name="gray")
    w.model.value = args.model
    w.decoder.value = args.decoder

    t0 = time.perf_counter()
    w.run()
    wait_idle(w)
    first = time.perf_counter() - t0
    out = next(layer for layer in viewer.layers if layer.name.startswith("gray colorized"))
    w.live.value = True
    wait_idle(w)
    calls = made[0].stats.forward_calls
    times = []
    for i in range(args.repeats):
        value = 0.2 + 0.1 * (i % 8)
        times.append(time_change(w, out, lambda v=value: setattr(w.temperature, "value", v)))
    assert made[0].stats.forward_calls == calls, "a temperature change ran the network"
    ms = [1000 * t for t in times]
    engine_ms = []
    for i in range(args.repeats):  # the engine's share: the same re-decode, no widget around it
        t0 = time.perf_counter()
        t = 0.25 + 0.1 * (i % 8)
        made[0].colorize(gray, temperature=t, decoder=decoder_option(w.decoder.value))
        engine_ms.append(1000 * (time.perf_counter() - t0))
    print(
        f"{args.size}x{args.size} {args.model} (pretrained={pretrained}), "
        f"torch threads={torch.get_num_threads()}: first run {first:.2f} s; "
        f"Live temperature change -> output layer updated: median {statistics.median(ms):.0f} ms, "
        f"min {min(ms):.0f} ms, max {max(ms):.0f} ms over {len(ms)} changes; "
        f"network passes during changes: {made[0].stats.forward_calls - calls}; "
        f"engine re-decode alone: median {statistics.median(engine_ms):.0f} ms; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if args.json:
        res = {
            "size": args.size,
            "model": args.model,
            "pretrained": pretrained,
            "torch_threads": torch.get_num_threads(),
            "first_run_s": first,
            "changes": len(ms),
            "latency_median_ms": statistics.median(ms),
            "latency_min_ms": min(ms),
            "latency_max_ms": max(ms),
            "network_passes_during_changes": made[0].stats.forward_calls - calls,
            "engine_redecode_median_ms": statistics.median(engine_ms),
            "load_average": os.getloadavg()[0],
        }
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    viewer.close()


if __name__ == "__main__":
    main()
