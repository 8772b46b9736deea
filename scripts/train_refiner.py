"""Train tinct-base's hint refiner (tinct.models.hint_refiner) on the engine's own output.

Three steps, each a sub-command (the model card in docs/models.md gives the run)::

    # 1. features and targets of training photos outside the held-out split, through the
    #    engine's whole hint path with protocol hints (2-60, log-uniform); about 1 s a photo
    python scripts/train_refiner.py capture --train ../shared/data/train --start 0 --count 600 \
        --out runs/refine/tr0.pt
    # held-out validation captures at the protocol's own hints (as `tinct evaluate` seeds them)
    python scripts/train_refiner.py capture --data runs/tune/heldout --hints 10 --count 60 \
        --out runs/refine/val10.pt
    # 2. training; PSNR on the validation captures every --every steps, a checkpoint each time
    python scripts/train_refiner.py train --samples runs/refine/tr0.pt runs/refine/tr1.pt \
        --val runs/refine/val10.pt --steps 1500 --out runs/refine/rf
    # 3. the chosen checkpoint into the package's tinct-base file (prints sha256 and size)
    python scripts/train_refiner.py ship --weights src/tinct/weights/tinct-base.safetensors \
        --checkpoint runs/refine/rf_250.pt

The validation PSNR adds the refiner's change on the 128 px grid, upsampled bilinearly, to the
engine's 256 px result (within 0.02 dB of ``tinct evaluate`` with the refiner in the engine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

import tinct.engine.fusion as fusion
from tinct.engine.colorizer import Colorizer
from tinct.engine.hint_refine import hint_cues
from tinct.engine.hints import Hint
from tinct.models.hint_refiner import HintRefiner, trunk_norm
from tinct.training.config import split_indices
from tinct.training.datasets import find_images
from tinct.training.evaluate import _resize, make_hints

SIDE = 256


def _colorizer() -> tuple[Colorizer, dict]:
    """tinct-base in the engine, with its refiner off and the fused colour recorded."""
    col = Colorizer("tinct-base", device="cpu")
    col.model.refine_head = None  # the engine's colour *before* any refiner
    seen: dict = {}
    refuse = fusion.refuse

    def recording(terms, ab, pull=None, shift=None):
        out = refuse(terms, ab, pull, shift)
        seen["refuse"] = (ab, shift, out)
        return out

    fusion.refuse = recording
    feats: list = []
    col.model.dec1.register_forward_hook(lambda m, i, o: feats.append(o.detach()))
    seen["feats"] = feats
    return col, seen


def _sample(col: Colorizer, seen: dict, rgb: np.ndarray, n: int, rng: np.random.Generator):
    """``(x (46, h, w), engine output (256, 256, 3) in [0, 1], hint_ab, mask)`` of one photo."""
    lab = rgb2lab(rgb)
    hints = make_hints(lab, n, rng)
    half = hints.size / 2.0
    hs = [
        Hint(float(r) + half - 0.5, float(c) + half - 0.5, ab=(float(a), float(b)), size=hints.size)
        for r, c, (a, b) in zip(hints.rows, hints.cols, hints.ab, strict=True)
    ]
    col.clear_cache()
    seen["feats"].clear()
    out = np.asarray(col.colorize(rgb, hints=hs))[..., :3]
    out = out / 255.0 if out.dtype == np.uint8 else out.astype(np.float64)
    net = next(e.net for e in col._cache.values() if e.net.patches)
    decoded, shift, fused = seen["refuse"]
    terms = net.fusion
    prop = terms.propagated if shift is None else terms.propagated + shift
    size = tuple(fused.shape[-2:])
    x = torch.cat((seen["feats"][0], fused, decoded, prop, net.auto_ab, hint_cues(net, size)), 1)
    hint_ab, mask = hints.maps(lab.shape[:2])
    return x[0].float(), out, hint_ab.astype(np.float32), mask


def _target(rgb: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    ab = torch.from_numpy(rgb2lab(rgb)[..., 1:]).float().permute(2, 0, 1)[None]
    return F.adaptive_avg_pool2d(ab, size)[0]


def capture(args: argparse.Namespace) -> None:
    col, seen = _colorizer()
    if args.train:
        paths = find_images([args.train])
        _, train = split_indices(len(paths), 0.02, 0)
        order = np.random.default_rng(1).permutation(train)[args.start : args.start + args.count]
        jobs = [(paths[i], None) for i in order]
    else:
        jobs = [(p, args.hints) for p in find_images([args.data])[: args.count]]
    records, t0 = [], time.time()
    for k, (path, hints) in enumerate(jobs):
        rgb = _resize(np.asarray(Image.open(path).convert("RGB")), (SIDE, SIDE))
        if hints is None:  # training: a flip and a random count
            rng = np.random.default_rng([0, args.start + k])
            if rng.random() < 0.5:
                rgb = np.ascontiguousarray(rgb[:, ::-1])
            n = round(float(np.exp(rng.uniform(np.log(2), np.log(60)))))
        else:  # validation: the protocol's seeds
            rng, n = np.random.default_rng([0, k, hints]), hints
        x, out, hint_ab, mask = _sample(col, seen, rgb, n, rng)
        rec = {"x": x.half(), "y": _target(rgb, tuple(x.shape[-2:])).half()}
        if hints is not None:
            rec.update(out=out, rgb=rgb, hint_ab=hint_ab, mask=mask)
        records.append(rec)
        if k % 50 == 0:
            print(f"{k} images, {time.time() - t0:.0f} s", flush=True)
    torch.save(records, args.out)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(1.0 / mse))


def _split(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return x[:, :32], x[:, 32:34], x[:, 34:36], x[:, 36:38], x[:, 38:40], x[:, 40:46]


@torch.no_grad()
def validate(head: HintRefiner, val: list[dict]) -> tuple[float, float]:
    """Mean PSNR of the engine's result without and with the refiner."""
    base, refined = [], []
    for r in val:
        x = r["x"][None].float()
        delta = head(*_split(x)) - x[:, 32:34]
        up = F.interpolate(delta, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
        lab = rgb2lab(r["out"])
        lab[..., 1:] += up[0].permute(1, 2, 0).numpy()
        lab[..., 1:][r["mask"]] = r["hint_ab"][r["mask"]]
        truth = r["rgb"] / 255.0
        base.append(_psnr(np.round(r["out"] * 255) / 255, truth))
        refined.append(_psnr(np.round(np.clip(lab2rgb(lab), 0, 1) * 255) / 255, truth))
    return float(np.mean(base)), float(np.mean(refined))


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    recs = [r for f in args.samples for r in torch.load(f, weights_only=True)]
    x = torch.stack([r["x"] for r in recs])
    y = torch.stack([r["y"] for r in recs])
    val = [r for f in args.val for r in torch.load(f, weights_only=False)]
    head = HintRefiner()
    print(f"{len(x)} samples; validation without / with: {validate(head, val)}", flush=True)
    opt = torch.optim.Adam(head.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, args.lr, total_steps=args.steps, pct_start=0.05
    )
    g = torch.Generator().manual_seed(0)
    crop, side = args.crop, x.shape[-1]
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(x), (args.batch,), generator=g)
        r, c = torch.randint(0, side - crop + 1, (2,), generator=g).tolist()
        xb = x[idx, :, r : r + crop, c : c + crop].float()
        yb = y[idx, :, r : r + crop, c : c + crop].float()
        mse = (head(*_split(xb)) - yb).pow(2).mean((1, 2, 3))
        loss = torch.log1p(mse).mean()  # per crop, like PSNR per image
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % args.every == 0 or step == args.steps:
            print(f"step {step}: loss {loss.item():.3f}, {validate(head, val)}", flush=True)
            torch.save(head.state_dict(), f"{args.out}_{step}.pt")


