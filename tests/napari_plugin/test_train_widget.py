"""The napari Train widget, driven through the npe2 manifest (needs Xvfb).

A few seconds of real training (a small user model as the base, small crops) in
the widget's background thread; the new model then appears in the Colorize
widget's list, is selected there and makes the next run's colour.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.gui

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    pytest.skip(
        "napari needs a display: run under xvfb-run (offscreen Qt does not work)",
        allow_module_level=True,
    )

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import QTimer  # noqa: E402

from tinct.engine.colorizer import Colorizer  # noqa: E402
from tinct.models import user_store  # noqa: E402
from tinct.napari_plugin.train_widget import (  # noqa: E402
    CANCELLING_EARLY,
    ZERO_STEPS,
    TrainWidget,
)
from tinct.training.finetuning import FineTuneJob  # noqa: E402


def _colour(seed, shape=(96, 96)):
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 216, 3)
    return np.clip(base + rng.integers(-30, 30, (*shape, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def widgets(make_napari_viewer, small_store, monkeypatch):
    monkeypatch.setenv("TINCT_NAPARI_SYNC", "1")  # Colorize runs in the main thread
    viewer = make_napari_viewer()
    _, colorize = viewer.window.add_plugin_dock_widget("tinct", "Colorize")
    _, train = viewer.window.add_plugin_dock_widget("tinct", "Train")
    made: list[str] = []

    def colorizer(model, device):
        made.append(model)
        return Colorizer(model, device="cpu")

    colorize.colorizer_factory = colorizer
    colorize.made = made

    def job(examples, folders, **kw):  # the widget's job, with training settings for a test
        return FineTuneJob(examples, folders, batch_size=2, crop=32, warmup=1, threads=1, **kw)

    train.job_factory = job
    layers = [viewer.add_image(_colour(i), name=f"slide {i}", rgb=True) for i in range(4)]
    viewer.add_image(np.tile(np.arange(48, dtype=np.uint8) * 5, (48, 1)), name="gray")
    train.layers.reset_choices()
    train.layers.value = layers
    train.base.reset_choices()
    train.base.value = "small0"
    return viewer, colorize, train


def test_train_widget_opens_through_the_manifest(widgets):
    _viewer, _colorize, train = widgets
    assert isinstance(train, TrainWidget)
    assert "small0" in train.base.choices and "tinct-base" in train.base.choices
    assert "tinct-small" not in train.base.choices  # no weights: nothing to fine-tune
    assert [lyr.name for lyr in train.layers.choices] == [f"slide {i}" for i in range(4)]


def test_the_score_lines_up_with_the_other_rows(widgets):
    viewer, _colorize, train = widgets
    train.score.value = "31.03 dB (base 14.53 dB)"  # a short value did shift its row's name
    viewer.window._qt_window.resize(1400, 900)
    viewer.window._qt_window.show()
    train.native.adjustSize()

    def x(widget):
        return widget.native.mapTo(train.native, widget.native.rect().topLeft()).x()

    assert x(train.score) == x(train.progress) == x(train.status)


def test_training_in_the_widget_feeds_the_colorize_widget(widgets, qtbot):
    viewer, colorize, train = widgets
    train.minutes.value = 0.1
    train.model_name.value = "napari-he"
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(50)
    job = train.start()
    assert job is not None and train.busy and not train.train_button.enabled
    qtbot.waitUntil(lambda: not train.busy and not train._timer.isActive(), timeout=240_000)
    timer.stop()
    assert train.last_error is None, train.last_error
    assert len(ticks) > 10  # the event loop kept running while the model trained
    result = train.last_result
    assert result.model.name == "napari-he" and result.steps >= 1 and not result.cancelled
    assert train.progress.value == train.progress.max and "dB" in train.score.value
    assert "saved napari-he" in train.status.value
    names = [name for _label, name in colorize._model_list()]
    assert "napari-he" in names and colorize.model.value == "napari-he"  # listed and selected
    assert "napari-he" in train.base.choices  # and a base for the next fine-tune

    colorize.image.value = viewer.layers["gray"]
    colorize.run()
    assert colorize.last_error is None, colorize.last_error
    out = viewer.layers["gray colorized (napari-he)"]  # the layer says which model made it
    assert out.data.shape == (48, 48, 3) and colorize.made[-1] == "napari-he"


def test_cancel_keeps_the_best_weights_so_far(widgets, qtbot):
    _viewer, colorize, train = widgets
    train.minutes.value = 30
    train.model_name.value = "stopped"
    train.start()
    qtbot.waitUntil(
        lambda: train.job.progress is not None and train.job.progress.step >= 2, timeout=120_000
    )
    train.cancel()
    qtbot.waitUntil(lambda: not train.busy and not train._timer.isActive(), timeout=120_000)
    assert train.last_result.cancelled and "cancelled; kept stopped" in train.status.value
    assert train.progress.value < train.progress.max  # how far it got, not "finished"
    assert user_store.is_user_model("stopped")
    assert "stopped" in [name for _label, name in colorize._model_list()]


def test_cancel_while_a_folder_loads_stops_between_two_images(
    widgets, qtbot, tmp_path, monkeypatch
):
    """Hundreds of files took half a minute to load before Cancel (or closing napari) acted."""
    from PIL import Image

    from tinct.training import datasets

    _viewer, _colorize, train = widgets
    folder = tmp_path / "tiles"
    folder.mkdir()
    for i in range(40):
        Image.fromarray(_colour(i, (64, 64))).save(folder / f"tile{i:02d}.png")
    train.layers.value = []
    train.folder.value = str(folder)
    train.model_name.value = "never"
    entered, release, decoded = threading.Event(), threading.Event(), []
    inner = datasets._load_rgb

    def load(path, size):  # the first file is still being read when the user cancels
        decoded.append(path)
        entered.set()
        release.wait(30)
        return inner(path, size)

    monkeypatch.setattr(datasets, "_load_rgb", load)
    assert train.start() is not None
    assert entered.wait(60)
    train._poll()
    assert train.status.value == "reading images: 0 of 40"  # not a bare "preparing"
    assert train.progress.max == 0  # Qt's busy bar: no share of the budget is known yet
    train.cancel_button.native.click()
    train._poll()  # the job still says "reading images": the line says the cancel
    assert train.status.value == CANCELLING_EARLY
    release.set()
    qtbot.waitUntil(lambda: not train.busy and not train._timer.isActive(), timeout=60_000)
    assert len(decoded) == 1  # of 40
    assert train.status.value == "cancelled before the first step: nothing was saved"
    assert (train.progress.value, train.progress.max) == (0, 1000)  # not left busy
    assert not user_store.is_user_model("never")


def test_bad_input_is_shown_not_raised(widgets, monkeypatch):
    _viewer, _colorize, train = widgets
    shown: list[str] = []
    monkeypatch.setattr("tinct.napari_plugin.status_line.show_error", shown.append)
    train.model_name.value = "tinct-base"
    assert train.start() is None and "built-in" in train.last_error
    train.model_name.value = "ok-name"
    train.layers.value = []
    assert train.start() is None and "pick colour example layers" in train.last_error
    assert len(shown) == 2 and not train.busy


class _InstantJob:
    """A fine-tune job that ends at once with a saved model (no training)."""

    def __init__(self, name):
        self.name, self.done, self.cancelled, self.error, self.progress = (
            name,
            False,
            False,
            None,
            None,
        )
        model = type("UM", (), {"name": name, "summary": lambda self: f"{name} saved."})()
        self.result = type("R", (), {"model": model, "cancelled": False, "steps": 3})()

    def start(self):
        return self

    def cancel(self):
        self.cancelled = True


def test_the_bar_does_not_drop_to_empty_while_the_model_is_saved(widgets):
    """The saving and done phases have no share of the budget: the bar went 100% -> 0 -> 100%."""
    from tinct.training.finetuning import FineTuneProgress

    _viewer, _colorize, train = widgets
    job = _InstantJob("kept")
    job.result.cancelled = True  # cancelled: the bar is to stay where training stopped
    train.job_factory = lambda examples, folders, name, **kw: job
    train.model_name.value = "kept"
    train.start()
    train._timer.stop()
    job.progress = FineTuneProgress("preparing", message="matching the palette")
    train._poll()
    assert train.progress.max == 0  # busy: how long preparing takes is not known
    job.progress = FineTuneProgress("training", 40, 20.0, 0.4, message="step 40")
    train._poll()
    assert (train.progress.value, train.progress.max) == (400, 1000)
    job.progress = FineTuneProgress("saving", message="saving kept")
    train._poll()
    assert train.progress.value == 400 and train.status.value == "saving kept"
    job.progress, job.done = FineTuneProgress("done", 40, message="saved kept"), True
    train._poll()
    assert train.progress.value == 400 and train.status.value.startswith("cancelled; kept kept")


def test_closing_the_train_dock_cancels_its_job(widgets):
    """The dock's close button takes the widget out without deleting it: still cancelled."""
    viewer, _colorize, train = widgets
    train.job_factory = lambda examples, folders, name, **kw: _InstantJob(name)
    job = train.start()
    assert job is not None and train.busy
    dock = next(d for d in viewer.window._dock_widgets.values() if d.widget() is train.native)
    viewer.window.remove_dock_widget(dock)  # what the dock's "x" does
    assert job.cancelled  # not left training (and saving) for a closed dock


