"""Collecting the warnings one job raises, thread by thread (:func:`collect_warnings`).

The engine tells about inputs that colorize poorly as Python warnings
(:class:`tinct.engine.inputs.InputWarning`, :mod:`tinct.engine.contrast`), and the
front ends show what a job raised in their own way: ``tinct colorize`` prints a line,
napari a notification, a served request sends them back to its client, ``tinct batch``
returns them with the file's result. Jobs run in threads (napari's worker while its
embedded bridge server answers GIMP; threaded Dask workers), and Python's
:class:`warnings.catch_warnings` is not thread-safe: it swaps the process's filters and
``showwarning`` on enter and restores them on exit, so two threads collecting at once
take each other's warnings, and the one that exits last restores a stale state.

:func:`collect_warnings` never swaps that state. It keeps a stack of collectors per
thread (nested collectors are fine: a warning goes to the innermost one of the raising
thread that takes its category) and, once, installs two process-wide pieces that are
inert while no collector of the raising thread takes the warning:

* a ``showwarning`` dispatcher, which hands a warning to a collector of the thread that
  raised it, and every other warning to the handler that was in place before it;
* one filter at the front of :data:`warnings.filters`, ``("always", ...,
  CollectedHere)``, whose category matches a warning only in a thread with a collector
  open for it. There it makes the warning show every time (a job repeated tells its
  notes again, not once per place) and whatever the user's filters say (a front end
  shows its notes also under ``python -W ignore``, as it always did); in every other
  thread, and for every other category, the user's filters decide as before.

Why a thread-scoped filter, not the alternatives: a plain permanent
``always::InputWarning`` filter would change, for every thread and also outside any
job, how often a library user sees the engine's notes, and it would not show other
user warnings (a reference image a model ignores) every time in a job; warning with a
registry bypass at the raise sites would still let the user's filters drop the notes a
front end must show, and it would not cover the warnings of other code. Both pieces
stay installed (nothing is restored on exit, so collectors exiting out of order leave
nothing stale); each new collector installs them again if other code has replaced or
removed them, and starts a new filters version (as ``catch_warnings`` does), so a
warning that Python already showed once outside a collector is not skipped in one.

Limits: other code's ``catch_warnings`` still swaps the process state while it is open
(in any thread), and a warning shown once per place in a thread without a collector can
be skipped by a collecting thread until the next collector starts.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["CollectedHere", "collect_warnings"]

#: A ``showwarning`` handler: ``(message, category, filename, lineno, file, line)``.
Handler = Callable[..., Any]

_local = threading.local()
_lock = threading.Lock()
_previous: Handler | None = None  # where warnings no collector takes go


class _Collector:
    """One open :func:`collect_warnings`: its category and what it caught."""

    def __init__(self, category: type[Warning]) -> None:
        self.category = category
        self.caught: list[warnings.WarningMessage] = []


def _stack() -> list[_Collector]:
    """The calling thread's open collectors, innermost last."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _collector_for(category: Any) -> _Collector | None:
    """The calling thread's innermost collector that takes ``category``, if any."""
    if not isinstance(category, type):
        return None
    for collector in reversed(_stack()):
        if issubclass(category, collector.category):
            return collector
    return None


class _CollectedHereMeta(type):
    """Makes ``issubclass(category, CollectedHere)`` ask the calling thread's collectors."""

    def __subclasscheck__(cls, subclass: Any) -> bool:
        return _collector_for(subclass) is not None


class CollectedHere(Warning, metaclass=_CollectedHereMeta):
    """The category of the one filter this module installs (never raised).

    A warning matches it only in a thread with a :func:`collect_warnings` open for the
    warning's category, so ``("always", None, CollectedHere, None, 0)`` at the front of
    the filters acts there and nowhere else.
    """


def _print(
    message: Any,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Python's own way of showing a warning: one formatted entry on ``file`` or stderr."""
    out = sys.stderr if file is None else file
    if out is None:  # pythonw: nowhere to write
        return
    with contextlib.suppress(OSError):
        out.write(warnings.formatwarning(message, category, filename, lineno, line))


def _dispatch(
    message: Any,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """The process's ``showwarning`` while this module is installed: route one warning.

    To the raising thread's innermost collector that takes it, else to the handler that
    was in place. A handler that passes warnings back to this one (it kept it as its own
    previous handler) would go round in a circle: the second time round, Python's own
    printing shows the warning instead.
    """
    collector = _collector_for(category)
    if collector is not None:
        collector.caught.append(
            warnings.WarningMessage(message, category, filename, lineno, file, line)
        )
        return
    passing = getattr(_local, "passing", False)
    handler = _previous if _previous is not None and not passing else _print
    _local.passing = True
    try:
        handler(message, category, filename, lineno, file, line)
    finally:
        _local.passing = passing


def _install() -> None:
    """Install the dispatcher and the filter where other code replaced or removed them."""
    global _previous
    with _lock:
        current = warnings.showwarning
        if current is not _dispatch:
            _previous = current
            warnings.showwarning = _dispatch
        first = warnings.filters[0] if warnings.filters else None
        mutated = getattr(warnings, "_filters_mutated", None)
        if first is not None and first[2] is CollectedHere and callable(mutated):
            mutated()  # a new version: per-place registries forget what they showed
        else:  # inserted at the front (or moved there), and a new version
            warnings.filterwarnings("always", category=CollectedHere)


@contextlib.contextmanager
def collect_warnings(
    category: type[Warning] = UserWarning,
) -> Iterator[list[warnings.WarningMessage]]:
    """Collect the warnings of ``category`` that the calling thread raises in the block.

    Each one is recorded every time it is raised (not once per place, and whatever the
    user's filters say), instead of being shown. Warnings of other categories, and every
    warning of another thread, go to the handler in place, under the user's filters. A
    collector opened inside another takes what it collects from the outer one; what it
    does not take (another category) still reaches the outer one. Safe to use in many
    threads at once; the process's filters and handler are never swapped or restored.

    Args:
        category: What to collect; :class:`Warning` for every category.

    Yields:
        The warnings (:class:`warnings.WarningMessage`, as ``catch_warnings(record=True)``
        gives them), in the order they were raised; filled as the block runs.
    """
    collector = _Collector(category)
    _install()
    stack = _stack()
    stack.append(collector)
    try:
        yield collector.caught
    finally:
        stack.remove(collector)
