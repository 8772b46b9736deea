"""Fine-tuning on the user's own colour examples: one API for napari and the command line.

::

    import tinct
    result = tinct.finetune(folders=["my_he_tiles/"], base="tinct-base", minutes=3,
                            name="my-he", progress=print)
    tinct.Colorizer("my-he")       # the new model, by name, everywhere

Examples are colour images: arrays (e.g. napari layers) and/or folders of
image files, cut to squares and split by source (:mod:`tinct.training.colour_examples`);
the held-out part is never trained on. Then:

1. the base model is scored on the held-out examples (automatic PSNR at 256 px);
2. its palette is matched to the training examples (:func:`match_palette`: the
   output biases are shifted so that its average prediction has their colour
   statistics, a prior correction for the new domain that takes one pass over
   the examples), kept if it scores better;
3. it trains through :func:`tinct.training.train.train` (same losses, sampler and
   schedule as ``tinct train``) for the rest of the budget, scored as it goes;
   the best weights (the starting ones included) are kept;
4. the result is registered as a user model (:mod:`tinct.models.user_store`),
   with the automatic decoder (coherent, annealed mean or regression head) that
   scored best on the held-out examples.

Cancelling keeps the best weights so far. The budget covers all four steps.

:class:`FineTuneJob` runs the same in a background thread, for front ends.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinct.cancel import Cancelled
from tinct.training.adaptation import MAX_SCORED, SCORE_KEY, match_palette, palette_pieces, scorer
from tinct.training.colour_examples import SIZE, prepare_examples

__all__ = [
    "FineTuneJob",
    "FineTuneProgress",
    "FineTuneResult",
    "finetune",
]


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


#: What a run cancelled before its first training step raises (nothing is registered).
NOT_STARTED = "fine-tuning cancelled before the first step"


@contextlib.contextmanager
def _before_training() -> Iterator[None]:
    """A cancel inside the block (loading, scoring the base, palette) is said as such."""
    try:
        yield
    except Cancelled:
        raise Cancelled(NOT_STARTED) from None


def _recipe_of(base: str) -> str:
    """The built-in architecture a base model (name, user model or file) is made of."""
    from tinct.models import get_record, user_store
    from tinct.models.weights import read_weights_header

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

    from tinct.models import load_model, user_store
    from tinct.models.weights import save_weights
    from tinct.training.config import TrainConfig, TrainHooks, TrainProgress, _device
    from tinct.training.datasets import ImageBank
    from tinct.training.train import train

    t_start = time.monotonic()
    report = progress or (lambda p: None)
    say = log or (lambda s: None)
    key = user_store.check_new_name(name, replace=replace)
    if not (0 <= minutes <= 24 * 60) or steps < 0 or (not minutes and not steps):
        raise ValueError("give a budget: minutes in (0, 1440] and/or steps > 0")
    recipe = _recipe_of(base)
    report(FineTuneProgress("preparing", message="preparing the examples"))

    def reading(done: int, total: int) -> None:  # a folder of hundreds takes a while
        if done * 10 // total != (done - 1) * 10 // total:  # each tenth: `tinct train` prints it
            report(FineTuneProgress("preparing", message=f"reading images: {done} of {total}"))

    with _before_training():  # Cancel is checked between two files
        ex = prepare_examples(
            examples, folders, names=names, held_fraction=held_fraction, cancel=cancel,
            report=reading,
        )  # fmt: skip
    say(f"examples: {ex.description}")

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled(NOT_STARTED)

    check_cancel()
    dev = _device(device)
    score = scorer(ex.images, ex.held_out, dev)
    model = load_model(base, device=dev)
    report(FineTuneProgress("preparing", message=f"scoring {base} on the held-out examples"))
    t_score = time.monotonic()
    with _before_training():
        base_score = score(model, cancel=cancel).get(SCORE_KEY)
    t_score = time.monotonic() - t_score  # the final validation takes as long: kept for it
    state: dict[str, Any] = {"base": base_score}
    held = set(ex.held_out)
    train_idx = [i for i in range(len(ex.images)) if i not in held]
    init, palette = str(base), False
    with tempfile.TemporaryDirectory(prefix="tinct-finetune-") as run:
        check_cancel()
        report(FineTuneProgress("preparing", base_score=base_score, message="matching the palette"))
        limit = palette_pieces(minutes * 60, t_score, min(len(ex.held_out), MAX_SCORED))
        with _before_training():  # in at most a quarter of the budget
            shifted = match_palette(model, ex.images, train_idx, dev, cancel=cancel, limit=limit)
            matched = score(model, cancel=cancel).get(SCORE_KEY) if shifted else None
        if shifted:
            n = min(limit, len(train_idx))
            say(f"palette matched on {n} examples: held-out {base_score} -> {matched} dB")
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
                    p.metrics.get(SCORE_KEY), p.best, state["base"], text,
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
            bank=ImageBank.from_arrays(ex.images, SIZE),  # type: ignore[arg-type]
            held_out=ex.held_out,
            data_description=ex.description,
            validate=score,
            best_key=SCORE_KEY,
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
        raise Cancelled(NOT_STARTED)
    metrics = meta.get("metrics") or {}
    scored = {k[len("psnr_auto_") :]: v for k, v in metrics.items() if k.startswith("psnr_auto_")}
    decoder = max(scored, key=scored.__getitem__) if scored else ""  # best on the held-out
    final = metrics.get(SCORE_KEY)
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
