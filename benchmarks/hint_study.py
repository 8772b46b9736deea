"""Where tinct-base stands against Levin with hints, and what did not close the gap.

Every study scores with protocol A1 exactly as ``tinct evaluate`` does (images
squashed to 256 x 256, 6 x 6 hint patches from :func:`tinct.training.evaluate.make_hints`
with the same seeds, RGB uint8 PSNR averaged over images), and prints a Markdown
table. The numbers quoted in ``docs/evaluation.md`` ("What did not close the
gap") come from these commands on the 2-core CPU:

``headroom``
    Levin, the network alone (hints as input, fusion head off), the shipped
    fusion, the network without hints plus Levin's propagation of the residual
    at the hints, and two oracles that pick, per pixel or per image, whichever
    of Levin and the network is closer to the truth: how much a perfect gate
    could gain. ``--global-hint`` adds the shipped model fed the histogram of
    the hint colours as its global hint.

``levin``
    The Levin baseline's edge weighting (``sigma_scale``; 1.0 is the paper's
    ``sigma^2`` = local variance): is the 1 dB target an artefact of how the
    baseline is tuned?

``head``
    A richer fusion head trained on frozen tinct-base features: a 3-way softmax
    over the network's colour, Levin's, and the network-without-hints plus
    Levin's residual, with a correction, from the decoder features plus the
    propagated luminance mismatch, the distance to the nearest hint and the
    hint coverage (61 k parameters, dilated 3x3 convolutions, MSE on ab at the
    network's 1/2 resolution). Training samples are precomputed once (backbone
    passes and one multi-column Levin solve per image, ``--workers``
    processes); validation is the run's held-out split (``tinct.training.config.split_indices``)
    with protocol hints.

Usage::

    python benchmarks/hint_study.py headroom --data runs/tune/heldout --limit 96 --global-hint
    python benchmarks/hint_study.py levin --data ../shared/data/eval/bsds500_test
    python benchmarks/hint_study.py head --train ../shared/data/train --samples 1800 --steps 1000

``runs/tune/heldout`` holds links to the training run's held-out images (not in
git); ``heldout_dir`` in ``scripts/tune_defaults.py`` writes it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage
from skimage.color import rgb2lab
from torch import Tensor, nn

from tinct import bins, metrics
from tinct.levin import _solve, levin_colorize
from tinct.models import load_model
from tinct.training.config import split_indices
from tinct.training.datasets import find_images
from tinct.training.evaluate import _lab_to_u8, _resize, make_hints

AB = 110.0  # ab normalisation of the study head's inputs


def protocol_images(
    paths: list[Path], n: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(rgb 256 uint8, lab, hint_ab (H, W, 2), hint_mask (H, W))`` per image.

    Hints are seeded by position, as ``tinct evaluate`` run on these images in order.
    """
    for i, p in enumerate(paths):
        rgb = _resize(np.asarray(Image.open(p).convert("RGB")), (256, 256))
        lab = rgb2lab(rgb)
        hints = make_hints(lab, n, np.random.default_rng([0, i, n]))
        hint_ab, mask = hints.maps(lab.shape[:2])
        yield rgb, lab, hint_ab, mask


def score(
    rgb: np.ndarray, lum: np.ndarray, ab: np.ndarray, hint_ab: np.ndarray, mask: np.ndarray
) -> float:
    """PSNR of ``L + ab`` with the exact hints put back (as the engine does)."""
    ab = np.array(ab, dtype=np.float64)
    ab[mask] = hint_ab[mask]
    return metrics.psnr(_lab_to_u8(lum, ab), rgb)


def _tensors(
    lum: np.ndarray, hint_ab: np.ndarray, mask: np.ndarray
) -> tuple[Tensor, Tensor, Tensor]:
    m = torch.from_numpy(mask).float()[None, None]
    ab = torch.from_numpy(hint_ab).float().permute(2, 0, 1)[None] * m
    return torch.from_numpy(lum).float()[None, None], ab, m


