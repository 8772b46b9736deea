"""How many CPU threads an engine call uses: PyTorch's intra-op team and NumPy/SciPy's BLAS.

Both settings are process-wide, so every context here is nested- and
concurrency-safe: the first caller sets, the last one restores.
:func:`call_threads` is the policy of one engine call (``Colorizer.colorize``,
colour suggestions, temporal sequences).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch
from threadpoolctl import ThreadpoolController

__all__ = ["blas_single_thread", "call_threads", "cpu_busy", "resolve_threads", "torch_threads"]


#: Shortest interval over which :func:`cpu_busy` measures the other processes' use.
_BUSY_MIN_INTERVAL = 0.2
_BUSY_STATE: dict[str, Any] = {"sample": None, "verdict": None}
_BUSY_LOCK = threading.Lock()


def _cpu_sample() -> tuple[float, float, float] | None:
    """``(wall s, busy CPU s of the machine, CPU s of this process)``, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in fields]
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    busy = sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
    return time.monotonic(), busy / tick, (int(own[11]) + int(own[12])) / tick


def cpu_busy() -> bool:
    """True when *other* processes leave less than one idle core.

    On Linux the machine's busy CPU time minus this process's own, over the time since
    the previous call (at least 0.2 s; between closer calls the last verdict stands), so
    a colorization does not count itself: with the load average (the fallback, for the
    first call and elsewhere), a 2-core machine running only tinct's own hint edits
    reads as busy and drops to one thread.
    """
    now = _cpu_sample()
    if now is not None:
        with _BUSY_LOCK:
            last, verdict = _BUSY_STATE["sample"], _BUSY_STATE["verdict"]
            if last is None or now[0] - last[0] >= _BUSY_MIN_INTERVAL:
                if last is not None:
                    others = max(0.0, (now[1] - last[1]) - (now[2] - last[2])) / (now[0] - last[0])
                    verdict = others + 1.0 > (os.cpu_count() or 1)
                _BUSY_STATE.update(sample=now, verdict=verdict)
        if verdict is not None:
            return bool(verdict)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return False
    return load + 1.0 > (os.cpu_count() or 1)


def resolve_threads(num_threads: int | str | None, device: torch.device) -> int | None:
    """Intra-op thread count to use for one call (``None`` = leave torch's setting).

    ``"auto"``: one thread on a CPU device when the machine is busy (see
    :func:`cpu_busy`). PyTorch's parallel regions wait for every thread of the
    team, so when other processes hold the cores a 2-thread team is often
    several times slower than a single thread (measured 5-20x on a 2-core VM
    with a background job).
    """
    if num_threads is None or device.type != "cpu":
        return None
    if num_threads == "auto":
        return 1 if cpu_busy() and torch.get_num_threads() > 1 else None
    n = int(num_threads)
    if n < 1:
        raise ValueError(f"num_threads must be >= 1, 'auto' or None, got {num_threads!r}")
    return n


class _Nested:
    """A process-wide setting held while any caller needs it.

    The first caller to enter applies it, the last one to leave restores what was
    there (nested and concurrent callers are safe).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._restore: Any = None

    @contextlib.contextmanager
    def hold(self, apply: Any) -> Iterator[None]:
        """Hold the setting; ``apply()`` sets it and returns the function that restores it."""
        with self._lock:
            if self._depth == 0:
                self._restore = apply()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._restore()
                    self._restore = None


_TORCH_THREADS = _Nested()
_BLAS = _Nested()
_BLAS_CONTROLLER: list[ThreadpoolController] = []  # found once (~15 ms): the loaded BLAS libraries


def torch_threads(n: int | None) -> contextlib.AbstractContextManager[None]:
    """Temporarily set ``torch.set_num_threads(n)`` (process-wide; nested/concurrent safe)."""
    if n is None:
        return contextlib.nullcontext()

    def apply() -> Any:
        saved = torch.get_num_threads()
        torch.set_num_threads(n)
        return lambda: torch.set_num_threads(saved)

    return _TORCH_THREADS.hold(apply)


def blas_single_thread() -> contextlib.AbstractContextManager[None]:
    """Run NumPy/SciPy's BLAS (OpenBLAS, MKL, ...) on one thread for the duration.

    After a BLAS call, OpenBLAS's worker threads keep spinning for a while; on a
    machine with few cores they take the cores PyTorch's next parallel region waits
    for. A 512 px hint edit of ``tinct-base`` interleaves small NumPy/SciPy steps
    (hint rasters, Levin's sparse solve) with network passes, and on this project's
    2-core CPU its network pass took 134 ms instead of 68 (the whole edit 225 ms
    instead of 150). The engine's own BLAS work is small, so one thread costs
    nothing. Process-wide like :func:`torch_threads`, nested/concurrent safe (the
    first caller sets the limit, the last one restores it), through threadpoolctl.
    """

    def apply() -> Any:
        if not _BLAS_CONTROLLER:
            _BLAS_CONTROLLER.append(ThreadpoolController())
        return _BLAS_CONTROLLER[0].limit(limits=1, user_api="blas").restore_original_limits

    return _BLAS.hold(apply)


@contextlib.contextmanager
def call_threads(num_threads: int | str | None, device: torch.device) -> Iterator[None]:
    """The thread policy of one engine call: :func:`resolve_threads` and single-threaded BLAS.

    Args:
        num_threads: ``"auto"``, a count, or ``None`` (leave torch's and BLAS's
            thread settings alone).
        device: The call's device.
    """
    if num_threads is None:
        yield
        return
    with blas_single_thread(), torch_threads(resolve_threads(num_threads, device)):
        yield
