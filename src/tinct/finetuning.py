"""Fine-tuning on the user's own colour examples: one API for napari and the command line.

::

    import tinct
    result = tinct.finetune(folders=["my_he_tiles/"], base="tinct-base", minutes=3,
                            name="my-he", progress=print)
    tinct.Colorizer("my-he")       # the new model, by name, everywhere

Examples are colour images: arrays (e.g. napari layers) and/or folders of
image files, cut to squares and split by source (:mod:`tinct.colour_examples`);
the held-out part is never trained on. Then:

1. the base model is scored on the held-out examples (automatic PSNR at 256 px);
2. its palette is matched to the training examples (:func:`match_palette`: the
   output biases are shifted so that its average prediction has their colour
   statistics, a prior correction for the new domain that takes one pass over
   the examples), kept if it scores better;
3. it trains through :func:`tinct.train.train` (same losses, sampler and
   schedule as ``tinct train``) for the rest of the budget, scored as it goes;
   the best weights (the starting ones included) are kept;
4. the result is registered as a user model (:mod:`tinct.models.user_store`),
   with the automatic decoder (coherent, annealed mean or regression head) that
   scored best on the held-out examples.

Cancelling keeps the best weights so far. The budget covers all four steps.

:class:`FineTuneJob` runs the same in a background thread, for front ends.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinct.cancel import Cancelled
from tinct.colour_examples import SIZE, Examples, even, prepare_examples

__all__ = [
    "Examples",
    "FineTuneJob",
    "FineTuneProgress",
    "FineTuneResult",
    "finetune",
    "match_palette",
    "prepare_examples",
]

#: Most held-out pieces scored at each validation, and training pieces whose palette is
#: matched (evenly chosen beyond that).
MAX_SCORED = 64
MAX_MATCHED = 256
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
        kept_step: Step whose weights were kept (0 = the starting weights: the base
            model, palette-matched when that scored better).
        cancelled: The run was cancelled (the best weights so far were kept).
        decoder: The new model's automatic decoder (the best on the held-out
            examples; ``""`` = the architecture's default, when unscored).
    """

    model: Any
    score: float | None
    base_score: float | None
    steps: int
    kept_step: int
    cancelled: bool
    decoder: str


#: Automatic decoders a fine-tuned model is scored with (those its head has); the best
#: becomes its default. ``coherent`` falls back on the regression colour, as in the engine.
CANDIDATE_DECODERS = ("coherent", "annealed_mean", "ab")


def _automatic_colours(out: Any, cfg: Any, centres: torch.Tensor) -> dict[str, torch.Tensor]:
    """The automatic chrominance of each candidate decoder from one network output."""
    from tinct.decode import coherent_mean, decode

    found = {}
    if out.logits is not None and cfg.target == "gamut313":
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


def _scorer(images: np.ndarray, indices: list[int], device: torch.device) -> Callable[..., Any]:
    """``score(model) -> metrics``: held-out automatic PSNR (256 px, uint8 RGB).

    Metrics: ``psnr_auto_<decoder>`` for each candidate decoder, ``psnr_auto``
    (the best of them) and ``psnr_gray``.
    """
    from tinct.bins import gamut_bins
    from tinct.color import lab_to_rgb, rgb_to_lab

    scored = even(indices, MAX_SCORED)
    centres = gamut_bins(device=device)

    @torch.no_grad()
    def score(model: torch.nn.Module) -> dict[str, float]:
        cfg = model.record.config  # type: ignore[union-attr]
        if cfg.color_space != "lab" or cfg.target not in ("gamut313", "regression"):
            return {}  # scored in CIELAB over the 313 gamut bins only: keep the last weights
        sums: dict[str, float] = {}
        for start in range(0, len(scored), 8):
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
        found[_SCORE_KEY] = max(v for k, v in found.items() if k.startswith("psnr_auto_"))
        return found

    return score


