"""Adapting a model to a new domain: held-out scoring and palette matching.

Two pieces of :func:`tinct.finetune`, each one pass of the network over a set
of colour examples:

* :func:`scorer` measures held-out automatic PSNR (256 px, uint8 RGB, as
  protocol A1) for every automatic decoder a model has, decoded exactly as the
  engine decodes (``coherent`` with the regression colour as its fallback);
* :func:`match_palette` is a prior correction for a new domain: it shifts the
  output biases of a compact-family model so that its average prediction has
  the colour statistics of the training examples.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from tinct.models.targets import get_target
from tinct.training.colour_examples import even

__all__ = [
    "CANDIDATE_DECODERS",
    "MAX_MATCHED",
    "MAX_SCORED",
    "SCORE_KEY",
    "match_palette",
    "palette_pieces",
    "scorer",
]

#: Most held-out pieces scored at each validation, and training pieces whose palette is
#: matched (evenly chosen beyond that).
MAX_SCORED = 64
MAX_MATCHED = 256
#: Share of a fine-tune's time budget that matching the palette may take.
PALETTE_SHARE = 0.25
#: The metric :func:`scorer` reports as the model's score (the best decoder's PSNR).
SCORE_KEY = "psnr_auto"

#: Automatic decoders a fine-tuned model is scored with (those its head has); the best
#: becomes its default. ``coherent`` falls back on the regression colour, as in the engine.
CANDIDATE_DECODERS = ("coherent", "annealed_mean", "ab")


def _automatic_colours(out: Any, cfg: Any, centres: torch.Tensor) -> dict[str, torch.Tensor]:
    """The automatic chrominance of each candidate decoder from one network output."""
    from tinct.decode import coherent_mean, decode

    found = {}
    if out.logits is not None and get_target(cfg.target).gamut:
        logits = out.logits.float()
        t = cfg.default_temperature
        for name in dict.fromkeys((cfg.default_decoder, *CANDIDATE_DECODERS[:-1])):
            if name == "coherent":
                fallback = None if out.ab is None else out.ab.float()
                found[name] = coherent_mean(logits, centres, t, fallback=fallback)
            elif name not in ("ab", "regression"):
                found[name] = decode(logits, centres, name, temperature=t)
    if out.ab is not None:
        found["ab"] = out.ab.float()
    return found


def scorer(images: np.ndarray, indices: list[int], device: torch.device) -> Callable[..., Any]:
    """``score(model, cancel=None) -> metrics``: held-out automatic PSNR (256 px, uint8 RGB).

    Metrics: ``psnr_auto_<decoder>`` for each candidate decoder, ``psnr_auto``
    (the best of them) and ``psnr_gray``. A ``cancel`` flag (:mod:`tinct.cancel`) is
    checked between two batches; a validation inside training passes none (there
    Cancel ends the run at the next step and keeps the best weights).

    Weights scored once are not scored again (:func:`_fingerprint`): training validates
    its starting weights, which the fine-tune has just scored, and a run that took no
    step validates them once more at its end; each pass costs seconds on a CPU.
    """
    from tinct.bins import gamut_bins
    from tinct.cancel import check
    from tinct.color import lab_to_rgb, rgb_to_lab

    scored = even(indices, MAX_SCORED)
    centres = gamut_bins(device=device)
    remembered: dict[tuple[Any, ...], dict[str, float]] = {}  # the weights scored already

    @torch.no_grad()
    def score(model: torch.nn.Module, cancel: Any = None) -> dict[str, float]:
        cfg = model.record.config  # type: ignore[union-attr]
        if cfg.color_space != "lab" or not get_target(cfg.target).validates_in_lab:  # type: ignore[arg-type, union-attr]
            return {}  # scored in CIELAB over the 313 gamut bins only: keep the last weights
        weights = (model.training, *_fingerprint(model))
        if weights in remembered:
            return dict(remembered[weights])
        sums: dict[str, float] = {}
        for start in range(0, len(scored), 8):
            check(cancel)
            chunk = scored[start : start + 8]
            rgb = torch.from_numpy(np.stack([images[i] for i in chunk])).to(device)
            rgb = rgb.permute(0, 3, 1, 2).float() / 255.0
            lab = rgb_to_lab(rgb)
            lum = lab[:, :1]
            zeros = torch.zeros_like(lab[:, 1:])
            out = model(lum, zeros, zeros[:, :1], None)
            preds = {"gray": zeros, **_automatic_colours(out, cfg, centres)}
            truth = (rgb * 255).round()
            for name, ab in preds.items():
                ab = torch.nn.functional.interpolate(
                    ab, size=lum.shape[-2:], mode="bilinear", align_corners=False
                )
                pred = (lab_to_rgb(torch.cat((lum, ab), 1)) * 255).round()
                mse = (pred - truth).pow(2).flatten(1).mean(1).clamp_min(1e-10)
                key = "psnr_gray" if name == "gray" else f"psnr_auto_{name}"
                sums[key] = sums.get(key, 0.0) + float((10 * torch.log10(255.0**2 / mse)).sum())
        found = {k: v / len(scored) for k, v in sums.items()}
        found[SCORE_KEY] = max(v for k, v in found.items() if k.startswith("psnr_auto_"))
        remembered[weights] = found
        return dict(found)

    return score


def _fingerprint(model: torch.nn.Module) -> tuple[str, ...]:
    """Which weights a model has: a digest of its state's bytes (the layout aside)."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)  # any dtype
        digest.update(raw.numpy().tobytes())
    return (digest.hexdigest(),)


