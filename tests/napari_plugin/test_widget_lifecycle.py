"""The Colorize widget while a run is in flight: its input removed, the viewer closed (Xvfb).

Run under a virtual display: ``xvfb-run -a -s "-screen 0 1600x1000x24" pytest -m gui``.
The colorizer is a slow fake, so that the run is still going when the user acts.
"""

from __future__ import annotations

import os
import threading
import time

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


class SlowColorizer:
    """Gray -> RGB copy that works on a plane until ``release`` is set (or ``cancel``).

    With ``honour_cancel=False`` it stands for an engine pass that cannot be interrupted:
    the plane ends only when the test releases it.
    """

    def __init__(self, honour_cancel: bool = True) -> None:
        self.honour_cancel = honour_cancel
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def colorize(self, image, hints=(), reference=None, cancel=None, **kw):
        self.started.set()
        self.calls += 1
        t0 = time.monotonic()
        while not self.release.is_set() and time.monotonic() - t0 < 20:
            if self.honour_cancel and cancel is not None and cancel.is_set():
                from tinct.cancel import Cancelled

                raise Cancelled("cancelled")
            time.sleep(0.01)
        return np.repeat(np.asarray(image)[..., None], 3, axis=-1).astype(np.uint8)


def _running(viewer, qtbot, honour_cancel=True):
    """A Colorize widget running a whole-stack job on a 6-plane stack."""
    _dock, widget = viewer.window.add_plugin_dock_widget("tinct", "Colorize")
    widget.sync = False
    fake = SlowColorizer(honour_cancel)
    widget.colorizer_factory = lambda m, d: fake
    layer = viewer.add_image(np.zeros((6, 32, 32), np.uint8), name="stack")
    widget.image.value = layer
    widget.whole_stack.value = True
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(fake.started.is_set, timeout=10_000)
    return widget, worker, fake, layer


def test_closing_the_viewer_during_a_run_stops_it_quietly(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget, worker, fake, _ = _running(viewer, qtbot)
    cancel = widget._runner.cancel_event
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        viewer.close()  # the worker's end must not touch the deleted widget
    assert cancel.is_set() and fake.calls == 1  # stopped, not left running to the end


def test_closing_the_dock_during_a_run_stops_it_and_live(make_napari_viewer, qtbot):
    """The dock's close button takes the widget out without deleting it: still stopped."""
    viewer = make_napari_viewer()
    widget, worker, fake, _ = _running(viewer, qtbot)
    widget.live.value = True
    dock = next(d for d in viewer.window._dock_widgets.values() if d.widget() is widget.native)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        viewer.window.remove_dock_widget(dock)  # what the dock's "x" does
    assert widget._runner.cancel_event.is_set() and fake.calls == 1
    assert widget.status.value == "cancelled: the Colorize dock was closed"
    assert not widget.live.value  # a hint edit re-runs nothing for a closed dock


@pytest.mark.parametrize("honour_cancel", [True, False], ids=["engine-stops", "plane-ends"])
def test_removing_the_input_layer_during_a_run_stops_it(make_napari_viewer, qtbot, honour_cancel):
    viewer = make_napari_viewer()
    widget, worker, fake, layer = _running(viewer, qtbot, honour_cancel=honour_cancel)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        viewer.layers.remove(layer)
        fake.release.set()  # the plane in flight ends (engine-stops: it has stopped already)
    assert fake.calls == 1  # not the other five planes of a layer that is gone
    assert len(viewer.layers) == 0  # and no result layer for it (even of the plane in flight)
    assert widget.status.value == "cancelled: the layer 'stack' was removed"
    assert not widget.busy


# ------------------------------------------------------------------- the progress bar


class GatedColorizer:
    """Colours the first ``free`` planes at once; then fails, or works until cancelled."""

    def __init__(self, free: int, fail: bool = False) -> None:
        self.free, self.fail, self.calls = free, fail, 0

    def colorize(self, image, hints=(), reference=None, cancel=None, **kw):
        self.calls += 1
        if self.calls > self.free:
            if self.fail:
                raise RuntimeError("CUDA out of memory")
            t0 = time.monotonic()
            while not (cancel is not None and cancel.is_set()) and time.monotonic() - t0 < 20:
                time.sleep(0.01)
            from tinct.cancel import Cancelled

            raise Cancelled("cancelled")
        return np.full((*np.shape(image), 3), 200, np.uint8)


def _stack_run(viewer, fake, monkeypatch, planes=5):
    monkeypatch.setattr("tinct.napari_plugin.status_line.show_error", lambda *a: None)
    _dock, widget = viewer.window.add_plugin_dock_widget("tinct", "Colorize")
    widget.sync = False
    widget.colorizer_factory = lambda m, d: fake
    widget.image.value = viewer.add_image(np.zeros((planes, 32, 32), np.uint8), name="stack")
    widget.whole_stack.value = True
    assert widget.progress.native.text() == ""  # no "0%" before the first run
    worker = widget.run()
    assert worker is not None
    return widget, worker


def test_cancel_empties_the_progress_bar_and_says_how_far_it_got(
    make_napari_viewer, qtbot, monkeypatch
):
    viewer = make_napari_viewer()
    widget, worker = _stack_run(viewer, GatedColorizer(free=2), monkeypatch)
    qtbot.waitUntil(lambda: widget.progress.value == 2, timeout=10_000)  # 40 % of 5 planes
    assert widget.progress.native.text() == "2/5 planes"
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        widget.cancel()
        assert widget.progress.native.text() == "cancelling…"
    bar = widget.progress
    assert (bar.value, bar.max, bar.native.text()) == (0, 5, "cancelled")  # not stuck at 40 %
    assert widget.status.value == "cancelled: 2 of 5 planes colorized"
    out = viewer.layers["stack colorized (tinct-base)"].data
    assert out[:2].all() and not out[2:].any()  # what the status line says


def test_an_error_empties_the_progress_bar_and_a_finished_run_fills_it(
    make_napari_viewer, qtbot, monkeypatch
):
    viewer = make_napari_viewer()
    fake = GatedColorizer(free=3, fail=True)
    widget, _worker = _stack_run(viewer, fake, monkeypatch)
    qtbot.waitUntil(lambda: not widget.busy, timeout=10_000)
    bar = widget.progress
    assert (bar.value, bar.max, bar.native.text()) == (0, 5, "failed")
    assert "CUDA out of memory" in widget.status.value
    fake.free = 99  # the same run again, now without the error: it ends with a full bar
    assert widget.run() is not None
    qtbot.waitUntil(lambda: not widget.busy, timeout=10_000)
    assert (bar.value, bar.max, bar.native.text()) == (5, 5, "done (5 planes)")
    assert widget.status.value == "done 5/5"


def test_a_run_that_cannot_start_says_failed_not_a_stale_done(make_napari_viewer, monkeypatch):
    monkeypatch.setenv("TINCT_NAPARI_SYNC", "1")
    monkeypatch.setattr("tinct.napari_plugin.status_line.show_error", lambda *a: None)
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("tinct", "Colorize")
    widget.colorizer_factory = lambda m, d: GatedColorizer(free=99)
    widget.image.value = viewer.add_image(np.zeros((32, 32), np.uint8), name="plane")
    widget.run()
    assert widget.progress.native.text() == "done" and widget.progress.value == 1
    widget.model.value = "levin"  # colorizes from hints only: refused before it starts
    widget.run()
    assert widget.progress.native.text() == "failed" and widget.progress.value == 0
