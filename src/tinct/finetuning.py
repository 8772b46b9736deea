"""Fine-tuning on the user's own colour examples: one API for napari and the command line.

::

    import tinct
    result = tinct.finetune(folders=["my_he_tiles/"], base="tinct-base", minutes=3,
                            name="my-he", progress=print)
    tinct.Colorizer("my-he")       # the new model, by name, everywhere

Examples are colour images: arrays (e.g. napari layers) and/or folders of
image files. Part of them is held out, never trained on: by source image (the
rule of :func:`tinct.datasets.split_by_source`: a layer is its own source, a
file's source is its name up to ``_x``/``_s``), or, when everything comes from
one source, the last share of its pieces. Training runs through
:func:`tinct.train.train` (same losses, sampler and schedule as ``tinct
train``); the held-out automatic PSNR is measured as it improves, the best
weights (the starting ones included) are kept, and the result is registered as
a user model (:mod:`tinct.models.user_store`). Cancelling keeps the best
weights so far. The automatic decoder of the new model (distribution mean or
regression head) is the one that scored best on the held-out examples.

:class:`FineTuneJob` runs the same in a background thread, for front ends.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinct.cancel import Cancelled

__all__ = [
    "MAX_EXAMPLE_PIECES",
    "Examples",
    "FineTuneJob",
    "FineTuneProgress",
    "FineTuneResult",
    "finetune",
    "prepare_examples",
]

#: Side of the squares the examples are cut into / resized to (the network's input size).
SIZE = 256
#: Most training pieces kept from all examples (evenly chosen beyond that): 0.8 GB at 256 px.
MAX_EXAMPLE_PIECES = 4096
#: Most held-out pieces scored at each validation (evenly chosen beyond that).
MAX_SCORED = 64
_MAX_PIXELS = 2**28
_MIN_SIDE = 32
_SCORE_KEY = "psnr_auto"


@dataclass(frozen=True)
class FineTuneProgress:
    """What a running fine-tune reports (to the ``progress`` callback).

    Attributes:
        phase: ``"preparing"``, ``"training"``, ``"saving"`` or ``"done"``.
        step: Optimiser steps done.
        seconds: Training seconds so far.
        fraction: Share of the budget used, in [0, 1].
        loss: Running training loss (None before the first step).
        score: Latest held-out automatic PSNR, dB (None before it is measured).
        best: Best held-out automatic PSNR so far, dB.
        base_score: The base model's held-out automatic PSNR, dB.
        message: One line for a status bar.
    """

    phase: str
    step: int = 0
    seconds: float = 0.0
    fraction: float = 0.0
    loss: float | None = None
    score: float | None = None
    best: float | None = None
    base_score: float | None = None
    message: str = ""


@dataclass(frozen=True)
class FineTuneResult:
    """A finished fine-tune.

    Attributes:
        model: The registered user model (``.name``, ``.path``, metadata).
        score: Held-out automatic PSNR of the kept weights, dB (None if unmeasured).
        base_score: The same for the base model, dB.
        steps: Optimiser steps run.
        kept_step: Step whose weights were kept (0 = the base model's).
        cancelled: The run was cancelled (the best weights so far were kept).
        decoder: The new model's automatic decoder.
    """

    model: Any
    score: float | None
    base_score: float | None
    steps: int
    kept_step: int
    cancelled: bool
    decoder: str


@dataclass
class Examples:
    """Colour examples cut to squares and split into training and held-out parts.

    Attributes:
        images: ``(N, S, S, 3)`` uint8 pieces.
        sources: Source id of each piece.
        held_out: Indices of the held-out pieces.
        description: What the examples are (for metadata and messages).
    """

    images: np.ndarray
    sources: list[str]
    held_out: list[int]
    description: str

    @property
    def n_train(self) -> int:
        """Number of training pieces."""
        return len(self.images) - len(self.held_out)


def _as_rgb8(array: Any, label: str) -> np.ndarray:
    """A colour example as ``(..., H, W, 3)`` uint8 (a copy; alpha dropped)."""
    a = np.asarray(array)
    if a.ndim < 3 or a.shape[-1] not in (3, 4):
        raise ValueError(
            f"{label}: a colour example is an (H, W, 3) RGB or (H, W, 4) RGBA image, "
            f"got shape {a.shape}"
        )
    h, w = a.shape[-3:-1]
    if min(h, w) < _MIN_SIDE:
        raise ValueError(f"{label}: {h} x {w} is too small (at least {_MIN_SIDE} px a side)")
    if a.size // a.shape[-1] > _MAX_PIXELS:
        raise ValueError(f"{label}: more than {_MAX_PIXELS:,} pixels")
    a = a[..., :3]
    if a.dtype == np.uint8:
        return a.copy()
    if a.dtype.kind == "b" or a.dtype.kind not in "uif":
        raise ValueError(f"{label}: pixel type {a.dtype} is not an image type")
    if a.dtype.kind in "ui":
        top = float(np.iinfo(a.dtype).max)
        return np.clip(np.round(a.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    f = a.astype(np.float64)
    if not np.isfinite(f).all():
        raise ValueError(f"{label}: holds NaN or infinite values")
    scale = 255.0 if f.max(initial=0.0) <= 1.0 else 1.0  # floats in [0, 1], else 0..255
    return np.clip(np.round(f * scale), 0, 255).astype(np.uint8)


def _pieces(rgb: np.ndarray, size: int) -> list[np.ndarray]:
    """Cut ``(..., H, W, 3)`` into planes, and planes of at least 2 x ``size`` a side into tiles."""
    planes = rgb.reshape(-1, *rgb.shape[-3:])
    out = []
    for plane in planes:
        h, w = plane.shape[:2]
        if min(h, w) < 2 * size:
            out.append(plane)
            continue
        out.extend(
            plane[y : y + size, x : x + size]
            for y in range(0, h - size + 1, size)
            for x in range(0, w - size + 1, size)
        )
    return out


def _even(indices: list[int], limit: int) -> list[int]:
    if len(indices) <= limit:
        return indices
    return [indices[int(i)] for i in np.linspace(0, len(indices) - 1, limit).round()]


def prepare_examples(
    examples: Sequence[Any] = (),
    folders: Sequence[str | Path] = (),
    *,
    names: Sequence[str] | None = None,
    held_fraction: float = 0.25,
    size: int = SIZE,
) -> Examples:
    """Cut colour examples into squares and hold out part of them.

    An array whose shorter side is at least ``2 * size`` is cut into
    ``size``-pixel tiles at its own resolution; smaller arrays and image files
    are resized and centre-cropped to one square, as ``tinct train`` does.

    Args:
        examples: RGB(A) arrays ``(H, W, 3|4)`` or stacks ``(..., H, W, 3|4)``;
            uint8, other integers (scaled by their type's maximum) or floats
            (in ``[0, 1]``, else taken as 0..255). Not modified.
        folders: Folders (or files) of colour images, searched recursively.
        names: Source name of each array (napari: its layer name); default ``example <i>``.
        held_fraction: Share of sources (or, from one source, of pieces) held out.
        size: Side of the squares.

    Returns:
        The pieces and their split.

    Raises:
        ValueError: No examples, an array that is not a colour image, fewer than
            two pieces, or examples without colour.
        FileNotFoundError: A folder that does not exist or holds no image.
    """
    from tinct.datasets import ImageBank, find_images, held_out_sources, source_id

    if names is not None and len(names) != len(examples):
        raise ValueError(f"{len(names)} names for {len(examples)} examples")
    pieces: list[np.ndarray] = []
    sources: list[str] = []
    parts = []
    for i, ex in enumerate(examples):
        label = names[i] if names is not None else f"example {i}"
        cut = _pieces(_as_rgb8(ex, label), size)
        pieces += cut
        sources += [label] * len(cut)
    if examples:
        parts.append(f"{len(examples)} image{'s' * (len(examples) > 1)} ({len(pieces)} pieces)")
    if folders:
        paths = find_images(list(folders))
        bank = ImageBank(paths, size=size, progress=False)
        pieces += list(bank.images)
        sources += [source_id(p) for p in paths]
        parts.append(f"{', '.join(map(str, folders))} ({len(paths)} files)")
    if not pieces:
        raise ValueError("no colour examples: give images and/or folders of colour images")
    if len(pieces) < 2:
        raise ValueError("one example piece is not enough: give two or more, or a larger image")
    order = _even(list(range(len(pieces))), MAX_EXAMPLE_PIECES)
    pieces, sources = [pieces[i] for i in order], [sources[i] for i in order]
    if len(set(sources)) >= 2:
        held_ids = held_out_sources(sources, held_fraction)
        held = [i for i, s in enumerate(sources) if s in held_ids]
        how = f"{len(held_ids)} of {len(set(sources))} sources"
    else:  # one source: its last pieces (the bottom of a tiled image)
        n = max(1, round(len(pieces) * held_fraction)) if held_fraction > 0 else 0
        held = list(range(len(pieces) - n, len(pieces)))
        how = f"the last {n} of {len(pieces)} pieces of one source"
    bank = ImageBank.from_arrays(pieces, size)
    _check_colour(bank.images, [i for i in range(len(pieces)) if i not in set(held)])
    desc = "; ".join(parts) + f": {len(pieces) - len(held)} training, {len(held)} held out ({how})"
    return Examples(bank.images, sources, held, desc)


def _check_colour(images: np.ndarray, train: list[int]) -> None:
    from tinct.color import rgb_to_lab
    from tinct.datasets import is_near_gray

    if not train:
        raise ValueError("every example is held out: give more examples or more sources")
    rgb = torch.from_numpy(np.stack([images[i] for i in train[:256]])).permute(0, 3, 1, 2)
    ab = rgb_to_lab(rgb.float() / 255.0)[:, 1:]
    if bool(is_near_gray(ab).all()):
        raise ValueError("the training examples are gray: fine-tuning needs colour examples")


def _scorer(images: np.ndarray, indices: list[int], device: torch.device) -> Callable[..., Any]:
    """``score(model) -> metrics``: held-out automatic PSNR (256 px, uint8 RGB) per decoder."""
    from tinct.bins import gamut_bins
    from tinct.color import lab_to_rgb, rgb_to_lab
    from tinct.decode import decode

    scored = _even(indices, MAX_SCORED)

    @torch.no_grad()
    def score(model: torch.nn.Module) -> dict[str, float]:
        cfg = model.record.config  # type: ignore[union-attr]
        if cfg.color_space != "lab" or cfg.target not in ("gamut313", "regression"):
            return {}  # scored in CIELAB over the 313 gamut bins only: keep the last weights
        dist_decoder = "annealed_mean" if cfg.default_decoder == "ab" else cfg.default_decoder
        sums: dict[str, float] = {}
        for start in range(0, len(scored), 8):
            chunk = scored[start : start + 8]
            rgb = torch.from_numpy(np.stack([images[i] for i in chunk])).to(device)
            rgb = rgb.permute(0, 3, 1, 2).float() / 255.0
            lab = rgb_to_lab(rgb)
            lum = lab[:, :1]
            zeros = torch.zeros_like(lab[:, 1:])
            out = model(lum, zeros, zeros[:, :1], None)
            preds = {"psnr_gray": zeros}
            if out.logits is not None:
                preds["psnr_auto_mean"] = decode(
                    out.logits.float(), gamut_bins(device=device), dist_decoder,
                    temperature=cfg.default_temperature,
                )  # fmt: skip
            if out.ab is not None:
                preds["psnr_auto_ab"] = out.ab.float()
            truth = (rgb * 255).round()
            for key, ab in preds.items():
                ab = torch.nn.functional.interpolate(
                    ab, size=lum.shape[-2:], mode="bilinear", align_corners=False
                )
                pred = (lab_to_rgb(torch.cat((lum, ab), 1)) * 255).round()
                mse = (pred - truth).pow(2).flatten(1).mean(1).clamp_min(1e-10)
                sums[key] = sums.get(key, 0.0) + float((10 * torch.log10(255.0**2 / mse)).sum())
        found = {k: v / len(scored) for k, v in sums.items()}
        found[_SCORE_KEY] = max(v for k, v in found.items() if k.startswith("psnr_auto_"))
        return found

    return score


def _recipe_of(base: str) -> str:
    """The built-in architecture a base model (name, user model or file) is made of."""
    from tinct.models import get_record, user_store
    from tinct.weights import read_weights_header

    p = Path(base)
    if p.suffix == ".safetensors" or (p.is_file() and not user_store.is_user_model(base)):
        try:
            return str(read_weights_header(p)[1]["model"])
        except KeyError:
            raise ValueError(f"{base} is not a tinct weights file") from None
    record = get_record(base)
    if user_store.is_user_model(record.name):
        return user_store.get_user_model(record.name).recipe
    return record.name


def finetune(
    examples: Sequence[Any] = (),
    folders: Sequence[str | Path] = (),
    *,
    name: str,
    base: str = "tinct-base",
    minutes: float = 3.0,
    steps: int = 0,
    names: Sequence[str] | None = None,
    held_fraction: float = 0.25,
    replace: bool = False,
    progress: Callable[[FineTuneProgress], None] | None = None,
    cancel: Any = None,
    device: str = "auto",
    threads: int = 0,
    lr: float = 3e-4,
    batch_size: int = 16,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> FineTuneResult:
    """Fine-tune a model on colour examples and register the result as a user model.

    Args:
        examples: Colour arrays (see :func:`prepare_examples`).
        folders: Folders of colour images.
        name: Name of the new user model (see :func:`tinct.models.user_store.validate_name`).
        base: Model to start from: a registered name (built-in or user model) or a weights file.
        minutes: Wall-clock budget (0 = none; then ``steps`` must be set).
        steps: Step budget (0 = none).
        names: Source name of each array (napari: the layer names).
        held_fraction: Share of the sources held out.
        replace: Overwrite an existing user model of that name.
        progress: Called with a :class:`FineTuneProgress` (from the training thread).
        cancel: Object with ``is_set()`` (e.g. :class:`threading.Event`): stop and keep the best.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads: Torch CPU threads (0 = torch's default).
        lr: Peak learning rate.
        batch_size: Crops per step.
        seed: Random seed.
        log: Where log lines go (default: nowhere).

    Returns:
        The result, with the registered model.

    Raises:
        ValueError: Bad name or budget, examples that are not colour images.
        tinct.cancel.Cancelled: Cancelled before the first step (nothing is registered).
    """
    from tinct.models import load_model, user_store
    from tinct.train import TrainConfig, TrainHooks, TrainProgress, _device, train

    report = progress or (lambda p: None)
    say = log or (lambda s: None)
    key = user_store.check_new_name(name, replace=replace)
    if not (0 <= minutes <= 24 * 60) or steps < 0 or (not minutes and not steps):
        raise ValueError("give a budget: minutes in (0, 1440] and/or steps > 0")
    recipe = _recipe_of(base)
    report(FineTuneProgress("preparing", message="preparing the examples"))
    ex = prepare_examples(examples, folders, names=names, held_fraction=held_fraction)
    say(f"examples: {ex.description}")
    if cancel is not None and cancel.is_set():
        raise Cancelled("fine-tuning cancelled before it started")
    from tinct.datasets import ImageBank

    bank = ImageBank.from_arrays(list(ex.images), SIZE)
    dev = _device(device)
    state: dict[str, Any] = {"base": None}

    def on_progress(p: TrainProgress) -> None:
        score = p.metrics.get(_SCORE_KEY)
        if p.step == 0 and score is not None and state["base"] is None:
            state["base"] = score
        text = f"step {p.step}, {p.seconds / 60:.1f} min"
        if p.best is not None:
            text += f", held-out {p.best:.2f} dB"
            if state["base"] is not None:
                text += f" (base {state['base']:.2f})"
        report(
            FineTuneProgress(
                "training", p.step, p.seconds, p.fraction, p.loss, score, p.best, state["base"],
                text,
            )
        )  # fmt: skip

    cfg = TrainConfig(
        recipe=recipe,
        init=str(base),
        minutes=float(minutes),
        steps=int(steps),
        batch_size=batch_size,
        lr=lr,
        warmup=20,
        val_every_minutes=min(2.0, max(0.1, minutes / 10)) if minutes else 1e9,
        checkpoint_minutes=1e9,
        seed=seed,
        device=device,
        threads=threads,
    )
    hooks = TrainHooks(
        bank=bank,
        held_out=ex.held_out,
        data_description=ex.description,
        validate=_scorer(ex.images, ex.held_out, dev),
        best_key=_SCORE_KEY,
        progress=on_progress,
        cancel=cancel,
    )
    with tempfile.TemporaryDirectory(prefix="tinct-finetune-") as run:
        cfg.out = run
        path = train(cfg, log=say, hooks=hooks)
        report(FineTuneProgress("saving", message=f"saving {key}"))
        model = load_model(path)
        meta = dict(model.weights_metadata)  # type: ignore[arg-type]
    n_steps, kept = int(meta.get("steps", 0)), int(meta.get("kept_step", 0))
    cancelled = bool(meta.get("cancelled", False))
    if cancelled and n_steps == 0:
        raise Cancelled("fine-tuning cancelled before the first step")
    metrics = meta.get("metrics") or {}
    decoder = model.record.config.default_decoder
    if metrics.get("psnr_auto_ab", -1.0) > metrics.get("psnr_auto_mean", float("inf")):
        decoder = "ab"  # the regression head scored better on the held-out examples
    model.record = dataclasses.replace(
        model.record, config=dataclasses.replace(model.record.config, default_decoder=decoder)
    )
    score = metrics.get(_SCORE_KEY)
    info = {
        "recipe": recipe,
        "base": str(base),
        "data": ex.description,
        "minutes": round(float(meta.get("wall_time_s", 0.0)) / 60, 2),
        "steps": n_steps,
        "score": score,
        "base_score": state["base"],
        "held_out": f"{len(ex.held_out)} pieces",
    }
    keep = ("init", "data", "steps", "kept_step", "cancelled", "hardware", "wall_time_s", "metrics")
    extra = {k: meta[k] for k in keep if k in meta}
    extra["train_config"] = {**meta.get("train_config", {}), "out": ""}
    um = user_store.save_user_model(model, key, info, extra, replace=replace)
    say(f"registered user model {um.name}: {um.summary()}")
    report(FineTuneProgress("done", n_steps, message=f"saved {um.name}: {um.summary()}"))
    return FineTuneResult(um, score, state["base"], n_steps, kept, cancelled, decoder)


class FineTuneJob:
    """:func:`finetune` in a background thread, for front ends (napari).

    The latest progress is in :attr:`progress`; poll it (e.g. from a Qt timer)
    and :attr:`done`. :meth:`cancel` stops the run and keeps the best weights.

    Args:
        examples: As for :func:`finetune`.
        folders: As for :func:`finetune`.
        **kwargs: Further :func:`finetune` arguments (``name`` is required).
    """

    def __init__(
        self, examples: Sequence[Any] = (), folders: Sequence[str | Path] = (), **kwargs: Any
    ) -> None:
        if "name" not in kwargs:
            raise TypeError("FineTuneJob needs name=...")
        self._args = (list(examples), list(folders))
        self._kwargs = kwargs
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.progress: FineTuneProgress | None = None
        self.result: FineTuneResult | None = None
        self.error: BaseException | None = None

    def start(self) -> FineTuneJob:
        """Start the run (once); returns the job."""
        if self._thread is not None:
            raise RuntimeError("this job was started already")
        self._thread = threading.Thread(target=self._run, name="tinct-finetune", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        def keep(p: FineTuneProgress) -> None:
            self.progress = p

        try:
            self.result = finetune(
                *self._args, progress=keep, cancel=self._cancel, **self._kwargs
            )
        except BaseException as exc:  # reported to the front end, never lost in the thread
            self.error = exc

    def cancel(self) -> None:
        """Ask the run to stop; it keeps (and registers) the best weights so far."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """:meth:`cancel` was called."""
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        """The run has finished (with a result or an error)."""
        return self._thread is not None and not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> FineTuneResult:
        """Block until the run ends; returns its result or raises its error.

        Raises:
            TimeoutError: Still running after ``timeout`` seconds.
        """
        if self._thread is None:
            raise RuntimeError("the job was not started")
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the fine-tuning job is still running")
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result
