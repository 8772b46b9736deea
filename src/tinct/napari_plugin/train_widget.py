"""The napari "Train" dock widget: fine-tune a model on your own colour examples.

Pick colour example layers (RGB image layers) and/or a folder of colour
images, a base model, a time budget and a name, press Train. The run is a
:class:`tinct.FineTuneJob` (the same code as ``tinct train --name`` and
:func:`tinct.finetune`): it trains in a background thread while the viewer
stays responsive; a Qt timer shows its progress and the held-out automatic
PSNR as it improves. Cancel stops it and keeps the best weights so far. The
new model is saved in the user-model folder, appears at once in every
Colorize widget's model list and is selected in this viewer's, so the next
Run uses it. The example layers are read by
:mod:`tinct.napari_plugin.train_examples` (12-bit colour as it is shown).

Learned colour of a single-band image is a synthetic rendering learned from
the examples, not a measurement (see ``docs/napari.md``).
"""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    Select,
)
from napari.layers import Image
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QSizePolicy

from tinct.napari_plugin.status_line import StatusLineMixin, cut, on_undock
from tinct.napari_plugin.train_examples import example_arrays
from tinct.napari_plugin.typed_numbers import tell_refusals

if TYPE_CHECKING:
    import napari

    from tinct.training.finetuning import FineTuneJob

__all__ = [
    "CANCELLING_EARLY",
    "ZERO_STEPS",
    "TrainWidget",
    "example_arrays",
    "name_note",
    "zero_steps_note",
]

#: What the status line adds when a job saved its model before a single training step.
ZERO_STEPS = (
    "no training step fitted in the time given: it colours as its base model does; "
    "give it more minutes"
)
#: The status line once Cancel is pressed: during training, and before its first step.
_CANCELLING = "cancelling: keeping the best weights so far…"
CANCELLING_EARLY = "cancelling: nothing is trained yet, so nothing will be saved…"
#: How often (ms) the widget reads the job's progress.
POLL_MS = 200
_STEPS = 1000  # progress bar resolution


def zero_steps_note(score: float | None, base_score: float | None) -> str:
    """What is said of a model saved before its first training step.

    Its weights are the base model's, or those with the palette matched to the examples
    when that scored better on the held-out part (``score > base_score``): then it does
    not colour as its base does, and the note says what it is instead.

    Args:
        score: Held-out automatic PSNR of the saved weights, dB (None: unmeasured).
        base_score: The same for the base model.
    """
    if score is None or base_score is None or score <= base_score:
        return ZERO_STEPS
    return (
        "no training step fitted in the time given: only its palette was matched to the "
        f"examples (held-out {base_score:.2f} -> {score:.2f} dB); give it more minutes to train"
    )


def name_note(typed: str, stored: str) -> str:
    """What a user is told when the model is saved under another name than the one typed.

    Args:
        typed: The name field's text.
        stored: The name the model is saved as (:func:`tinct.models.user_store.check_new_name`).

    Returns:
        ``""`` when they agree, else e.g. ``"saved as 'my-he' (user-model names are
        lowercase)"``.
    """
    if typed == stored:
        return ""
    why = []
    if typed.strip() != typed:
        why.append("spaces around the name are dropped")
    if typed.strip() != stored:
        why.append("user-model names are lowercase")
    return f"saved as {stored!r} ({'; '.join(why)})"


def _base_models() -> list[tuple[str, str]]:
    """``(label, name)`` of the models that can be fine-tuned here (trainable, weights present)."""
    from tinct.models import list_models, weights_status

    out = []
    for rec in list_models():
        status = weights_status(rec)
        if rec.config.trainable and status in ("bundled", "downloaded", "user"):
            out.append((f"{rec.display_name} [{status}]", rec.name))
    return out


def refresh_colorize_widgets(select: str | None = None, viewer: Any = None) -> int:
    """Re-read the model list of every open Colorize widget; select ``select`` in ``viewer``'s.

    Returns:
        How many widgets were refreshed.
    """
    from tinct.napari_plugin import widget as napari_widget

    n = 0
    for widget in napari_widget.live_widgets():
        same = _unwrapped(widget.viewer) is _unwrapped(viewer)
        widget.refresh_models(select=select if same else None)
        n += 1
    return n


def _unwrapped(viewer: Any) -> Any:
    """The viewer behind napari's plugin proxy (each plugin widget gets its own proxy)."""
    return getattr(viewer, "__wrapped__", viewer)