def test_a_job_running_at_exit_is_cancelled_and_waited_for(widgets):
    """Left running, the daemon thread dies inside torch at exit: the process aborts."""
    from tinct.napari_plugin import train_widget

    _viewer, _colorize, train = widgets
    waited: list[float] = []

    class Job(_InstantJob):
        def wait(self, timeout=None):
            waited.append(timeout)
            self.done = True

    job = Job("at-exit")
    train.job_factory = lambda examples, folders, name, **kw: job
    train.model_name.value = "at-exit"
    assert train.start() is job and job in train_widget._STARTED
    train_widget._stop_jobs(train_widget._STARTED, timeout=5.0)  # what atexit runs
    assert job.cancelled and waited == [5.0]
    train_widget._stop_jobs(train_widget._STARTED, timeout=5.0)
    assert waited == [5.0]  # a job that ended is not waited for again
    train._poll()


def test_a_model_saved_before_any_step_is_said_to_be_the_base(widgets, monkeypatch):
    _viewer, _colorize, train = widgets
    warned: list[str] = []
    monkeypatch.setattr("tinct.napari_plugin.train_widget.show_warning", warned.append)
    instant = _InstantJob("too-short")
    instant.result.steps = 0
    train.job_factory = lambda examples, folders, name, **kw: instant
    train.model_name.value = "too-short"
    train.start()
    instant.done = True
    train._poll()
    assert train.status.value.startswith("saved too-short (0 steps); no training step fitted")
    assert warned == [f"tinct: too-short: {ZERO_STEPS}"]


