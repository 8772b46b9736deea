"""Measured performance report: runs the benchmarks, plots them and writes docs/performance.md.

Runs every benchmark script of this folder as a subprocess with ``--json``
(``bench_core``, ``bench_engine``, ``bench_bridge``, ``bench_batch`` and, under a
display or ``xvfb-run``, ``bench_napari``), measures end-to-end time against pixel
count itself, and collects everything with a description of the machine into
``OUT/performance.json``. Plots go to ``OUT/`` (and, with ``--write-docs``, to
``docs/images/perf-*.png`` with the measured section of ``docs/performance.md``
regenerated between its ``BEGIN MEASURED`` / ``END MEASURED`` markers).

Usage::

    python benchmarks/performance_report.py --write-docs          # full run, ~6-8 min on 2 cores
    python benchmarks/performance_report.py --quick --out /tmp/p  # smaller sizes, ~2 min
    python benchmarks/performance_report.py --from-json out/performance/performance.json \\
        --write-docs                                              # re-plot, re-write the docs only
    python benchmarks/performance_report.py --quick --only series --sizes 128 256 --repeats 1

Models use random weights unless ``--pretrained`` is given (timings do not
depend on the weights). ``--threads`` (default: every core) pins torch's
intra-op thread count in the engine and core benchmarks and in the pixel-count
series, so the results do not depend on the load-dependent ``"auto"`` policy
(``--threads auto`` keeps that policy).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOC = ROOT / "docs" / "performance.md"
DOC_IMAGES = ROOT / "docs" / "images"
BEGIN, END = "<!-- BEGIN MEASURED -->", "<!-- END MEASURED -->"
BENCHMARKS = ("core", "engine", "bridge", "batch", "napari", "series")
XVFB = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"]


# ----------------------------------------------------------------------------- machine


def machine_info(threads: int | str) -> dict[str, Any]:
    """CPU, memory, torch and CUDA description of this machine, with the date.

    Args:
        threads: The thread setting the benchmarks run with (a count or ``"auto"``).

    Returns:
        A JSON-serialisable dictionary.
    """
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    try:
        commit = (
            subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            or None
        )
    except OSError:
        commit = None
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_default_threads": torch.get_num_threads(),
        "benchmark_threads": threads,
        "cuda_device": cuda,
        "load_average_start": round(os.getloadavg()[0], 2),
        "git_commit": commit,
    }


def machine_line(m: dict[str, Any]) -> str:
    """One-line description of the machine of a report (for figures and captions)."""
    gpu = m.get("cuda_device") or "no GPU"
    return (
        f"{m['cpu_model']}, {m['cpu_count']} cores, {m.get('memory_gb')} GB, {gpu}; "
        f"torch {m['torch']}, threads {m['benchmark_threads']}; {m['date']}"
    )


# ----------------------------------------------------------------------------- subprocesses


def _display(cmd: list[str]) -> str:
    """``cmd`` as a copyable shell line with ``python`` and repository-relative paths."""
    out = []
    for part in cmd:
        if part == sys.executable:
            part = "python"
        elif part.startswith(str(ROOT) + os.sep):
            part = os.path.relpath(part, ROOT)
        out.append(part)
    return shlex.join(out)


def benchmark_commands(args: argparse.Namespace) -> dict[str, list[str]]:
    """The argument lists (without ``--json``) of the subprocess benchmarks."""
    py = sys.executable
    thr = [] if args.threads == "auto" else ["--threads", str(args.threads)]
    pre = ["--pretrained"] if args.pretrained else []
    cores = os.cpu_count() or 1
    workers = [str(w) for w in (1, 2, 4, 8, 16) if w <= max(cores, 2)]
    if args.quick:
        core = ["--size", "1024", "--mrf-sizes", "64", "128", "256", "--iterations", "2"]
        core += ["--repeats", "1"]
        bridge = ["--size", "1024", "--repeat", "2"]
        batch = ["--images", "8"]
        napari = ["--size", "512", "--repeats", "3"]
    else:
        core = ["--size", "4096", "--mrf-sizes", "64", "128", "256", "512", "--iterations", "3"]
        core += ["--repeats", "3"]
        bridge = ["--size", "4096", "--repeat", "5"]
        batch = ["--images", "32"]
        napari = ["--size", "1024", "--repeats", "10"]
    cmds = {
        "core": [py, str(HERE / "bench_core.py"), *core, *thr],
        # 8192^2 is measured once, by the pixel-count series: --quick skips it here
        "engine": [py, str(HERE / "bench_engine.py"), "--quick", *thr, *pre],
        "bridge": [py, str(HERE / "bench_bridge.py"), *bridge],
        "batch": [
            *[py, str(HERE / "bench_batch.py"), *batch, "--size", "256"],
            *["--workers", *workers, "--model", args.model, *pre],
        ],
        "napari": [py, str(HERE / "bench_napari.py"), *napari, "--model", args.model],
    }
    if not os.environ.get("DISPLAY"):
        if shutil.which("xvfb-run"):
            cmds["napari"] = XVFB + cmds["napari"]
        else:
            del cmds["napari"]
    return cmds


def run_benchmark(name: str, cmd: list[str], out: Path, timeout: float) -> dict[str, Any]:
    """Run one benchmark script with ``--json`` and return its record.

    Args:
        name: Short name (``core``, ``engine``, ...).
        cmd: Argument list without ``--json``.
        out: Report folder; the raw JSON goes to ``out/raw``, the output to ``out/logs``.
        timeout: Seconds before the benchmark is stopped.

    Returns:
        ``{"command", "wall_s", "returncode", "result" | "error"}``.
    """
    raw = out / "raw" / f"{name}.json"
    log = out / "logs" / f"{name}.log"
    raw.unlink(missing_ok=True)
    rec: dict[str, Any] = {"command": _display(cmd)}
    print(f"[{name}] {rec['command']}", flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [*cmd, "--json", str(raw)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )
        rc, text = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        parts = [
            x.decode(errors="replace") if isinstance(x, bytes) else x or ""
            for x in (e.stdout, e.stderr)
        ]
        rc, text = None, "".join(parts) + f"\ntimed out after {timeout} s"
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    rec["returncode"] = rc
    log.write_text(text)
    if rc == 0 and raw.exists():
        rec["result"] = json.loads(raw.read_text())
    else:
        tail = [ln for ln in text.strip().splitlines() if ln.strip()][-1:]
        rec["error"] = tail[0] if tail else f"exit code {rc}"
        print(f"[{name}] FAILED: {rec['error']} (log: {log})", flush=True)
    print(f"[{name}] {rec['wall_s']} s", flush=True)
    return rec


# ----------------------------------------------------------------------------- series


def linear_fit(pixels: list[float], times: list[float]) -> dict[str, float]:
    """Least-squares ``time = a + b * pixels`` with R² and the largest relative residual.

    Args:
        pixels: Pixel counts.
        times: Times in seconds.

    Returns:
        ``a_s``, ``b_s_per_mpixel``, ``r2`` and ``max_rel_residual``.
    """
    x, y = np.asarray(pixels, float), np.asarray(times, float)
    b, a = np.polyfit(x, y, 1)
    pred = a + b * x
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {
        "a_s": float(a),
        "b_s_per_mpixel": float(b * 1e6),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0,
        "max_rel_residual": float(np.max(np.abs(y - pred) / y)),
        "points": len(x),
    }


def pixel_series(args: argparse.Namespace) -> dict[str, Any]:
    """End-to-end ``Colorizer.colorize`` time against pixel count, on each device.

    Sizes run in ascending order; each is timed ``repeats`` times after one
    warm-up call (the largest side of 8192 or more only once, without warm-up),
    with the result cache cleared before every call. ``peak_rss_mb`` is the
    process peak after the size, i.e. the peak of the largest size so far.
    """
    import torch

    sys.path.insert(0, str(HERE))
    from bench_engine import test_image

    from tinct.engine.colorizer import Colorizer
    from tinct.engine.forward import AUTO_TILE_PIXELS

    threads = "auto" if args.threads == "auto" else int(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    res: dict[str, Any] = {
        "model": args.model,
        "pretrained": args.pretrained,
        "num_threads": threads,
        "auto_tile_pixels": AUTO_TILE_PIXELS,
        "devices": {},
    }
    t_start = time.perf_counter()
    for dev in devices:
        c = Colorizer(args.model, device=dev, pretrained=args.pretrained, num_threads=threads)
        c.colorize(test_image(64))
        rows = []
        for side in args.sizes:
            img = test_image(side)
            once = side >= 8192
            n = 1 if once else args.repeats
            times, calls = [], 0
            for i in range(n + (0 if once else 1)):
                c.clear_cache()
                f0 = c.stats.forward_calls
                if dev == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                c.colorize(img)
                if dev == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter() - t0
                calls = c.stats.forward_calls - f0
                if once or i > 0:
                    times.append(t)
            row = {
                "side": side,
                "pixels": side * side,
                "repeats": len(times),
                "median_s": statistics.median(times),
                "min_s": min(times),
                "max_s": max(times),
                "network_calls": calls,
                "tiled": side * side > AUTO_TILE_PIXELS,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
            if dev == "cuda":
                row["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            rows.append(row)
            print(f"  [series {dev}] {side}^2: {row}", flush=True)
            del img
        d: dict[str, Any] = {"rows": rows}
        if len(rows) >= 2:
            d["fit"] = linear_fit([r["pixels"] for r in rows], [r["median_s"] for r in rows])
        untiled = [r for r in rows if not r["tiled"]]
        if 2 <= len(untiled) < len(rows):
            d["fit_untiled"] = linear_fit(
                [r["pixels"] for r in untiled], [r["median_s"] for r in untiled]
            )
        res["devices"][dev] = d
    res["wall_s"] = round(time.perf_counter() - t_start, 1)
    return res


# ----------------------------------------------------------------------------- plots


def _footer(fig: Any, report: dict[str, Any]) -> None:
    fig.text(
        0.01,
        0.01,
        f"{machine_line(report['machine'])}\n$ {report['command']}",
        fontsize=6.5,
        color="0.35",
        va="bottom",
    )


def _log_axes(ax: Any) -> None:
    """Log-log axes with plain numbers (0.5, 2, 100) as tick labels."""
    from matplotlib import ticker

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=30))
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(ticker.NullFormatter())
    ax.grid(True, which="both", alpha=0.3)


def make_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    """Write the ``perf-*.png`` figures of ``report`` into ``folder``.

    Args:
        report: The content of ``performance.json``.
        folder: Destination folder (created when missing).

    Returns:
        The files written (figures whose data is missing are skipped).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    colours = {"cpu": "tab:blue", "cuda": "tab:orange"}

    series = report.get("series")
    if series and series.get("devices"):
        fig, ax = plt.subplots(figsize=(7, 5))
        for dev, d in series["devices"].items():
            rows = d["rows"]
            x = np.array([r["pixels"] / 1e6 for r in rows])
            y = np.array([r["median_s"] for r in rows])
            err = [y - [r["min_s"] for r in rows], [r["max_s"] for r in rows] - y]
            col = colours.get(dev, "tab:green")
            ax.errorbar(x, y, yerr=err, fmt="o", color=col, capsize=3, label=f"{dev} (median)")
            tiled = [r["tiled"] for r in rows]
            if any(tiled):
                ax.plot(
                    x[tiled],
                    y[tiled],
                    "s",
                    mfc="none",
                    ms=12,
                    color=col,
                    label=f"{dev}: auto-tiled",
                )
            if "fit" in d:
                f = d["fit"]
                xs = np.geomspace(x.min(), x.max(), 100)
                ax.plot(
                    xs,
                    f["a_s"] + f["b_s_per_mpixel"] * xs,
                    "-",
                    color=col,
                    alpha=0.6,
                    label=f"{dev} fit: {f['a_s']:.3f} s + {1e3 * f['b_s_per_mpixel']:.1f} ms"
                    f" x Mpixels,  R² = {f['r2']:.4f}",
                )
            for r in rows:
                ax.annotate(
                    f"{r['side']}²",
                    (r["pixels"] / 1e6, r["median_s"]),
                    fontsize=7,
                    xytext=(4, -10),
                    textcoords="offset points",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_axes(ax)
        ax.set_xlabel("megapixels")
        ax.set_ylabel("end-to-end time (s)")
        w = "trained" if series.get("pretrained") else "random"
        ax.set_title(f"{series['model']} end-to-end Colorizer.colorize time ({w} weights)")
        ax.legend(fontsize=7, loc="upper left")
        fig.subplots_adjust(bottom=0.18, left=0.12)
        _footer(fig, report)
        written.append(folder / "perf-time-vs-pixels.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    core = _result(report, "core")
    mrf_rows = [r for r in (core or {}).get("rows", []) if r["op"] == "mrf.smooth"]
    if mrf_rows:
        fig, ax = plt.subplots(figsize=(7, 5))
        for dev in sorted({r["device"] for r in mrf_rows}):
            rows = [r for r in mrf_rows if r["device"] == dev]
            x = np.array([r["size"] ** 2 / 1e6 for r in rows])
            y = np.array([r["ms_per_iteration"] for r in rows])
            col = colours.get(dev, "tab:green")
            ax.plot(x, y, "o-", color=col, label=dev)
            ax.plot(
                x,
                y[-1] * x / x[-1],
                ":",
                color=col,
                alpha=0.6,
                label=f"{dev}: proportional to pixels",
            )
            for r, xi, yi in zip(rows, x, y, strict=True):
                ax.annotate(
                    f"{r['size']}²",
                    (xi, yi),
                    fontsize=7,
                    xytext=(4, -10),
                    textcoords="offset points",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_axes(ax)
        ax.set_xlabel("megapixels (313 colour bins each)")
        ax.set_ylabel("ms per MRF iteration")
        ax.set_title("tinct.mrf.smooth: time per iteration")
        ax.legend(fontsize=8)
        fig.subplots_adjust(bottom=0.18, left=0.12)
        _footer(fig, report)
        written.append(folder / "perf-mrf.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    batch = _result(report, "batch")
    if batch and batch.get("rows"):
        rows = batch["rows"]
        serial = [r for r in rows if r["workers"] == 0]
        dask_rows = [r for r in rows if r["workers"] > 0]
        fig, ax = plt.subplots(figsize=(7, 5))
        x = [r["workers"] for r in dask_rows]
        y = [r["images_per_s"] for r in dask_rows]
        ax.plot(x, y, "o-", label="tinct batch (Dask LocalCluster)")
        if dask_rows:
            ax.plot(x, [y[0] * w / x[0] for w in x], ":", color="0.5", label="ideal scaling")
        if serial:
            ax.axhline(
                serial[0]["images_per_s"], ls="--", color="tab:red", label="serial, in one process"
            )
        ax.set_xticks(x)
        ax.set_xlabel("worker processes (1 torch thread each)")
        ax.set_ylabel("images / s")
        ax.set_ylim(bottom=0)
        w = "trained" if batch.get("pretrained") else "random"
        ax.set_title(
            f"tinct batch throughput: {batch['images']} images of {batch['size']}², "
            f"{batch['model']} ({w} weights)"
        )
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.subplots_adjust(bottom=0.18, left=0.12)
        _footer(fig, report)
        written.append(folder / "perf-batch.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


# ----------------------------------------------------------------------------- markdown


def _result(report: dict[str, Any], name: str) -> dict[str, Any] | None:
    return (report.get("benchmarks", {}).get(name) or {}).get("result")


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return [*out, ""]


def _cmd(report: dict[str, Any], name: str) -> str:
    rec = report.get("benchmarks", {}).get(name) or {}
    return f"`{rec['command']} --json ...`" if rec.get("command") else ""


def _figure(report: dict[str, Any], file: str, alt: str) -> list[str]:
    m = report["machine"]
    return [
        f"![{alt}](images/{file})",
        "",
        f"*Figure: `{file}`, made by `{report['command']}` on {machine_line(m)}.*",
        "",
    ]


def markdown(report: dict[str, Any]) -> str:
    """The measured section of ``docs/performance.md`` (between the markers)."""
    m = report["machine"]
    L: list[str] = [
        f"_Generated by `{report['command']}` ({report.get('total_wall_s', '?')} s in all). "
        "Do not edit by hand: re-run the command._",
        "",
        "### Machine",
        "",
    ]
    L += _table(
        ["", ""],
        [
            ["date", m["date"]],
            ["CPU", f"{m['cpu_model']}, {m['cpu_count']} cores (`os.cpu_count()`)"],
            ["memory", f"{m.get('memory_gb')} GB"],
            ["GPU", m.get("cuda_device") or "none (GPU rows are absent)"],
            ["torch", f"{m['torch']}, {m['torch_default_threads']} threads by default"],
            ["benchmark threads", f"{m['benchmark_threads']}"],
            [
                "load average (1 min) before / after",
                f"{m['load_average_start']} / {m.get('load_average_end', '?')}",
            ],
            ["platform", f"{m['platform']}, Python {m['python']}"],
            ["tinct commit", f"`{m.get('git_commit')}`"],
        ],
    )
    failed = [
        f"* `{n}`: **failed** ({r.get('error')}); see `logs/{n}.log` in the report folder."
        for n, r in report.get("benchmarks", {}).items()
        if "error" in r
    ]
    skipped = list(report.get("skipped", []))
    if failed or skipped:
        L += failed
        L += [f"* `{n}`: not run ({report['skipped_why'].get(n, '')})." for n in skipped]
        L.append("")

    series = report.get("series")
    if series and series.get("devices"):
        w = "trained" if series.get("pretrained") else "random"
        L += ["### End-to-end time against pixel count", ""]
        L += [
            f"`Colorizer('{series['model']}', num_threads={series['num_threads']!r})` "
            f"({w} weights) on a resized gray astronaut; median of the repeats after one "
            "warm-up call, result cache cleared before every call; 8192² runs once. Images above "
            f"{round(series['auto_tile_pixels'] ** 0.5)}² pixels are auto-tiled, with a larger "
            "network input, so the network cost grows there too.",
            "",
        ]
        for dev, d in series["devices"].items():
            rows = []
            for r in d["rows"]:
                rows.append(
                    [
                        f"{r['side']}²",
                        f"{r['pixels'] / 1e6:.2f}",
                        r["repeats"],
                        f"{r['median_s']:.3f}",
                        f"{r['min_s']:.3f} – {r['max_s']:.3f}",
                        f"{1e3 * r['median_s'] / (r['pixels'] / 1e6):.1f}",
                        r["network_calls"],
                        f"{r['peak_rss_mb']:.0f}",
                    ]
                )
            L += [f"**{dev}**", ""]
            L += _table(
                [
                    "image",
                    "Mpixels",
                    "runs",
                    "median s",
                    "min – max s",
                    "ms / Mpixel",
                    "network calls",
                    "peak RSS MiB (so far)",
                ],
                rows,
            )
            for key, what in (("fit", "all sizes"), ("fit_untiled", "untiled sizes only")):
                if key in d:
                    f = d[key]
                    L.append(
                        f"* Linear fit, {what} ({f['points']} points): time = "
                        f"{f['a_s']:.3f} s + {1e3 * f['b_s_per_mpixel']:.1f} ms per Mpixel; "
                        f"R² = {f['r2']:.4f}; largest relative residual "
                        f"{100 * f['max_rel_residual']:.0f} %."
                    )
            L.append("")
        L += _figure(report, "perf-time-vs-pixels.png", "end-to-end time against pixel count")

    eng = _result(report, "engine")
    if eng:
        L += ["### Engine (`bench_engine.py`)", "", f"Command: {_cmd(report, 'engine')}", ""]
        for dev in ("cpu", "cuda"):
            if dev not in eng:
                continue
            rows = [
                [
                    f"{s}²",
                    v["end_to_end_s"],
                    v["first_call_s"],
                    v["redecode_ms"],
                    v["mrf_extra_ms"],
                    v["tracemalloc_peak_mb"],
                ]
                for s, v in eng[dev].items()
                if isinstance(v, dict)
            ]
            L += [
                f"**{dev}**: network forward at 256² {eng[dev]['forward_256_ms']} ms; "
                f"process max RSS {eng[dev]['max_rss_mb']} MiB.",
                "",
            ]
            L += _table(
                [
                    "image",
                    "end to end s",
                    "first call s",
                    "re-decode ms (temperature)",
                    "MRF extra ms (5 it.)",
                    "tracemalloc peak MiB",
                ],
                rows,
            )
        ref = eng.get("reference_vs_tinct")
        if ref:
            L += [
                f"* Reference `colorizers` demo pipeline vs tinct, same `zhang-eccv16` network, "
                f"{ref['size']}², CPU, medians of {ref.get('repeats', 7)} alternating runs: "
                f"{ref['reference_s']} s vs {ref['tinct_s']} s (**{ref['speedup']}x**, per-pair "
                f"ratios {ref['speedup_pairs_min_max'][0]}-{ref['speedup_pairs_min_max'][1]}x). "
                f"The network takes {ref['reference_network_s']} s of the reference (float32) "
                f"and {ref['tinct_network_s']} s of tinct ({ref['precision']}); excluding it "
                f"tinct is {ref['speedup_excluding_network']}x faster."
            ]
        tiles = eng.get("tiled_vs_untiled")
        if tiles:
            parts = [
                f"{k.replace('tile', 'tile ').replace('_overlap', ', overlap ')}: mean "
                f"{v['mean_abs_diff_255']}, p99 {v['p99_abs_diff_255']}"
                for k, v in tiles.items()
                if isinstance(v, dict)
            ]
            L.append(
                f"* Tiled vs untiled at {tiles['size']}², |difference| in 1/255: "
                + "; ".join(parts)
                + "."
            )
        L.append("")

    core = _result(report, "core")
    if core:
        L += ["### Colour conversion and MRF (`bench_core.py`)", ""]
        L += [f"Command: {_cmd(report, 'core')} ({core['torch_threads']} torch threads)", ""]
        rows = [
            [r["op"], r["device"], f"{r['size']}²", f"{r['ms']:.1f}", ""]
            for r in core["rows"]
            if r["op"] != "mrf.smooth"
        ]
        rows += [
            [
                f"mrf.smooth ({r['iterations']} it.)",
                r["device"],
                f"{r['size']}² x 313",
                f"{r['ms_per_iteration']:.1f} per iteration",
                f"{1e3 * r['ms_per_iteration'] / r['size'] ** 2:.2f}",
            ]
            for r in core["rows"]
            if r["op"] == "mrf.smooth"
        ]
        L += _table(["operation", "device", "size", "ms", "µs / pixel"], rows)
        L += _figure(report, "perf-mrf.png", "MRF time per iteration against size")

    br = _result(report, "bridge")
    if br:
        L += ["### GIMP bridge overhead (`bench_bridge.py`)", ""]
        L += [f"Command: {_cmd(report, 'bridge')}", ""]
        L += [
            f"A {br['size']}x{br['size']} RGBA layer ({br['mib_each_way']} MiB each way) through "
            f"the real client and server with an identity colorizer, {br['repeats']} runs after a "
            f"warm-up: round trip median {br['round_trip_median_s']:.3f} s "
            f"(min {br['round_trip_min_s']:.3f}); bridge overhead (round trip minus engine time) "
            f"median {br['overhead_median_s']:.3f} s (min {br['overhead_min_s']:.3f}; "
            "target ≤ 1 s).",
            "",
        ]

    ba = _result(report, "batch")
    if ba:
        w = "trained" if ba.get("pretrained") else "random"
        L += ["### Batch throughput (`bench_batch.py`)", ""]
        L += [
            f"Command: {_cmd(report, 'batch')}. {ba['images']} generated images of "
            f"{ba['size']}², `{ba['model']}` ({w} weights), {ba['threads_per_worker']} torch "
            "thread(s) per worker; cold start = cluster start-up + model load + first call, "
            "excluded from the timed run.",
            "",
        ]
        rows = [
            [
                r["run"],
                "-" if r["cold_start_s"] is None else f"{r['cold_start_s']:.1f}",
                f"{r['time_s']:.2f}",
                f"{r['images_per_s']:.1f}",
                f"{r['speedup']:.2f}x",
            ]
            for r in ba["rows"]
        ]
        L += _table(["run", "cold start s", "time s", "images/s", "vs serial"], rows)
        L += _figure(report, "perf-batch.png", "batch throughput against workers")

    na = _result(report, "napari")
    if na:
        L += ["### napari Live temperature change (`bench_napari.py`)", ""]
        L += [f"Command: {_cmd(report, 'napari')}", ""]
        L += [
            f"{na['size']}x{na['size']} image, `{na['model']}` (pretrained={na['pretrained']}), "
            f"{na['torch_threads']} torch threads: slider moved -> output layer updated in a "
            f"median {na['latency_median_ms']:.0f} ms (min {na['latency_min_ms']:.0f}, max "
            f"{na['latency_max_ms']:.0f}) over {na['changes']} changes, "
            f"{na['network_passes_during_changes']} network passes; the engine re-decode alone "
            f"takes a median {na['engine_redecode_median_ms']:.0f} ms. First run "
            f"{na['first_run_s']:.2f} s.",
            "",
        ]
    return "\n".join(L).rstrip() + "\n"


def write_docs(report: dict[str, Any], doc: Path = DOC) -> None:
    """Replace the text between the markers of ``doc`` with :func:`markdown`.

    Raises:
        SystemExit: ``doc`` lacks the markers.
    """
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: markers {BEGIN} / {END} not found")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n\n{markdown(report)}\n{END}{tail}")


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "out" / "performance", help="report folder")
    p.add_argument("--quick", action="store_true", help="smaller sizes, no 8192² (development)")
    p.add_argument("--model", default="tinct-base", help="model of the series, batch and napari")
    p.add_argument("--pretrained", action="store_true", help="trained weights (else random)")
    p.add_argument("--threads", default=str(os.cpu_count() or 1), help="torch threads or 'auto'")
    p.add_argument("--sizes", type=int, nargs="+", help="image sides of the pixel-count series")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per series size")
    p.add_argument("--only", choices=BENCHMARKS, action="append", help="run only these parts")
    p.add_argument("--timeout", type=float, default=600, help="seconds per benchmark script")
    p.add_argument(
        "--write-docs",
        action="store_true",
        help="also write docs/images/perf-*.png and docs/performance.md",
    )
    p.add_argument("--from-json", type=Path, help="plot/write an existing performance.json")
    args = p.parse_args(argv)

    if args.from_json:
        report = json.loads(args.from_json.read_text())
        out = args.from_json.parent
    else:
        if args.sizes is None:
            args.sizes = [256, 512, 1024, 2048, 4096] + ([] if args.quick else [8192])
        args.sizes = sorted(args.sizes)
        out = args.out
        (out / "raw").mkdir(parents=True, exist_ok=True)
        (out / "logs").mkdir(parents=True, exist_ok=True)
        shown = ["python", "benchmarks/performance_report.py"]
        shown += argv if argv is not None else sys.argv[1:]
        report = {
            "command": shlex.join(shown),
            "machine": machine_info(args.threads),
            "benchmarks": {},
            "skipped": [],
            "skipped_why": {},
        }
        if args.threads != "auto":
            import torch

            torch.set_num_threads(int(args.threads))
        t0 = time.perf_counter()
        cmds = benchmark_commands(args)
        only = set(args.only or BENCHMARKS)
        for name in BENCHMARKS:
            if name not in only:
                continue
            if name == "series":
                print("[series] end-to-end time against pixel count", flush=True)
                report["series"] = pixel_series(args)
            elif name in cmds:
                report["benchmarks"][name] = run_benchmark(name, cmds[name], out, args.timeout)
            else:
                report["skipped"].append(name)
                report["skipped_why"][name] = "no display and no xvfb-run"
            (out / "performance.json").write_text(json.dumps(report, indent=2))
        report["total_wall_s"] = round(time.perf_counter() - t0, 1)
        report["machine"]["load_average_end"] = round(os.getloadavg()[0], 2)
        (out / "performance.json").write_text(json.dumps(report, indent=2))
        print(f"wrote {out / 'performance.json'} ({report['total_wall_s']} s)", flush=True)

    for f in make_plots(report, out):
        print(f"wrote {f}")
    (out / "performance.md").write_text(markdown(report))
    print(f"wrote {out / 'performance.md'}")
    if args.write_docs:
        for f in make_plots(report, DOC_IMAGES):
            print(f"wrote {f}")
        write_docs(report)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
