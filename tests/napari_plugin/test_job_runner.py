"""The runner of the Colorize widget's jobs (tinct.napari_plugin.job_runner): no widget.

Everything but the last test runs without Qt; that one runs the runner in a real
napari thread worker and needs a Qt platform.
"""

import os
import threading

import pytest

from tinct.napari_plugin import jobs
from tinct.napari_plugin.job_runner import JobRunner, guarded


def run_to_end(gen):
    items = []
    try:
        while True:
            items.append(next(gen))
    except StopIteration as stop:
        return items, stop.value


def test_guarded_returns_errors():
    def body(arg):
        yield arg
        raise RuntimeError("boom")

    items, result = run_to_end(guarded(body, 1))
    assert items == [1] and result[0] == "error" and str(result[1]) == "boom"


class Recorder:
    """The runner's four callbacks, recording what they receive."""

    def __init__(self):
        self.events = []
        self.runner = JobRunner(
            lambda item: self.events.append(("yielded", item)),
            lambda value: self.events.append(("returned", value)),
            lambda exc: self.events.append(("errored", exc)),
            lambda: self.events.append(("finished", self.runner.busy)),
            sync=True,
        )


def test_sync_runner_calls_back_in_order_and_is_idle_when_finished():
    rec = Recorder()

    def body(arg):
        assert rec.runner.busy
        yield ("status", arg)
        return ("done", arg)

    assert rec.runner.start(body, "x") is None
    assert rec.events == [
        ("yielded", ("status", "x")),
        ("returned", ("done", "x")),
        ("finished", False),
    ]
    assert not rec.runner.busy and not rec.runner.cancel()


def test_sync_runner_cancel_and_restart():
    rec = Recorder()

    def body(arg):
        yield "first"
        assert rec.runner.cancel()  # as if Cancel were pressed while it runs
        assert rec.runner.cancel_event.is_set()
        yield "second"

    rec.runner.start(body, None)
    assert rec.runner.cancelled
    rec.runner.start(lambda arg: iter(()), None)
    assert not rec.runner.cancelled and not rec.runner.cancel_event.is_set()


def test_sync_runner_reports_callback_errors():
    rec = Recorder()
    rec.runner._on_yielded = lambda item: 1 / 0
    rec.runner.start(lambda arg: iter([1]), None)
    assert isinstance(rec.events[0][1], ZeroDivisionError)
    assert rec.events[-1] == ("finished", False)


@pytest.mark.gui
@pytest.mark.skipif(
    not (
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM") == "offscreen"
    ),
    reason="needs a Qt platform: a display or QT_QPA_PLATFORM=offscreen",
)
def test_threaded_runner_delivers_in_the_main_thread(qtbot):
    pytest.importorskip("napari")
    rec = Recorder()
    rec.runner.sync = False
    main = threading.get_ident()
    threads = []

    def body(arg):
        threads.append(threading.get_ident())
        yield "item"
        return "value"

    worker = rec.runner.start(body, None)
    assert worker is not None and rec.runner.busy
    qtbot.waitUntil(lambda: not rec.runner.busy, timeout=10_000)
    assert threads and threads[0] != main
    assert rec.events == [("yielded", "item"), ("returned", "value"), ("finished", False)]


def test_the_jobs_module_still_offers_the_runner():
    """``tinct.napari_plugin.jobs.JobRunner`` and ``guarded`` were public there first."""
    assert jobs.JobRunner is JobRunner and jobs.guarded is guarded
