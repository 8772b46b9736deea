"""The napari Colorize widget's **Live** mode (a mix-in of the widget).

With Live on, every change of an input re-runs the colorization on the
current plane on the next pass of the event loop (:data:`RERUN_DELAY_MS`; a
burst of events is coalesced into one run in flight plus the newest request),
and a change that only needs a re-decode of the cached network output runs the
same way (:data:`REDECODE_DELAY_MS`); a moved stack slider re-runs on the new
plane.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["REDECODE_DELAY_MS", "RERUN_DELAY_MS", "LiveMixin"]

#: Debounce delays (ms) for Live re-runs: hint edits / other inputs, and decode-only changes.
#: A hint edit costs about 0.2 s (network pass + propagation at 512²); dragging a point
#: fires many events, which a zero-delay timer batches within one pass of the event loop
#: and the pending-run queue coalesces like slider bursts (one run in flight, the newest
#: request queued), so no time is spent waiting before a run.
RERUN_DELAY_MS = 0
REDECODE_DELAY_MS = 0  # slider bursts are coalesced by the pending-run queue instead


class LiveMixin:
    """Live re-runs: debounce, the widget's liveness and the stack slider."""

    if TYPE_CHECKING:  # the rest of ColorizeWidget, which this mix-in is part of

        def __getattr__(self, name: str) -> Any: ...

    # provided by ColorizeWidget
    live: Any
    image: Any
    native: Any
    sync: bool
    _timer: Any
    _temporal_active: bool

    def _alive(self) -> bool:
        """False once Qt has deleted the widget (events can still arrive while napari closes)."""
        try:
            self.native.objectName()
            self.image.native.objectName()
        except RuntimeError:
            return False
        return True

    def _live_changed(self, decode_only: bool) -> None:
        if not getattr(self, "live", None) or not self._alive():
            return
        if not self.live.value or self.image.value is None:
            return
        if self.sync:
            self.run(whole_stack=False)  # type: ignore[attr-defined]
            return
        delay = REDECODE_DELAY_MS if decode_only else RERUN_DELAY_MS
        if self._timer.isActive() and self._timer.remainingTime() > delay:
            self._timer.stop()
        if not self._timer.isActive():
            self._timer.start(delay)

    def _timer_fired(self) -> None:
        if self._alive():
            self.run(whole_stack=False)  # type: ignore[attr-defined]

    def _on_step_changed(self, *_: Any) -> None:
        self._plane_changed_for_swatches()  # type: ignore[attr-defined]
        source = self.image.value
        if self._temporal_active:
            return  # a temporal run already covers every plane
        if source is not None and source.ndim > 2:
            self._live_changed(decode_only=False)