def _up(ab: Tensor, size: tuple[int, int] = (256, 256)) -> np.ndarray:
    out = F.interpolate(ab.float(), size=size, mode="bilinear", align_corners=False)
    return out[0].detach().permute(1, 2, 0).numpy().astype(np.float64)


def _network(model: nn.Module, *args: Tensor | None) -> Tensor:
    """The model's ab with its fusion head switched off (the network alone)."""
    head, model.fusion_head = model.fusion_head, None
    try:
        return model(*args).ab
    finally:
        model.fusion_head = head


def hint_histogram(ab: np.ndarray) -> Tensor:
    """``(1, 314)`` global hint: hard 313-bin histogram of hint colours ``(N, 2)``, then 1."""
    centres = bins.gamut_bins().numpy()
    idx = ((ab[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    hist = np.bincount(idx, minlength=len(centres)) / len(idx)
    return torch.tensor(np.concatenate((hist, [1.0])), dtype=torch.float32)[None]


@torch.no_grad()
def headroom(args: argparse.Namespace) -> None:
    model = load_model("tinct-base").float().eval()
    paths = find_images([args.data])[: args.limit or None]
    rows: dict[str, list[float]] = {}
    for rgb, lab, hint_ab, mask in protocol_images(paths, args.hints):
        lum, truth = lab[..., 0], lab[..., 1:]
        L, hab, hm = _tensors(lum, hint_ab, mask)
        cands = {
            "levin": levin_colorize(lum, hint_ab, mask),
            "network alone (hints as input)": _up(_network(model, L, hab, hm)),
            "tinct-base (shipped fusion)": _up(model(L, hab, hm).ab),
        }
        auto = _up(_network(model, L))
        cands["network without hints + Levin of the residual"] = auto + levin_colorize(
            lum, hint_ab - auto, mask
        )
        if args.global_hint:
            g = hint_histogram(hint_ab[mask])
            cands["tinct-base + hint colours as global hint"] = _up(model(L, hab, hm, g).ab)
        for name, ab in cands.items():
            rows.setdefault(name, []).append(score(rgb, lum, ab, hint_ab, mask))
        lev, net = cands["levin"], cands["network alone (hints as input)"]
        closer = (((lev - truth) ** 2).sum(-1) < ((net - truth) ** 2).sum(-1))[..., None]
        rows.setdefault("oracle per pixel (levin or network)", []).append(
            score(rgb, lum, np.where(closer, lev, net), hint_ab, mask)
        )
        best = max(rows["levin"][-1], rows["network alone (hints as input)"][-1])
        rows.setdefault("oracle per image (levin or network)", []).append(best)
    _table(f"{len(paths)} images, {args.hints} hints", rows)


def levin_weighting(args: argparse.Namespace) -> None:
    paths = find_images([args.data])[: args.limit or None]
    rows: dict[str, list[float]] = {}
    for rgb, lab, hint_ab, mask in protocol_images(paths, args.hints):
        lum = lab[..., 0]
        for s in args.sigma_scales:
            ab = levin_colorize(lum, hint_ab, mask, sigma_scale=s)
            rows.setdefault(f"levin, sigma_scale {s:g}", []).append(
                score(rgb, lum, ab, hint_ab, mask)
            )
    _table(f"{len(paths)} images, {args.hints} hints", rows)


def _table(title: str, rows: dict[str, list[float]]) -> None:
    print(f"| {title} | PSNR (dB) |\n|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {np.mean(values):.2f} |")


# --- the richer fusion head -------------------------------------------------------


def _train_hints(lab: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """1-128 patches (log-uniform), side 6 or 2-9 px, centred-normal or uniform positions."""
    h, w = lab.shape[:2]
    n = round(float(np.exp(rng.uniform(0, np.log(128)))))
    side = 6 if rng.random() < 0.5 else int(rng.integers(2, 10))
    ry, rx = h - side + 1, w - side + 1
    if rng.random() < 0.5:
        rows = np.clip(np.round(rng.normal(ry / 2, ry / 4, n)), 0, ry - 1).astype(int)
        cols = np.clip(np.round(rng.normal(rx / 2, rx / 4, n)), 0, rx - 1).astype(int)
    else:
        rows, cols = rng.integers(0, ry, n), rng.integers(0, rx, n)
    hint_ab, mask = np.zeros((h, w, 2)), np.zeros((h, w), dtype=bool)
    for r, c in zip(rows, cols, strict=True):
        patch = (slice(r, r + side), slice(c, c + side))
        hint_ab[patch] = lab[patch][..., 1:].reshape(-1, 2).mean(0)
        mask[patch] = True
    return hint_ab, mask


@torch.no_grad()
def head_features(
    model: nn.Module, lum: np.ndarray, hint_ab: np.ndarray, mask: np.ndarray
) -> Tensor:
    """``(44, 128, 128)`` float16: decoder features, three candidates' inputs, cues."""
    L, hab, hm = _tensors(lum, hint_ab, mask)
    feats: dict[str, Tensor] = {}
    hook = model.dec1.register_forward_hook(lambda m, i, o: feats.__setitem__("d1", o))
    try:
        ab = _network(model, L, hab, hm)
    finally:
        hook.remove()
    auto = _network(model, L)
    values = np.concatenate((hint_ab, lum[..., None], _up(auto, lum.shape)), -1)
    prop = _solve(lum, values, mask, 0.1, 0.02)  # a, b, L, auto a, auto b: one factorisation
    dist = ndimage.distance_transform_edt(~mask)[..., None]
    cues = np.concatenate((prop, dist, mask[..., None], lum[..., None]), -1)
    cues_t = torch.from_numpy(cues).float().permute(2, 0, 1)[None]
    cues_t = F.adaptive_avg_pool2d(cues_t, ab.shape[-2:])
    return torch.cat((feats["d1"], ab, auto, cues_t), 1)[0].half()


def _prepare(job: tuple[list[str], list[int], str]) -> str:
    """Worker: features and 128 x 128 target ab for training images, saved to a file."""
    paths, seeds, out = job
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    model = load_model("tinct-base").float().eval()
    xs, ys = [], []
    for k, (p, seed) in enumerate(zip(paths, seeds, strict=True)):
        rng = np.random.default_rng([seed, k])
        rgb = _resize(np.asarray(Image.open(p).convert("RGB")), (256, 256))
        if rng.random() < 0.5:
            rgb = np.ascontiguousarray(rgb[:, ::-1])
        lab = rgb2lab(rgb)
        hint_ab, mask = _train_hints(lab, rng)
        xs.append(head_features(model, lab[..., 0], hint_ab, mask))
        target = torch.from_numpy(lab[..., 1:]).float().permute(2, 0, 1)[None]
        ys.append(F.adaptive_avg_pool2d(target, (128, 128))[0].half())
    torch.save({"x": torch.stack(xs), "y": torch.stack(ys)}, out)
    return out


class StudyHead(nn.Module):
    """3-way softmax over (network, Levin, network-without-hints + residual) plus a correction."""

    def __init__(self, width: int = 48):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(44, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=4, dilation=4),
            nn.ReLU(),
            nn.Conv2d(width, 5, 1),
        )
        with torch.no_grad():  # start at sigmoid-like 0.9 Levin, as the shipped head
            self.net[-1].weight.zero_()
            self.net[-1].bias.copy_(torch.tensor([0.0, 3.0, 0.0, 0.0, 0.0]))

    def forward(self, x: Tensor) -> Tensor:
        x = x.float()
        d1, ab, auto, prop = x[:, :32], x[:, 32:34], x[:, 34:36], x[:, 36:38]
        lprop, auto_prop, dist, cover, lum = (
            x[:, 38:39],
            x[:, 39:41],
            x[:, 41:42],
            x[:, 42:43],
            x[:, 43:44],
        )
        resid = auto + prop - auto_prop
        inp = torch.cat(
            (
                d1,
                ab / AB,
                auto / AB,
                prop / AB,
                resid / AB,
                (lum - lprop) / 20,
                torch.log1p(dist) / 4,
                cover,
                lum / 100,
            ),
            1,
        )
        out = self.net(inp)
        weights = torch.softmax(out[:, :3], 1)[:, :, None]
        cands = torch.stack((ab, prop, resid), 1)
        return (weights * cands).sum(1) + out[:, 3:] * 10


def head(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    paths = find_images([args.train])
    held, train = split_indices(len(paths), 0.02, 0)
    order = np.random.default_rng(0).permutation(train)[: args.samples]
    chunks = np.array_split(order, args.workers)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(args.workers) as pool:
        jobs = [
            ([str(paths[i]) for i in c], [int(i) for i in c], f"{tmp}/{w}.pt")
            for w, c in enumerate(chunks)
        ]
        parts = [torch.load(f, weights_only=True) for f in pool.map(_prepare, jobs)]
    x = torch.cat([p["x"] for p in parts])
    y = torch.cat([p["y"] for p in parts])
    print(f"prepared {len(x)} samples in {time.perf_counter() - t0:.0f} s")

    model = load_model("tinct-base").float().eval()
    val_paths = [paths[i] for i in held[: args.val]]
    val = []
    for rgb, lab, hint_ab, mask in protocol_images(val_paths, args.hints):
        val.append(
            (rgb, lab[..., 0], hint_ab, mask, head_features(model, lab[..., 0], hint_ab, mask))
        )

    def validate(net: nn.Module) -> float:
        with torch.no_grad():
            return float(
                np.mean([score(r, lum, _up(net(f[None])), h, m) for r, lum, h, m, f in val])
            )

    study = StudyHead()
    shipped = float(
        np.mean(
            [score(r, lum, _up(model(*_tensors(lum, h, m)).ab), h, m) for r, lum, h, m, _ in val]
        )
    )
    print(f"| step | loss | held-out PSNR at {args.hints} hints |\n|---|---|---|")
    print(f"| shipped head | - | {shipped:.2f} |")
    print(f"| 0 (study head at init) | - | {validate(study):.2f} |")
    opt = torch.optim.Adam(study.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, args.lr, total_steps=args.steps, pct_start=0.05
    )
    g = torch.Generator().manual_seed(0)
    crop = 96
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(x), (16,), generator=g)
        r, c = torch.randint(0, 129 - crop, (2,), generator=g).tolist()
        pred = study(x[idx, :, r : r + crop, c : c + crop])
        loss = F.mse_loss(pred, y[idx, :, r : r + crop, c : c + crop].float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % args.every == 0 or step == args.steps:
            print(f"| {step} | {loss.item():.1f} | {validate(study):.2f} |", flush=True)


def main() -> None:
    warnings.filterwarnings("ignore")  # lab2rgb's clipped-Z notes
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="study", required=True)
    p = sub.add_parser("headroom")
    p.add_argument("--data", required=True)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--hints", type=int, default=10)
    p.add_argument("--global-hint", action="store_true")
    p = sub.add_parser("levin")
    p.add_argument("--data", required=True)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--hints", type=int, default=10)
    p.add_argument("--sigma-scales", type=float, nargs="+", default=[1.0, 0.3, 0.1, 0.03])
    p = sub.add_parser("head")
    p.add_argument("--train", required=True)
    p.add_argument("--samples", type=int, default=1800)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--val", type=int, default=96)
    p.add_argument("--hints", type=int, default=10)
    p.add_argument("--every", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(2)
    {"headroom": headroom, "levin": levin_weighting, "head": head}[args.study](args)


if __name__ == "__main__":
    main()
