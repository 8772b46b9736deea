"""Evaluation: the SIGGRAPH17 hint-sweep protocol and full-resolution metrics.

Protocol A1 (reference §4): every image is resized to 256 x 256, L comes
from that image, ``N`` random 6 x 6 hint patches carry the ground-truth mean
ab of the patch (positions normal around the centre with a quarter of the
side as standard deviation, clipped), and PSNR is computed on RGB uint8
over the whole image, then averaged over images. Hint positions are seeded
per image, so every method sees the same hints and reruns agree.

Besides PSNR at 256 px this module reports full-resolution PSNR (hints
mapped to the original image), the AuC of the cumulative ab-error curve,
colourfulness (relative to the ground truth) and the saturation difference.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinct.training.datasets import find_images
from tinct.training.eval_files import read_all as _read_all

__all__ = [
    "BASELINES",
    "EvalConfig",
    "HintSet",
    "evaluate",
    "make_hints",
    "method_for",
]

PATCH = 6
SIDE = 256


@dataclass(frozen=True)
class HintSet:
    """Simulated user hints for one image at the protocol's resolution.

    Attributes:
        rows: ``(N,)`` top rows of the patches (pixels of the 256 image).
        cols: ``(N,)`` left columns.
        ab: ``(N, 2)`` mean ground-truth ab of each patch.
        size: Patch side in pixels.
    """

    rows: np.ndarray
    cols: np.ndarray
    ab: np.ndarray
    size: int = PATCH

    def maps(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Rasterise to ``(hint_ab (H, W, 2), hint_mask (H, W) bool)``."""
        hint_ab = np.zeros((*shape, 2))
        mask = np.zeros(shape, dtype=bool)
        for r, c, ab in zip(self.rows, self.cols, self.ab, strict=True):
            hint_ab[r : r + self.size, c : c + self.size] = ab
            mask[r : r + self.size, c : c + self.size] = True
        return hint_ab, mask


def make_hints(lab: np.ndarray, n: int, rng: np.random.Generator, size: int = PATCH) -> HintSet:
    """Draw ``n`` protocol hints from a ground-truth Lab image.

    Args:
        lab: ``(H, W, 3)`` CIELAB ground truth.
        n: Number of hints.
        rng: Seeded generator.
        size: Patch side.

    Returns:
        The hint set.
    """
    h, w = lab.shape[:2]
    ry, rx = h - size + 1, w - size + 1
    rows = np.clip(np.round(rng.normal(ry / 2, ry / 4, n)), 0, ry - 1).astype(int)
    cols = np.clip(np.round(rng.normal(rx / 2, rx / 4, n)), 0, rx - 1).astype(int)
    ab = np.array(
        [
            lab[r : r + size, c : c + size, 1:].reshape(-1, 2).mean(0)
            for r, c in zip(rows, cols, strict=True)
        ]
    ).reshape(n, 2)
    return HintSet(rows, cols, ab, size)


#: A method maps (gray-ish RGB uint8 image whose L is used, hints, Lab ground truth
#: for shape only) to an RGB uint8 result.
Method = Callable[[np.ndarray, HintSet], np.ndarray]