def ship(args: argparse.Namespace) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from tinct.models.tinct_base import TinctUNet

    with safe_open(args.weights, framework="pt") as f:
        meta = dict(f.metadata() or {})
    state = {k: v for k, v in load_file(args.weights).items() if not k.startswith("refine_head.")}
    trunk = TinctUNet(fusion=True)
    trunk.load_state_dict({k: v.float() for k, v in state.items()})
    head = HintRefiner()
    missing, unexpected = head.load_state_dict(
        torch.load(args.checkpoint, weights_only=True), strict=False
    )
    assert not unexpected and set(missing) <= {"trunk_norm"}, (missing, unexpected)
    head.trunk_norm.fill_(trunk_norm(trunk.dec1))
    for k, v in head.state_dict().items():  # float16 like the rest; the fingerprint float32
        state[f"refine_head.{k}"] = (v.float() if k == "trunk_norm" else v.half()).contiguous()
    kwargs = json.loads(meta.get("builder_kwargs", "{}"))
    meta["builder_kwargs"] = json.dumps({**kwargs, "refiner": True}, sort_keys=True)
    meta["refiner"] = json.dumps({"checkpoint": Path(args.checkpoint).name, "note": args.note})
    save_file(state, args.weights, metadata=meta)
    data = Path(args.weights).read_bytes()
    print(f"sha256={hashlib.sha256(data).hexdigest()} size={len(data)}")


def main() -> None:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("capture")
    p.add_argument("--train", help="training folder (photos outside its held-out split)")
    p.add_argument("--data", help="validation folder (with --hints)")
    p.add_argument("--hints", type=int, default=10)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--count", type=int, default=600)
    p.add_argument("--out", required=True)
    p = sub.add_parser("train")
    p.add_argument("--samples", nargs="+", required=True)
    p.add_argument("--val", nargs="+", required=True)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--out", required=True)
    p = sub.add_parser("ship")
    p.add_argument("--weights", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--note", default="docs/models.md, tinct-base's refiner")
    args = ap.parse_args()
    {"capture": capture, "train": train, "ship": ship}[args.step](args)


if __name__ == "__main__":
    main()