def test_a_model_saved_with_its_palette_matched_only_is_not_said_to_be_the_base(
    widgets, monkeypatch
):
    """0 steps, but the matched palette scored better and was kept: not the base's colours."""
    _viewer, _colorize, train = widgets
    warned: list[str] = []
    monkeypatch.setattr("tinct.napari_plugin.train_widget.show_warning", warned.append)
    instant = _InstantJob("matched")
    instant.result.steps, instant.result.score, instant.result.base_score = 0, 27.13, 14.06
    train.job_factory = lambda examples, folders, name, **kw: instant
    train.model_name.value = "matched"
    train.start()
    instant.done = True
    train._poll()
    note = (
        "no training step fitted in the time given: only its palette was matched to the "
        "examples (held-out 14.06 -> 27.13 dB); give it more minutes to train"
    )
    assert train.status.value == f"saved matched (0 steps); {note}"
    assert warned == [f"tinct: matched: {note}"] and "as its base" not in note


def test_a_name_saved_in_lowercase_is_said_not_silent(widgets, monkeypatch):
    _viewer, _colorize, train = widgets
    told: list[str] = []
    monkeypatch.setattr("tinct.napari_plugin.train_widget.show_info", told.append)
    made: list[str] = []
    train.job_factory = lambda examples, folders, name, **kw: made.append(name) or _InstantJob(name)
    train.model_name.value = " Napari-HE"
    job = train.start()
    assert made == ["napari-he"] and train.last_error is None
    note = (
        "saved as 'napari-he' (spaces around the name are dropped; user-model names are lowercase)"
    )
    assert train.status.value == f"starting…; {note}"
    assert told == [f"tinct: {note}"]  # a notification: the progress soon takes the status line
    job.done = True
    train._poll()
    assert train.status.value == f"saved napari-he (3 steps); {note}"

    told.clear()
    train.model_name.value = "plain-name"  # nothing changed: nothing said
    job = train.start()
    assert told == [] and train.status.value == "starting…"
    job.done = True
    train._poll()
    assert train.status.value == "saved plain-name (3 steps)"
    assert told == ["tinct: plain-name saved. It is selected in the Colorize widget."]

    told.clear()
    train.replace.value = True  # nothing of that name to replace: said
    train.model_name.value = "fresh"
    job = train.start()
    assert told == ["tinct: a new model: there was no user model 'fresh' to replace"]
    job.done = True
    train._poll()
    told.clear()
    train.model_name.value = "small0"  # one to replace: nothing to say
    train.start()
    assert told == [] and train.last_error is None


def test_a_long_status_wraps_inside_the_dock(widgets):
    _viewer, _colorize, train = widgets
    from qtpy.QtWidgets import QSizePolicy

    assert train.status.native.wordWrap()  # the dock is at most 440 px: not cut off there
    assert train.status.native.sizePolicy().horizontalPolicy() == QSizePolicy.Policy.Expanding


def test_a_failed_job_is_worded_as_the_cli_words_it(widgets, monkeypatch):
    _viewer, _colorize, train = widgets
    monkeypatch.setattr("tinct.napari_plugin.status_line.show_error", lambda _m: None)
    job = _InstantJob("fails")
    train.job_factory = lambda *a, **kw: job
    train.model_name.value = "fails"
    train.start()
    job.error, job.done = ValueError("no colour images under /data/slides"), True
    train._poll()
    assert train.status.value == "error: no colour images under /data/slides"


def test_minutes_the_box_refuses_or_puts_back_are_said(widgets):
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication

    _viewer, _colorize, train = widgets
    box = train.minutes.native

    def type_in(text):
        box.lineEdit().selectAll()
        QTest.keyClicks(box, text)
        QTest.keyClick(box, Qt.Key.Key_Return)
        QApplication.processEvents()

    type_in("5000")  # the last "0" is dropped by Qt: 500 minutes, said
    assert train.minutes.value == 500
    assert train.status.value == "minutes: 5000 is out of range (0.1 to 1440)"
    type_in("0.01")  # taken as typed, then put back on Enter: said
    assert train.minutes.value == 500
    assert train.status.value == "minutes: 0.01 is out of range (0.1 to 1440); left at 500"
    type_in("7")
    assert train.minutes.value == 7 and train.status.value == ""
