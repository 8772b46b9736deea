"""Benchmarks of the inference engine.

Run ``python benchmarks/bench_engine.py`` (``--quick`` skips 8192², ``--json
out.json`` saves the numbers). Reports, on the CPU and on CUDA when present:

* end-to-end ``Colorizer.colorize`` time at 256², 512², 2048² and 8192² (tiled);
* network forward time, MRF time and re-decode time (temperature change, cached network);
* peak memory: tracemalloc (numpy/Python allocations) and the process max RSS;
  the 8192² case runs in a subprocess so its own peak RSS is measured;
* the reference pipeline of the original ``colorizers`` demo (PIL bicubic resize to
  256x256 squashing the aspect ratio, skimage ``rgb2lab`` of the full and resized
  image, the network, bilinear ``F.interpolate`` of ab, skimage ``lab2rgb``) next to
  tinct's pipeline with the same ``zhang-eccv16`` network (random weights), and the
  speed ratio at 2048²;
* the mean absolute difference between tiled and untiled results at 1024².

Models use random weights unless ``--pretrained`` is given (timings do not depend
on the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import numpy as np
import torch

import tinct
from tinct.engine.colorizer import Colorizer
from tinct.engine.options import ColorizeOptions

#: Colorizer thread policy: "auto" (the default) unless --threads pins torch's setting.
POLICY: dict[str, Any] = {"num_threads": "auto"}


def rss_mb() -> float:
    """Peak resident set size of this process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timeit(fn, repeat: int = 3) -> float:
    """Median wall time of ``fn()`` in seconds (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def test_image(size: int) -> np.ndarray:
    """A natural-looking uint8 gray image of ``size x size`` (scikit-image's astronaut)."""
    from PIL import Image
    from skimage import data

    gray = Image.fromarray(data.astronaut()).convert("L")
    return np.asarray(gray.resize((size, size), Image.BILINEAR))


# ----------------------------------------------------------------------------- reference


def reference_pipeline(model: torch.nn.Module, rgb: np.ndarray) -> np.ndarray:
    """The ``colorizers`` demo pre/post-processing around ``model`` (CPU, skimage)."""
    import torch.nn.functional as F
    from PIL import Image
    from skimage.color import lab2rgb, rgb2lab

    small = np.asarray(Image.fromarray(rgb).resize((256, 256), resample=Image.BICUBIC))
    lab_orig, lab_small = rgb2lab(rgb), rgb2lab(small)
    l_orig = torch.from_numpy(lab_orig[:, :, 0]).float()[None, None]
    l_small = torch.from_numpy(lab_small[:, :, 0]).float()[None, None]
    with torch.inference_mode():
        ab = model(l_small).ab
    if ab.shape[-2:] != l_orig.shape[-2:]:
        ab = F.interpolate(ab, size=l_orig.shape[-2:], mode="bilinear")
    lab = torch.cat((l_orig, ab.float()), 1)[0].permute(1, 2, 0).numpy()
    return lab2rgb(lab)


# ----------------------------------------------------------------------------- cases


def bench_device(device: str, sizes: list[int], pretrained: bool) -> dict[str, Any]:
    """End-to-end, forward, MRF and re-decode timings on one device."""
    out: dict[str, Any] = {"device": device}
    c = Colorizer("tinct-base", device=device, pretrained=pretrained, **POLICY)
    for size in sizes:
        img = test_image(size)
        tracemalloc.start()
        t_first = time.perf_counter()
        c.clear_cache()
        c.colorize(img)
        t_first = time.perf_counter() - t_first
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        def fresh(img=img):
            c.clear_cache()
            c.colorize(img)

        temps = iter(np.linspace(0.2, 0.9, 50))
        e2e = timeit(fresh)
        redecode = timeit(lambda img=img, t=temps: c.colorize(img, temperature=float(next(t))), 5)
        mrf = timeit(lambda img=img: c.colorize(img, mrf_weight=1.0, mrf_iters=5), 3) - redecode
        out[f"{size}"] = {
            "end_to_end_s": round(e2e, 4),
            "first_call_s": round(t_first, 4),
            "redecode_ms": round(redecode * 1000, 1),
            "mrf_extra_ms": round(mrf * 1000, 1),
            "tracemalloc_peak_mb": round(peak / 2**20, 1),
        }
        print(f"  [{device}] {size}^2: {out[str(size)]}", flush=True)
    # network forward alone at the model's input size
    from tinct.engine.threads import call_threads

    lum = torch.rand(1, 1, 256, 256, device=c.device) * 100
    with torch.inference_mode(), call_threads(POLICY["num_threads"], c.device):
        out["forward_256_ms"] = round(timeit(lambda: forward_once(c, lum), 5) * 1000, 1)
    print(f"  [{device}] forward 256^2: {out['forward_256_ms']} ms", flush=True)
    out["max_rss_mb"] = round(rss_mb(), 1)
    return out


def bench_reference(size: int = 2048, repeat: int = 7) -> dict[str, Any]:
    """The §1.6 reference pipeline vs tinct's, same zhang-eccv16 network, CPU.

    Both pipelines run alternately ``repeat`` times (after a warm-up each), so
    a slow spell of a shared machine hits both; the ratio of the medians is
    reported, with the spread of the per-pair ratios.
    """
    model = tinct.load_model("zhang-eccv16", pretrained=False)
    gray = test_image(size)
    rgb = np.dstack([gray] * 3)
    from tinct.engine.threads import call_threads

    cpu = torch.device("cpu")

    def ref():  # same thread policy as tinct's pipeline, for a fair comparison
        with call_threads(POLICY["num_threads"], cpu):
            reference_pipeline(model, rgb)

    c = Colorizer(model, device="cpu", **POLICY)

    def ours():
        c.clear_cache()
        c.colorize(gray)

    ref(), ours()
    ref_ts, our_ts = [], []
    for _ in range(repeat):
        for fn, ts in ((ref, ref_ts), (ours, our_ts)):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    ref_t, ours_t = statistics.median(ref_ts), statistics.median(our_ts)
    ratios = sorted(r / o for r, o in zip(ref_ts, our_ts, strict=True))
    lum = torch.rand(1, 1, 256, 256) * 100
    with torch.inference_mode(), call_threads(POLICY["num_threads"], cpu):
        ref_fwd = timeit(lambda: model(lum), 3)
        our_fwd = timeit(lambda: forward_once(c, lum), 3)
    res = {
        "size": size,
        "repeats": repeat,
        "reference_s": round(ref_t, 3),
        "tinct_s": round(ours_t, 3),
        "speedup": round(ref_t / ours_t, 2),
        "speedup_pairs_min_max": (round(ratios[0], 2), round(ratios[-1], 2)),
        "precision": str(c.dtype).removeprefix("torch."),
        "reference_network_s": round(ref_fwd, 3),
        "tinct_network_s": round(our_fwd, 3),
        "speedup_excluding_network": round((ref_t - ref_fwd) / max(ours_t - our_fwd, 1e-6), 2),
    }
    print(f"  reference pipeline vs tinct at {size}^2: {res}", flush=True)
    return res


def forward_once(c: Colorizer, lum: torch.Tensor) -> Any:
    """One network pass exactly as the engine runs it (autocast in the colorizer's precision)."""
    lum = lum.to(c.device)
    reduced = c.dtype != torch.float32
    if reduced:
        lum = lum.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(c.device.type, dtype=c.dtype, enabled=reduced):
        return c.model(lum)


def bench_tiled_vs_untiled(size: int = 1024, pretrained: bool = False) -> dict[str, Any]:
    """Mean |tiled - untiled| (in 1/255 units) at ``size``."""
    c = Colorizer("tinct-base", device="cpu", pretrained=pretrained, **POLICY)
    img = test_image(size)
    untiled = c.colorize(img, options=ColorizeOptions(tile=0)).astype(np.float64)
    res: dict[str, Any] = {"size": size}
    for tile, overlap in ((128, 32), (192, 64)):
        tiled = c.colorize(img, options=ColorizeOptions(tile=tile, tile_overlap=overlap))
        diff = np.abs(tiled.astype(np.float64) - untiled)
        res[f"tile{tile}_overlap{overlap}"] = {
            "mean_abs_diff_255": round(float(diff.mean()), 3),
            "p99_abs_diff_255": round(float(np.percentile(diff, 99)), 1),
        }
    print(f"  tiled vs untiled at {size}^2: {res}", flush=True)
    return res


def huge_case(size: int, device: str, pretrained: bool) -> dict[str, Any]:
    """Body of the subprocess that colorizes a ``size x size`` image (auto tiling)."""
    base = rss_mb()
    c = Colorizer("tinct-base", device=device, pretrained=pretrained, cache_size=1, **POLICY)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = ((np.sin(40 * xx) * 0.25 + yy * 0.5 + 0.2).clip(0, 1) * 255).astype(np.uint8)
    del yy, xx
    t = time.perf_counter()
    out = c.colorize(img)
    e2e = time.perf_counter() - t
    t = time.perf_counter()
    c.colorize(img, temperature=0.5)
    redecode = time.perf_counter() - t
    res = {
        "size": size,
        "device": device,
        "end_to_end_s": round(e2e, 2),
        "redecode_s": round(redecode, 2),
        "forward_calls": c.stats.forward_calls,
        "output": list(out.shape),
        "rss_before_model_mb": round(base, 1),
        "peak_rss_mb": round(rss_mb(), 1),
    }
    if device.startswith("cuda"):
        res["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return res


def run_huge(size: int, device: str, pretrained: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--huge", str(size), "--device", device]
    if POLICY["num_threads"] is None:  # pinned by --threads: same in the subprocess
        cmd += ["--threads", str(torch.get_num_threads())]
    if pretrained:
        cmd.append("--pretrained")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"size": size, "error": proc.stderr.strip().splitlines()[-1:]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  [{device}] {size}^2 (subprocess): {res}", flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="skip the 8192^2 case")
    p.add_argument("--pretrained", action="store_true", help="use trained weights")
    p.add_argument("--json", help="write the results to this file")
    p.add_argument("--huge", type=int, help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--only", choices=("devices", "reference", "tiles", "huge"), action="append")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        POLICY["num_threads"] = None
    if args.huge:
        print(json.dumps(huge_case(args.huge, args.device, args.pretrained)))
        return 0
    only = set(args.only or ("devices", "reference", "tiles", "huge"))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    policy = "auto (1 when busy)" if POLICY["num_threads"] else torch.get_num_threads()
    print(f"torch {torch.__version__}, threads: {policy}, load {os.getloadavg()[0]:.1f}, {devices}")
    results: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    if "devices" in only:
        for dev in devices:
            results[dev] = bench_device(dev, [256, 512, 2048], args.pretrained)
    if "reference" in only:
        results["reference_vs_tinct"] = bench_reference(2048)
    if "tiles" in only:
        results["tiled_vs_untiled"] = bench_tiled_vs_untiled(1024, args.pretrained)
    if "huge" in only and not args.quick:
        results["huge"] = [run_huge(8192, dev, args.pretrained) for dev in devices]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