@torch.no_grad()
def match_palette(
    model: torch.nn.Module, images: np.ndarray, indices: Sequence[int], device: torch.device
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
        indices: The training examples among them (at most
            :data:`MAX_MATCHED` are used, evenly spread).
        device: Where the model runs.

    Returns:
        True if the biases were shifted.
    """
    from tinct.bins import encode_hard, gamut_bins
    from tinct.color import rgb_to_lab
    from tinct.models.tinct_base import AB_NORM, TinctUNet

    cfg = getattr(getattr(model, "record", None), "config", None)
    if not isinstance(model, TinctUNet) or cfg is None or cfg.target != "gamut313":
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
    chosen = even(list(indices), MAX_MATCHED)
    for start in range(0, len(chosen), 8):
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
    model.class_head.bias += (torch.log(p_true + 1e-4) - torch.log(p_model + 1e-4)).float()
    n = len(chosen) * AB_NORM
    lo, hi = (torch.atanh((v / n).clamp(-0.99, 0.99)) for v in (ab_model, ab_true))
    model.ab_head.bias += (hi - lo).float()
    return True


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
    crop: int = 128,
    warmup: int = 20,
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
        crop: Side of the training crops, in pixels.
        warmup: Linear learning-rate warm-up, in steps.
        seed: Random seed.
        log: Where log lines go (default: nowhere).

    Returns:
        The result, with the registered model.

    Raises:
        ValueError: Bad name or budget, examples that are not colour images.
        tinct.cancel.Cancelled: Cancelled before the first step (nothing is registered).
    """
    import time

    from tinct.datasets import ImageBank
    from tinct.models import load_model, user_store
    from tinct.train import TrainConfig, TrainHooks, TrainProgress, _device, train
    from tinct.weights import save_weights

    t_start = time.monotonic()
    report = progress or (lambda p: None)
    say = log or (lambda s: None)
    key = user_store.check_new_name(name, replace=replace)
    if not (0 <= minutes <= 24 * 60) or steps < 0 or (not minutes and not steps):
        raise ValueError("give a budget: minutes in (0, 1440] and/or steps > 0")
    recipe = _recipe_of(base)
    report(FineTuneProgress("preparing", message="preparing the examples"))
    ex = prepare_examples(examples, folders, names=names, held_fraction=held_fraction)
    say(f"examples: {ex.description}")

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("fine-tuning cancelled before the first step")

    check_cancel()
    dev = _device(device)
    score = _scorer(ex.images, ex.held_out, dev)
    model = load_model(base, device=dev)
    t_score = time.monotonic()
    base_score = score(model).get(_SCORE_KEY)
    t_score = time.monotonic() - t_score  # the final validation takes as long: kept for it
    state: dict[str, Any] = {"base": base_score}
    held = set(ex.held_out)
    train_idx = [i for i in range(len(ex.images)) if i not in held]
    init, palette = str(base), False
    with tempfile.TemporaryDirectory(prefix="tinct-finetune-") as run:
        check_cancel()
        report(FineTuneProgress("preparing", base_score=base_score, message="matching the palette"))
        if match_palette(model, ex.images, train_idx, dev):
            matched = score(model).get(_SCORE_KEY)
            say(f"palette matched: held-out {base_score} -> {matched} dB")
            if matched is not None and (base_score is None or matched > base_score):
                init, palette = str(Path(run) / "matched.safetensors"), True
                save_weights(model, init, {"model": recipe})
        del model
        check_cancel()

        def on_progress(p: TrainProgress) -> None:
            text = f"step {p.step}, {p.seconds / 60:.1f} min"
            if p.best is not None:
                text += f", held-out {p.best:.2f} dB"
                if state["base"] is not None:
                    text += f" (base {state['base']:.2f})"
            report(
                FineTuneProgress(
                    "training", p.step, p.seconds, p.fraction, p.loss,
                    p.metrics.get(_SCORE_KEY), p.best, state["base"], text,
                )
            )  # fmt: skip

        left = minutes * 60 - (time.monotonic() - t_start) - t_score  # the budget covers it all
        train_minutes = max(left, 0.1 * minutes * 60) / 60 if minutes else 0.0
        cfg = TrainConfig(
            recipe=recipe,
            init=init,
            out=str(Path(run) / "run"),
            minutes=train_minutes,
            steps=int(steps),
            batch_size=batch_size,
            crop=crop,
            lr=lr,
            warmup=warmup,
            val_every_minutes=min(2.0, max(0.1, train_minutes / 4)) if minutes else 1e9,
            checkpoint_minutes=1e9,
            seed=seed,
            device=device,
            threads=threads,
        )
        hooks = TrainHooks(
            bank=ImageBank.from_arrays(list(ex.images), SIZE),
            held_out=ex.held_out,
            data_description=ex.description,
            validate=score,
            best_key=_SCORE_KEY,
            progress=on_progress,
            cancel=cancel,
        )
        path = train(cfg, log=say, hooks=hooks)
        report(FineTuneProgress("saving", message=f"saving {key}"))
        model = load_model(path)
        meta = dict(model.weights_metadata)  # type: ignore[arg-type]
    n_steps, kept = int(meta.get("steps", 0)), int(meta.get("kept_step", 0))
    cancelled = bool(meta.get("cancelled", False))
    if cancelled and n_steps == 0:
        raise Cancelled("fine-tuning cancelled before the first step")
    metrics = meta.get("metrics") or {}
    scored = {k[len("psnr_auto_") :]: v for k, v in metrics.items() if k.startswith("psnr_auto_")}
    decoder = max(scored, key=scored.__getitem__) if scored else ""  # best on the held-out
    final = metrics.get(_SCORE_KEY)
    info = {
        "recipe": recipe,
        "base": str(base),
        "data": ex.description,
        "minutes": round((time.monotonic() - t_start) / 60, 2),
        "steps": n_steps,
        "score": final,
        "base_score": state["base"],
        "held_out": f"{len(ex.held_out)} of {len(ex.images)} pieces",
        "decoder": decoder,
    }
    keep = ("data", "steps", "kept_step", "cancelled", "hardware", "wall_time_s", "metrics")
    extra = {k: meta[k] for k in keep if k in meta}
    extra.update(init=str(base), palette_matched=palette, base_score=base_score)
    extra["train_config"] = {**meta.get("train_config", {}), "out": "", "init": str(base)}
    um = user_store.save_user_model(model, key, info, extra, replace=replace)
    say(f"registered user model {um.name}: {um.summary()}")
    report(FineTuneProgress("done", n_steps, message=f"saved {um.name}: {um.summary()}"))
    return FineTuneResult(um, final, state["base"], n_steps, kept, cancelled, decoder)


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
            self.result = finetune(*self._args, progress=keep, cancel=self._cancel, **self._kwargs)
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