def _lab_to_u8(lum: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """CIELAB to sRGB uint8, out-of-gamut colours clipped without skimage's warning.

    Levin's propagation can reach colours outside sRGB; the clip is the intended
    result, so skimage's "negative Z values ... clipped" note is not shown
    (``tinct evaluate`` printed it with a source line for every such image).
    """
    from skimage.color import lab2rgb

    from tinct.engine.thread_warnings import collect_warnings

    lab = np.concatenate((lum[..., None], ab), axis=-1)
    with collect_warnings(UserWarning):  # dropped; thread-safe, unlike catch_warnings
        rgb = lab2rgb(lab)
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def _lum(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(rgb)[..., 0]


def _gray(rgb: np.ndarray, hints: HintSet) -> np.ndarray:
    lum = _lum(rgb)
    return _lab_to_u8(lum, np.zeros((*lum.shape, 2)))


def _levin(rgb: np.ndarray, hints: HintSet) -> np.ndarray:
    from tinct.levin import levin_colorize

    lum = _lum(rgb)
    hint_ab, mask = hints.maps(lum.shape)
    return _lab_to_u8(lum, levin_colorize(lum, hint_ab, mask))


#: Baselines that need no model: ``gray`` (ab = 0) and ``levin`` (Levin et al. 2004).
BASELINES: dict[str, Method] = {"gray": _gray, "levin": _levin}


def method_for(name: str, *, device: str = "cpu", options: Any = None) -> Method:
    """A method for a baseline name, a registered model or a weights file.

    Models run through :class:`tinct.Colorizer` exactly as users run them, with
    ``options`` (a :class:`tinct.ColorizeOptions`; its ``model`` is replaced by
    ``name``); hints become :class:`tinct.Hint` patches of the protocol's size and ab.
    """
    if name in BASELINES:
        return BASELINES[name]
    from tinct.engine.colorizer import Colorizer
    from tinct.engine.hints import Hint
    from tinct.engine.options import ColorizeOptions

    opts = (options or ColorizeOptions()).replace(model=name, device=device)
    colorizer = Colorizer.from_options(opts)

    def run(rgb: np.ndarray, hints: HintSet) -> np.ndarray:
        half = hints.size / 2.0
        hs = [
            Hint(
                float(r) + half - 0.5,
                float(c) + half - 0.5,
                ab=(float(a), float(b)),
                size=hints.size,
            )
            for r, c, (a, b) in zip(hints.rows, hints.cols, hints.ab, strict=True)
        ]
        out = colorizer.colorize(rgb, hints=hs, options=opts)
        return np.asarray(out)[..., :3]

    return run


@dataclass
class EvalConfig:
    """Settings of one evaluation run.

    Attributes:
        models: Baselines (``gray``, ``levin``), registry names or weights files.
        data: Folders of colour images.
        hints: Hint counts to sweep.
        out: Report folder (Markdown, CSV, plot, example grid).
        limit: Evaluate only the first ``limit`` images (0 = all).
        seed: Hint seed.
        full_res: Also measure PSNR at the original resolution.
        device: Torch device for the models.
        options: :class:`tinct.ColorizeOptions` for every model (decoder,
            temperature, MRF, ...; its ``model`` and ``device`` are ignored);
            ``None`` = each model's defaults.
        examples: Number of images in the example grid.
    """

    models: list[str] = field(default_factory=lambda: ["gray", "levin", "tinct-base"])
    data: list[str] = field(default_factory=list)
    hints: list[int] = field(default_factory=lambda: [0, 1, 10, 100])
    out: str = "eval-report"
    limit: int = 0
    seed: int = 0
    full_res: bool = True
    device: str = "cpu"
    options: Any = None
    examples: int = 4


def model_label(name: str) -> str:
    """Row label of a model: a weights file is named by its file stem."""
    return Path(name).stem if name.endswith((".safetensors", ".pth")) else name


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize(size[::-1], Image.Resampling.BICUBIC))


def _scale_hints(hints: HintSet, shape: tuple[int, int]) -> HintSet:
    sy, sx = shape[0] / SIDE, shape[1] / SIDE
    size = max(1, round(hints.size * (sy + sx) / 2))
    rows = np.clip(np.round(hints.rows * sy), 0, shape[0] - size).astype(int)
    cols = np.clip(np.round(hints.cols * sx), 0, shape[1] - size).astype(int)
    return HintSet(rows, cols, hints.ab, size)


def evaluate(cfg: EvalConfig, log: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """Run the protocol and write the report; returns ``{row label: metrics}``.

    Row labels are ``"<model> @ <N> hints"``. Metrics: ``psnr`` (256 px),
    ``psnr_full`` (original size), ``auc`` (ab-error AuC, a fraction in [0, 1]), ``colourfulness``
    (Hasler & Suesstrunk; mean over the set of the outputs' divided by the mean
    of the ground truths'), ``false_colour`` (share of pixels with chroma > 10
    where the truth is near-neutral or > 90 degrees away in hue,
    :func:`tinct.metrics.false_colour_rate`), ``sat_diff`` (saturation
    difference, %), ``seconds``.
    """
    from skimage.color import rgb2lab

    from tinct import metrics

    paths = find_images(cfg.data)
    if cfg.limit:
        paths = paths[: cfg.limit]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    paths, images = _read_all(paths, log)
    small = [_resize(im, (SIDE, SIDE)) for im in images]
    labs = [rgb2lab(im) for im in small]
    hint_sets = {
        n: [
            make_hints(lab, n, np.random.default_rng([cfg.seed, i, n]))
            for i, lab in enumerate(labs)
        ]
        for n in cfg.hints
    }
    results: dict[str, dict[str, float]] = {}
    examples: dict[str, list[np.ndarray]] = {}
    for name in cfg.models:
        method = method_for(name, device=cfg.device, options=cfg.options)
        for n in cfg.hints:
            if name == "levin" and n == 0:
                continue  # needs hints: identical to gray
            acc: dict[str, list[float]] = {
                k: []
                for k in ("psnr", "psnr_full", "auc", "colourfulness", "false_colour", "sat_diff")
            }
            truth_colourfulness: list[float] = []
            t0 = time.perf_counter()
            for i, (im, sm, lab) in enumerate(zip(images, small, labs, strict=True)):
                hints = hint_sets[n][i]
                pred = method(sm, hints)
                pred_ab = rgb2lab(pred)[..., 1:]
                acc["psnr"].append(metrics.psnr(pred, sm))
                acc["auc"].append(metrics.auc_ab(pred_ab, lab[..., 1:]))
                acc["colourfulness"].append(metrics.colourfulness(pred))
                truth_colourfulness.append(metrics.colourfulness(sm))
                acc["false_colour"].append(metrics.false_colour_rate(pred_ab, lab[..., 1:]))
                acc["sat_diff"].append(metrics.saturation_difference(pred, sm))
                if cfg.full_res:
                    full = method(im, _scale_hints(hints, im.shape[:2]))
                    acc["psnr_full"].append(metrics.psnr(full, im))
                if i < cfg.examples and n in (0, 10):
                    examples.setdefault(f"{model_label(name)} @ {n}", []).append(pred)
            row = {k: float(np.mean(v)) for k, v in acc.items() if v}
            # set-level ratio (mean over the set of the output's / of the truth's)
            row["colourfulness"] /= max(float(np.mean(truth_colourfulness)), 1e-6)
            row["seconds"] = time.perf_counter() - t0
            label = f"{model_label(name)} @ {n} hints"
            results[label] = row
            log(f"{label}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    _write_report(cfg, results, out, len(paths))
    _plot(cfg, results, out)
    _grid(small[: cfg.examples], examples, out)
    return results


def _write_report(
    cfg: EvalConfig, results: dict[str, dict[str, float]], out: Path, n_images: int
) -> None:
    cols = ["psnr", "psnr_full", "auc", "colourfulness", "false_colour", "sat_diff", "seconds"]
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "hints", *cols])
        for label, row in results.items():
            name, n = label.rsplit(" @ ", 1)
            w.writerow([name, n.split()[0], *(f"{row.get(c, float('nan')):.4f}" for c in cols)])
    lines = [
        "# tinct evaluation report",
        "",
        f"Data: {', '.join(cfg.data)} ({n_images} images); protocol A1 (256 x 256, "
        f"random {PATCH}x{PATCH} ground-truth hints, seed {cfg.seed}).",
        "",
        "| model | hints | PSNR 256 (dB) | PSNR full (dB) | AuC ab | colourfulness / GT "
        "| false colour | saturation diff (%) | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, row in results.items():
        name, n = label.rsplit(" @ ", 1)
        cells = [
            (f"{100 * row[c]:.1f} %" if c == "false_colour" else f"{row[c]:.2f}")
            if c in row
            else "-"
            for c in cols
        ]
        lines.append(f"| {name} | {n.split()[0]} | " + " | ".join(cells) + " |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2))


def _plot(cfg: EvalConfig, results: dict[str, dict[str, float]], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is optional (extra "train")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in cfg.models:
        pts = [
            (n, results[f"{model_label(name)} @ {n} hints"]["psnr"])
            for n in cfg.hints
            if f"{model_label(name)} @ {n} hints" in results
        ]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot([max(x, 0.5) for x in xs], ys, marker="o", label=model_label(name))
    ax.set_xscale("log")
    ax.set_xlabel("number of hints (0 plotted at 0.5)")
    ax.set_ylabel("PSNR (dB), 256 x 256")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "psnr_vs_hints.png", dpi=100)
    plt.close(fig)


def _grid(truth: Sequence[np.ndarray], examples: dict[str, list[np.ndarray]], out: Path) -> None:
    from PIL import Image

    if not truth or not examples:
        return
    rows = [np.concatenate(list(truth), axis=1)]
    for preds in examples.values():
        if len(preds) == len(truth):
            rows.append(np.concatenate(preds, axis=1))
    grid = np.concatenate(rows, axis=0)
    Image.fromarray(grid).resize((grid.shape[1] // 2, grid.shape[0] // 2)).save(
        out / "examples.png"
    )
    (out / "examples.txt").write_text(
        "rows: ground truth, " + ", ".join(k for k, v in examples.items() if len(v) == len(truth))
    )
