"""How the napari Colorize widget runs a job body: one at a time, off the main thread.

A :class:`JobRunner` runs one body (a generator from :mod:`tinct.napari_plugin.jobs`)
at a time, in a napari thread worker or synchronously in the calling thread
(tests, scripts), and delivers what it yields and returns to callbacks in the
main thread. :func:`guarded` keeps every exception of a body inside the worker,
returned as ``("error", exc)``. No Qt widgets, no layers, and no engine here;
napari's threading is imported on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any

__all__ = ["JobBody", "JobRunner", "guarded"]

#: A job body: ``body(arg)`` is a generator of progress items that returns a result.
JobBody = Callable[[Any], Generator[Any, None, Any]]


def guarded(body: JobBody, arg: Any) -> Generator[Any, None, Any]:
    """Run a job body, turning its exceptions into a returned ``("error", exc)``.

    superqt drops ``RuntimeError`` from a worker without emitting ``finished``
    (it takes them for a deleted worker), and the engine's ``Cancelled`` and
    torch's out-of-memory errors are ``RuntimeError``: so none may escape.
    """
    try:
        result = yield from body(arg)
    except Exception as exc:
        return ("error", exc)
    return result


class JobRunner:
    """Runs one job body at a time, in a napari thread worker or synchronously.

    The callbacks run in the main thread: ``on_yielded(item)`` for each item
    the body yields, ``on_returned(value)`` with what it returns (see
    :func:`guarded`), ``on_errored(exc)`` for an exception that escapes, and
    ``on_finished()`` last, once the runner is idle again.

    Args:
        on_yielded: Called with each yielded item.
        on_returned: Called with the body's return value.
        on_errored: Called with an exception that escapes.
        on_finished: Called when the job has ended.
        sync: Run bodies synchronously in the calling thread.

    Attributes:
        sync: Run bodies synchronously in the calling thread.
        cancelled: The running (or last) job was cancelled.
        cancel_event: Set to stop the engine; cleared when a job starts.
    """

    def __init__(
        self,
        on_yielded: Callable[[Any], None],
        on_returned: Callable[[Any], None],
        on_errored: Callable[[BaseException], None],
        on_finished: Callable[[], None],
        *,
        sync: bool = False,
    ) -> None:
        self._on_yielded = on_yielded
        self._on_returned = on_returned
        self._on_errored = on_errored
        self._on_finished = on_finished
        self.sync = sync
        self.cancelled = False
        self.cancel_event = threading.Event()
        self._worker: Any = None

    @property
    def busy(self) -> bool:
        """A job is running."""
        return self._worker is not None

    def start(self, body: JobBody, arg: Any) -> Any:
        """Run ``body(arg)``; the runner must be idle.

        Returns:
            The started napari worker, or ``None`` in sync mode (the job has
            then ended and every callback has run).
        """
        self.cancelled = False
        self.cancel_event.clear()
        if self.sync:
            self._run_sync(guarded(body, arg))
            return None
        from napari.qt.threading import create_worker

        worker = create_worker(guarded, body, arg, _start_thread=False)
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()
        return worker

    def cancel(self) -> bool:
        """Ask the running job to stop (after the current plane, or inside the engine).

        Returns:
            Whether a job was running.
        """
        if self._worker is None:
            return False
        self.cancelled = True
        self.cancel_event.set()
        if self._worker != "sync":
            self._worker.quit()
        return True

    def _run_sync(self, gen: Generator[Any, None, Any]) -> None:
        self._worker = "sync"
        try:
            while True:
                self._on_yielded(next(gen))
        except StopIteration as stop:
            self._on_returned(stop.value)
        except Exception as exc:
            self._on_errored(exc)
        finally:
            self._finished()

    def _finished(self, *_: Any) -> None:
        self._worker = None
        self._on_finished()
