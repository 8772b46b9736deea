"""Choosing a training run's checkpoint on held-out protocol metrics, not on the loss.

A run with snapshots (``tinct train --snapshot-every M``, ``TrainConfig.snapshot_minutes``)
leaves ``<out>/snapshots/step_<N>.safetensors`` files. :func:`score_snapshots` runs
protocol A1 (:mod:`tinct.training.evaluate`: 256 x 256, the model sees gray, 6 x 6
ground-truth hints) on the run's *held-out* images -- the ones the run never trained
on, from the same seeded split (:func:`held_out_images`) -- for the starting weights
and every snapshot, and :func:`choose` applies one rule:

    the highest mean of automatic and 10-hint PSNR among the snapshots whose automatic
    false-colour rate is at most 9 % (else the lowest false-colour rate);
    a snapshot that does not beat the starting weights by that mean is not shipped.

The CPU script ``scripts/choose_snapshot.py`` and the GPU script ``scripts/gpu/train.py``
both use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_FALSE_COLOUR",
    "beats",
    "choose",
    "held_out_images",
    "protocol_scores",
    "score_snapshots",
]

#: Largest automatic false-colour rate a chosen snapshot may have (issue 15's target).
MAX_FALSE_COLOUR = 0.09


def held_out_images(
    data: str | Path | Sequence[str | Path], fraction: float = 0.02, seed: int = 0
) -> list[Path]:
    """The images a run on ``data`` held out (its ``val_fraction`` and ``seed``).

    Args:
        data: The run's image folders (``TrainConfig.data``).
        fraction: ``TrainConfig.val_fraction``.
        seed: ``TrainConfig.seed``.

    Returns:
        The held-out image paths, in the run's order. The run splits the images it could
        read; with unreadable files in ``data`` (named in the run's log) the two splits
        differ, so remove those files first.
    """
    from tinct.training.config import split_indices
    from tinct.training.datasets import find_images

    paths = find_images(data)
    held, _ = split_indices(len(paths), fraction, seed)
    return [paths[i] for i in held]


def protocol_scores(results: dict[str, dict[str, float]], label: str) -> dict[str, float]:
    """The figures :func:`choose` reads, from :func:`tinct.training.evaluate.evaluate` rows.

    Args:
        results: ``{"<label> @ <N> hints": metrics}`` with rows for 0 and 10 hints.
        label: The model's row label (:func:`tinct.training.evaluate.model_label`).

    Returns:
        ``psnr_auto``, ``psnr_10`` (dB), ``colourful_auto`` (ratio to the truth's) and
        ``false_auto`` (share of pixels, in ``[0, 1]``).
    """
    auto, hinted = results[f"{label} @ 0 hints"], results[f"{label} @ 10 hints"]
    return {
        "psnr_auto": auto["psnr"],
        "psnr_10": hinted["psnr"],
        "colourful_auto": auto["colourfulness"],
        "false_auto": auto.get("false_colour", 1.0),
    }


def choose(scores: dict[str, dict[str, float]]) -> str:
    """Name of the best candidate under the rule in the module docstring.

    Args:
        scores: ``{name: protocol_scores(...)}``, at least one entry.

    Returns:
        The chosen name.
    """
    if not scores:
        raise ValueError("no candidates to choose from")
    ok = {k: v for k, v in scores.items() if v["false_auto"] <= MAX_FALSE_COLOUR}
    if not ok:
        return min(scores, key=lambda k: scores[k]["false_auto"])
    return max(ok, key=lambda k: ok[k]["psnr_auto"] + ok[k]["psnr_10"])


def beats(candidate: dict[str, float], start: dict[str, float]) -> bool:
    """Whether ``candidate`` is worth shipping over ``start`` (mean of the two PSNRs)."""
    return candidate["psnr_auto"] + candidate["psnr_10"] > start["psnr_auto"] + start["psnr_10"]


def score_snapshots(
    snapshots: Sequence[str | Path],
    images: Sequence[str | Path],
    *,
    init: str = "tinct-base",
    out: str | Path = "runs/snapshot-scores",
    limit: int = 0,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Score the starting weights and every snapshot on held-out images; choose one.

    Args:
        snapshots: Weights files (``.safetensors``).
        images: Held-out image files (:func:`held_out_images`).
        init: The run's starting weights (a model name or file), scored for comparison.
        out: Folder of the evaluation report.
        limit: Score only the first ``limit`` images (0 = all).
        device: Torch device.
        log: Progress lines.

    Returns:
        ``{"best": name, "ships": bool, "scores": {name: scores}, "init": scores}``
        with names the snapshots' file stems.
    """
    from tinct.training.evaluate import EvalConfig, evaluate, model_label

    snaps = [Path(p) for p in snapshots]
    res = evaluate(
        EvalConfig(
            models=[init, *(str(p) for p in snaps)],
            data=[str(p) for p in images],
            hints=[0, 10],
            out=str(out),
            full_res=False,
            device=device,
            limit=limit,
        ),
        log=log,
    )
    scores = {p.stem: protocol_scores(res, model_label(str(p))) for p in snaps}
    start = protocol_scores(res, model_label(init))
    best = choose(scores)
    return {"best": best, "ships": beats(scores[best], start), "scores": scores, "init": start}
