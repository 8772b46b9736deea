"""Run and Cancel of the napari Colorize widget: the life of a job (a mix-in of the widget).

One job runs at a time (:class:`tinct.napari_plugin.job_runner.JobRunner`); a request
made while one runs is queued, and only the newest is kept; when the job ends
the queued request is re-snapshotted and run. **Cancel** stops the job after
the current plane, or inside the engine. A run also stops by itself when the
layer it colorizes is removed from the viewer (no result is written for a
layer that is gone) and when the viewer or the dock closes. The progress bar
follows a colorize run and ends full, or emptied with ``cancelled`` or ``failed``
(:mod:`tinct.napari_plugin.progress`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from tinct.cancel import Cancelled
from tinct.napari_plugin import jobs
from tinct.napari_plugin.hints_panel import _N_SWATCHES, SWATCH_TIP
from tinct.napari_plugin.progress import State, cancelled_status, error_text, progress_view
from tinct.napari_plugin.status_line import on_undock

__all__ = ["RunMixin"]


def _unwrapped(obj: Any) -> Any:
    """The object behind napari's plugin proxy (a plugin sees proxies of the viewer's layers)."""
    return getattr(obj, "__wrapped__", obj)


class RunMixin:
    """Submitting, queueing, cancelling and ending the widget's jobs."""

    if TYPE_CHECKING:  # the rest of ColorizeWidget, which this mix-in is part of

        def __getattr__(self, name: str) -> Any: ...

    _running_job: jobs.Job | None = None  # the job in flight (colorize or suggest)
    _pending: tuple[str, Any] | None = None  # the newest request queued behind it
    _stop_reason: str = ""  # why the widget itself cancelled the job in flight
    _colorizing: bool = False  # the job in flight is a colorize run (the bar follows it)
    _planes: tuple[int, int] = (0, 1)  # planes written by the last colorize run, of how many
    _progress_state: State = "idle"  # what the bar shows now
    _warned: str = ""  # the last warning of the colorize run in flight
    _told_run: frozenset[str] = frozenset()  # the warnings of the colorize run in flight
    _told_last: frozenset[str] = frozenset()  # the last finished run's: not notified again

    def _watch_runs(self) -> None:
        """Stop the job in flight when the widget dies or its input layer is removed."""
        runner = self._runner  # not self: the widget is gone when ``destroyed`` fires
        self.native.destroyed.connect(lambda *_: runner.cancel())
        on_undock(self.native, self._undocked)  # the dock's close button deletes nothing
        self._viewer.layers.events.removed.connect(self._on_layer_removed)

    def _undocked(self) -> None:
        """The dock was closed: stop the run in flight, Live and the bridge server.

        Nobody sees what an edit would re-run, and the server's box is gone with the dock.
        """
        self.live.value = False
        self.server.value = False
        if self._runner.busy:
            self._stop_reason = "the Colorize dock was closed"
        self.cancel()

    def cancel(self) -> None:
        """Stop the running job after the current plane; drop any queued re-run."""
        self._pending = None
        self._timer.stop()
        if self._runner.cancel():
            self._cancelling()

    def _cancelling(self) -> None:
        self.status.value = "cancelling…"
        if self._colorizing:
            self._show_progress("cancelling")

    def _show_progress(self, state: State) -> None:
        """Show the colorize run's progress in ``state`` (the bar's value, range and text)."""
        view = progress_view(state, *self._planes)
        bar = self.progress
        bar.value = 0  # the new range always holds 0
        bar.max = view.maximum
        bar.value = view.value
        bar.native.setFormat(view.text)
        self._progress_state = state

    def _plane_done(self, done: int, total: int) -> None:
        """A plane of the colorize run was written: ``done`` of ``total``."""
        self._planes = (done, total)
        self._show_progress("cancelling" if self._progress_state == "cancelling" else "running")

    @property
    def busy(self) -> bool:
        """A job is running."""
        return self._runner.busy

    def _submit(self, kind: str, arg: Any) -> Any:
        if self._runner.busy:
            self._pending = (kind, arg)  # keep only the newest request
            return None
        if kind == "colorize":
            body = functools.partial(
                jobs.colorize_job,
                get_colorizer=self.get_colorizer,
                cancel=self._runner.cancel_event,
            )
            self._planes = (0, len(arg.planes))
            self._warned = ""  # the run's last warning, kept on the status line with "done"
            self._told_run = frozenset()  # its warnings (the next run notifies only new ones)
            self._show_progress("running")
        else:
            body = functools.partial(
                jobs.suggest_job, get_colorizer=self.get_colorizer, k=_N_SWATCHES
            )
        self._running_job = arg if kind == "colorize" else arg[0]
        self._colorizing = kind == "colorize"
        self._stop_reason = ""
        worker = self._runner.start(body, arg)
        if worker is not None:
            self.cancel_button.enabled = True
        return worker

    def _source_present(self, job: jobs.Job) -> bool:
        """Whether the layer a job colorizes is still in the viewer."""
        source = _unwrapped(job.source)
        return any(_unwrapped(layer) is source for layer in self._viewer.layers)

    def _on_layer_removed(self, event: Any) -> None:
        job = self._running_job
        if job is None or not self._runner.busy or not self._alive():
            return
        if _unwrapped(getattr(event, "value", None)) is not _unwrapped(job.source):
            return
        self._pending = None  # a queued re-run would be of the removed layer too
        self._timer.stop()
        if self._runner.cancel():
            self._stop_reason = f"the layer {job.source.name!r} was removed"
            self._cancelling()

    def _on_returned(self, value: Any) -> None:
        if not self._alive():
            return
        if value and value[0] == "error":
            self._on_errored(value[1])
            return
        if value and value[0] == "suggest":
            if self._suggestions_arrived(self._running_job, value[1]):
                self.status.value = SWATCH_TIP
            elif self.status.value == "suggesting colours…":  # for a plane no longer shown
                self.status.value = ""

    def _on_errored(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):  # the user pressed Cancel
            self._runner.cancelled = True
            return
        if self._colorizing:  # a failed suggestion leaves the bar to the run it describes
            self._show_progress("failed")
        self._error(error_text(exc))

    def _on_finished(self) -> None:
        self._running_job = None
        colorizing, self._colorizing = self._colorizing, False
        if colorizing:  # a Live re-run that repeats a warning shows it, notifies it no more
            self._told_last = self._told_run
        if not self._alive():  # the viewer closed during the run: nothing left to update
            return
        done, total = self._planes
        failed = self._progress_state == "failed"
        # Cancel pressed as the last plane was written: the run is whole, so it says done
        whole = colorizing and not failed and not self._stop_reason and done >= total
        if self._runner.cancelled and not whole:
            planes = self._planes if colorizing else (0, 1)
            self.status.value = cancelled_status(self._stop_reason, *planes)
            if colorizing:
                self._show_progress("cancelled")
        elif colorizing and not failed:
            self._show_progress("done")
            if self._runner.cancelled:
                self.status.value = f"{self.status.value} (it ended before Cancel took effect)"
        self.cancel_button.enabled = False
        pending, self._pending = self._pending, None
        if pending is not None and not self._runner.cancelled:
            kind, arg = pending
            if kind == "colorize":  # re-snapshot so the newest inputs are used
                self.run(whole_stack=len(arg.planes) > 1 and bool(arg.geometry.leading))
            else:
                self._submit(kind, arg)
