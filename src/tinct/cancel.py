"""Cooperative cancellation for long computations.

A caller passes any object with ``is_set()`` (a :class:`threading.Event`, the
bridge job's flag, a napari worker's flag) as ``cancel``; long loops call
:func:`check` between steps and stop with :class:`Cancelled` once it is set.

Code that cannot take a ``cancel`` argument (a network's ``forward`` that runs
Levin et al.'s solver, say) reads the flag of the enclosing :func:`scope`: the
engine opens one around each call, and :func:`check` without an argument
looks there. Scopes are per thread (a :mod:`contextvars` variable), so two
threads colorizing at once never see each other's flag.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

__all__ = ["Cancelled", "check", "current", "scope"]

_CURRENT: contextvars.ContextVar[Any] = contextvars.ContextVar("tinct_cancel", default=None)


class Cancelled(RuntimeError):
    """Raised when a caller's cancel event is set during a run."""


def current() -> Any:
    """The cancel flag of the innermost :func:`scope` of this thread, or None."""
    return _CURRENT.get()


@contextlib.contextmanager
def scope(cancel: Any) -> Iterator[None]:
    """Make ``cancel`` the flag that :func:`check` reads inside the block.

    ``None`` leaves the enclosing scope's flag in force.
    """
    if cancel is None:
        yield
        return
    token = _CURRENT.set(cancel)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def check(cancel: Any = None) -> None:
    """Raise :class:`Cancelled` if ``cancel`` (or the current scope's flag) is set.

    Args:
        cancel: An object with ``is_set()``, or None for the current scope's flag.

    Raises:
        Cancelled: The flag is set.
    """
    flag = _CURRENT.get() if cancel is None else cancel
    if flag is not None and flag.is_set():
        raise Cancelled("colorization cancelled")