class TrainWidget(StatusLineMixin, Container):  # type: ignore[misc]
    """Fine-tune a colorization model on colour examples, in the background.

    Args:
        napari_viewer: The viewer (injected by napari).
        job_factory: ``factory(examples, folders, **kwargs) -> FineTuneJob`` (not
            started); default :class:`tinct.FineTuneJob`. Tests pass smaller
            training settings through it.

    Attributes:
        job: The running or last job.
        last_error: Message of the last error shown to the user.
        last_result: The last finished :class:`tinct.training.finetuning.FineTuneResult`.
    """

    def __init__(
        self,
        napari_viewer: napari.viewer.Viewer,
        job_factory: Callable[..., FineTuneJob] | None = None,
    ) -> None:
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.job_factory = job_factory or _default_job
        self.job: FineTuneJob | None = None
        self.last_error: str | None = None
        self.last_result: Any = None
        self._note = ""  # what the running job does otherwise than typed (its name, replace)

        self.layers = Select(choices=self._colour_layers, label="colour examples")
        self.layers.tooltip = "RGB image layers to learn from (Ctrl/Shift-click: several)"
        self.folder = FileEdit(mode="d", label="or folder", value="")  # type: ignore[arg-type]
        self.folder.tooltip = "a folder of colour images (searched recursively)"
        self.base = ComboBox(choices=lambda _w=None: _base_models(), label="base model")  # type: ignore[misc]
        self.minutes = FloatSpinBox(value=3.0, min=0.1, max=1440.0, step=0.5, label="minutes")
        self.model_name = LineEdit(value="my-model", label="new model name")
        self.model_name.tooltip = (
            "lowercase letters, digits, '.', '_', '-' (capitals are saved lowercase, "
            "and you are told)"
        )
        self.replace = CheckBox(value=False, text="replace a user model of that name")
        self.train_button = PushButton(text="Train")
        self.cancel_button = PushButton(text="Cancel (keep best)", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=_STEPS, label="progress")
        self.score = Label(value="", label="held-out PSNR")
        self.status = Label(value="", label="status")
        self.status.native.setWordWrap(True)  # long messages wrap, not cut off; short ones
        for label in (self.score, self.status):  # stay on one line: the row's width is the
            label.native.setSizePolicy(  # label's (a text-wide score shifted its row's name)
                QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred
            )
        self.extend(
            [
                self.layers,
                self.folder,
                self.base,
                self.minutes,
                self.model_name,
                self.replace,
                self.train_button,
                self.cancel_button,
                self.progress,
                self.score,
                self.status,
            ]
        )
        self.max_width = 440
        tell_refusals(self.minutes, self._say)  # a number the box refused: said, not dropped
        if "tinct-base" in [name for _, name in _base_models()]:
            self.base.value = "tinct-base"
        self._jobs: list[FineTuneJob] = []  # closing the widget cancels a running job
        jobs = self._jobs
        self.native.destroyed.connect(lambda *_: [j.cancel() for j in jobs if not j.done])  # type: ignore[func-returns-value]
        on_undock(self.native, self.cancel)  # the dock's close button deletes nothing
        self._timer = QTimer(self.native)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self.train_button.changed.connect(lambda *_: self.start())
        self.cancel_button.changed.connect(lambda *_: self.cancel())
        for event in (self._viewer.layers.events.inserted, self._viewer.layers.events.removed):
            event.connect(lambda *_: self.layers.reset_choices())

    @property
    def viewer(self) -> Any:
        """The viewer this widget belongs to."""
        return self._viewer

    def _colour_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        layers = self._viewer.layers
        return [(lyr.name, lyr) for lyr in layers if isinstance(lyr, Image) and lyr.rgb]

    @property
    def busy(self) -> bool:
        """A training job is running."""
        return self.job is not None and not self.job.done

    def start(self) -> FineTuneJob | None:
        """Start training from the widget's inputs; bad input is shown, never raised.

        Returns:
            The started job, or None when the input was refused or a job runs.
        """
        if self.busy:
            self._error("a training job is running; cancel it first")
            return None
        try:
            from tinct.models import user_store

            typed = str(self.model_name.value)
            name = user_store.check_new_name(typed, replace=self.replace.value)
            replacing = user_store.is_user_model(name)
            arrays, names = example_arrays(list(self.layers.value or ()))
            folder = str(self.folder.value or "").strip()
            folders = [folder] if folder and folder != "." else []
            if folders and not Path(folder).is_dir():
                raise ValueError(f"no such folder: {folder}")
            if not arrays and not folders:
                raise ValueError("pick colour example layers and/or a folder of colour images")
            if not self.base.value:
                raise ValueError("no base model to fine-tune (none is trainable with weights)")
            job = self.job_factory(
                arrays,
                folders,
                name=name,
                names=names,
                base=self.base.value,
                minutes=float(self.minutes.value),
                replace=bool(self.replace.value),
            )
        except Exception as exc:
            self._error(str(exc))
            return None
        self.job = job.start()
        self._jobs[:] = [self.job]
        _STARTED[:] = [*(j for j in _STARTED if not j.done), self.job]  # waited for at exit
        self.last_error = None
        self.progress.value = 0
        self.score.value = ""
        notes = [name_note(typed, name)]
        if self.replace.value and not replacing:  # the ticked box had nothing to act on
            notes.append(f"a new model: there was no user model {name!r} to replace")
        self._note = "; ".join(n for n in notes if n)
        self.status.value = f"starting…; {self._note}" if self._note else "starting…"
        if self._note:  # the status line is soon overwritten by the progress: notified too
            show_info(f"tinct: {self._note}")
        self.train_button.enabled = False
        self.cancel_button.enabled = True
        self._timer.start()
        return self.job

    def cancel(self) -> None:
        """Stop the running job; it keeps and registers the best weights so far."""
        if self.busy and self.job is not None:
            self.job.cancel()
            p = self.job.progress  # before the first step (loading a folder) nothing is kept
            training = p is not None and p.phase == "training"
            self.status.value = _CANCELLING if training else CANCELLING_EARLY
            self.cancel_button.enabled = False

    def _poll(self) -> None:
        job = self.job
        if job is None or not self._alive():
            self._timer.stop()
            return
        p = job.progress
        if p is not None:
            if p.phase in ("preparing", "training"):  # saving and done keep how far it got
                self.progress.max = 0 if p.phase == "preparing" else _STEPS  # 0: a busy bar
                self.progress.value = round(p.fraction * _STEPS)
            if p.best is not None:
                base = f" (base {p.base_score:.2f} dB)" if p.base_score is not None else ""
                self.score.value = f"{p.best:.2f} dB{base}"
            if not job.cancelled or p.phase in ("saving", "done"):  # else: "cancelling…"
                self.status.value = cut(p.message)
        if job.done:
            self._timer.stop()
            self._finished(job)

    def _finished(self, job: FineTuneJob) -> None:
        if self.progress.max == 0:  # it ended before training: no busy bar left, an empty one
            self.progress.max, self.progress.value = _STEPS, 0
        self.train_button.enabled = True
        self.cancel_button.enabled = False
        if job.error is not None:
            if type(job.error).__name__ == "Cancelled":
                self.status.value = "cancelled before the first step: nothing was saved"
            else:
                from tinct.napari_plugin.progress import error_text

                self._error(error_text(job.error))
            return
        result = job.result
        self.last_result = result
        if not result.cancelled:  # type: ignore[union-attr]
            self.progress.value = _STEPS  # a cancelled run keeps how far it got
        um = result.model  # type: ignore[union-attr]
        what = "cancelled; kept" if result.cancelled else "saved"  # type: ignore[union-attr]
        steps = result.steps  # type: ignore[union-attr]
        notes = [self._note] if self._note else []
        if steps == 0:  # saved, but nothing learned: not to be taken for a trained model
            zero = zero_steps_note(
                getattr(result, "score", None), getattr(result, "base_score", None)
            )
            notes.append(zero)
            show_warning(f"tinct: {um.name}: {zero}")
        self.status.value = cut(
            f"{what} {um.name} ({steps} step{'' if steps == 1 else 's'})"
            + "".join(f"; {n}" for n in notes)
        )
        self.base.reset_choices()
        refresh_colorize_widgets(select=um.name, viewer=self._viewer)
        show_info(f"tinct: {um.summary()} It is selected in the Colorize widget.")


#: Longest wait (s) at the interpreter's exit for a cancelled job to end.
STOP_WAIT_S = 120.0
#: The jobs the Train widgets of this process started (for the exit hook).
_STARTED: list[Any] = []


def _stop_jobs(jobs: list[Any], timeout: float = STOP_WAIT_S) -> None:
    """Cancel the running jobs and wait for them to end (they keep their best weights).

    Run at the interpreter's exit (napari quit with a job running). A job's thread is a
    daemon: left running, it is killed inside a torch call as the interpreter ends,
    which aborts the process ("terminate called without an active exception").
    """
    running = [job for job in jobs if not job.done]
    for job in running:
        job.cancel()
    for job in running:
        with contextlib.suppress(Exception):  # its error or a timeout: nothing to show now
            job.wait(timeout)


atexit.register(_stop_jobs, _STARTED)


def _default_job(examples: Any, folders: Any, **kwargs: Any) -> FineTuneJob:
    from tinct.training.finetuning import FineTuneJob

    return FineTuneJob(examples, folders, **kwargs)
