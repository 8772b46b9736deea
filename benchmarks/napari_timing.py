"""Timing helpers shared by the napari benchmarks (``bench_napari*.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_idle(widget: Any, timeout: float = 600.0) -> None:
    """Process Qt events until the Colorize widget has no run in flight or pending."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    t0 = time.perf_counter()
    while (widget.busy or widget._timer.isActive()) and time.perf_counter() - t0 < timeout:
        app.processEvents()
        time.sleep(0.005)


def time_change(widget: Any, out: Any, change: Callable[[], None]) -> float:
    """Seconds from ``change()`` until the output layer ``out`` next receives data.

    Idles in Qt's event loop, as napari does, until the layer changes (at most
    30 s; ``inf`` if it never does), then waits for the widget to be idle.
    """
    from qtpy.QtCore import QEventLoop, QTimer

    stamps: list[float] = []
    loop = QEventLoop()

    def done(*_: object) -> None:
        stamps.append(time.perf_counter())
        loop.quit()

    out.events.data.connect(done)
    QTimer.singleShot(30_000, loop.quit)
    t0 = time.perf_counter()
    change()
    if not stamps:
        loop.exec()
    out.events.data.disconnect(done)
    wait_idle(widget)
    return (stamps[0] if stamps else float("inf")) - t0