def palette_pieces(budget_s: float, score_s: float, scored: int) -> int:
    """How many training examples matching the palette may use in its share of a budget.

    One pass of matching costs less per example than one of scoring (one decoder, no
    conversion back to RGB), so the scoring's time per example bounds it: a folder of
    hundreds under a half-minute budget is matched on a few dozen, not on 256.

    Args:
        budget_s: The fine-tune's time budget in seconds (0: none).
        score_s: Seconds that scoring ``scored`` held-out examples took.
        scored: How many examples that scoring used.

    Returns:
        Between 8 and :data:`MAX_MATCHED` (the most, without a budget).
    """
    if budget_s <= 0 or score_s <= 0 or scored <= 0:
        return MAX_MATCHED
    return int(min(MAX_MATCHED, max(8, PALETTE_SHARE * budget_s * scored / score_s)))


@torch.no_grad()
def match_palette(
    model: torch.nn.Module,
    images: np.ndarray,
    indices: Sequence[int],
    device: torch.device,
    cancel: Any = None,
    limit: int = MAX_MATCHED,
) -> bool:
    """Shift a compact-family model's output biases to the colours of training examples.

    A prior correction for a new domain (label shift): the bias of the 313-bin
    head gets ``log p_examples - log p_model`` (the examples' bin histogram at
    the logits' resolution against the model's mean predicted distribution,
    both floored at 1e-4), and the regression head's pre-``tanh`` bias the
    difference of the ``atanh`` of the mean ab. Afterwards the model's average
    automatic prediction on the examples has their palette; training refines
    from there. Models other than :class:`~tinct.models.tinct_base.TinctUNet`
    with the 313 gamut bins are left alone.

    Args:
        model: The network (modified in place).
        images: ``(N, S, S, 3)`` uint8 examples.
        indices: The training examples among them (at most ``limit`` are used,
            evenly spread).
        device: Where the model runs.
        cancel: Object with ``is_set()`` (:mod:`tinct.cancel`), checked between two
            batches (the model is then left as it was).
        limit: Most examples used (:func:`palette_pieces` fits them to a time budget).

    Returns:
        True if the biases were shifted.

    Raises:
        tinct.cancel.Cancelled: ``cancel`` was set.
    """
    from tinct.bins import encode_hard, gamut_bins
    from tinct.cancel import check
    from tinct.color import rgb_to_lab
    from tinct.models.tinct_base import AB_NORM, TinctUNet

    cfg = getattr(getattr(model, "record", None), "config", None)
    if not isinstance(model, TinctUNet) or cfg is None or not get_target(cfg.target).gamut:
        return False
    if cfg.color_space != "lab" or not indices:
        return False
    centres = gamut_bins(device=device)
    p_model = torch.zeros(313, dtype=torch.float64, device=device)
    counts = torch.zeros(313, dtype=torch.float64, device=device)
    ab_model = torch.zeros(2, dtype=torch.float64, device=device)
    ab_true = torch.zeros(2, dtype=torch.float64, device=device)
    was_training = model.training
    model.eval()
    chosen = even(list(indices), max(1, limit))
    for start in range(0, len(chosen), 8):
        if cancel is not None and cancel.is_set():
            model.train(was_training)
            check(cancel)
        chunk = chosen[start : start + 8]
        rgb = torch.from_numpy(np.stack([images[i] for i in chunk])).to(device)
        lab = rgb_to_lab(rgb.permute(0, 3, 1, 2).float() / 255.0)
        zeros = torch.zeros_like(lab[:, 1:])
        out = model(lab[:, :1], zeros, zeros[:, :1], None)
        p_model += torch.softmax(out.logits.float(), 1).sum((0, 2, 3)).double()
        small = torch.nn.functional.adaptive_avg_pool2d(lab[:, 1:], out.logits.shape[-2:])
        counts += torch.bincount(encode_hard(small, centres).flatten(), minlength=313).double()
        ab_model += out.ab.float().mean((2, 3)).sum(0).double()
        ab_true += lab[:, 1:].mean((2, 3)).sum(0).double()
    model.train(was_training)
    p_model, p_true = p_model / p_model.sum(), counts / counts.sum()
    model.class_head.bias += (torch.log(p_true + 1e-4) - torch.log(p_model + 1e-4)).float()  # type: ignore[operator]
    n = len(chosen) * AB_NORM
    lo, hi = (torch.atanh((v / n).clamp(-0.99, 0.99)) for v in (ab_model, ab_true))
    model.ab_head.bias += (hi - lo).float()  # type: ignore[operator]
    return True
