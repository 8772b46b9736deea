"""What the Colorize widget's progress bar and status line say about a run (pure, no Qt).

The bar counts the planes a colorize run has written. It is full only for a run that
finished; after **Cancel** or an error it is emptied and says ``cancelled`` or
``failed``, so that a stopped run is never read as one still at 40 %. The status line
after a cancel says how many planes of a stack were colorized (the planes the run did
not reach keep what the output layer held before: black in a new layer, an earlier
run's colour otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "STATES",
    "ProgressView",
    "cancelled_status",
    "done_status",
    "error_text",
    "in_box_words",
    "planes_name",
    "progress_view",
]

State = Literal["idle", "running", "cancelling", "done", "cancelled", "failed"]
#: The states of the progress bar, from before the first run to the end of one.
STATES: tuple[State, ...] = ("idle", "running", "cancelling", "done", "cancelled", "failed")


@dataclass(frozen=True)
class ProgressView:
    """What the progress bar shows.

    Attributes:
        value: Planes shown as done.
        maximum: Planes of the run (at least 1).
        text: The text on the bar (no Qt placeholders: shown as it is).
    """

    value: int
    maximum: int
    text: str


def progress_view(state: State, done: int = 0, total: int = 1) -> ProgressView:
    """The progress bar of a colorize run in ``state``.

    Args:
        state: One of :data:`STATES`: ``idle`` (no run yet: an empty bar without text),
            ``running`` (``done`` of ``total`` planes), ``cancelling`` (Cancel was pressed;
            a plane in flight may still be written), ``done`` (a full bar), ``cancelled``
            and ``failed`` (an empty bar that says so).
        done: Planes the run has written.
        total: Planes the run colorizes.

    Returns:
        The bar's value, maximum and text.

    Raises:
        ValueError: ``state`` is not one of :data:`STATES`.
    """
    total = max(1, int(total))
    done = min(max(0, int(done)), total)
    stack = total > 1
    if state == "idle":
        return ProgressView(0, 1, "")
    if state == "running":
        return ProgressView(done, total, f"{done}/{total} planes" if stack else "colorizing…")
    if state == "cancelling":
        return ProgressView(done, total, "cancelling…")
    if state == "done":
        return ProgressView(total, total, f"done ({total} planes)" if stack else "done")
    if state == "cancelled":
        return ProgressView(0, total, "cancelled")
    if state == "failed":
        return ProgressView(0, total, "failed")
    raise ValueError(f"unknown progress state {state!r}; expected one of {', '.join(STATES)}")


def cancelled_status(reason: str, done: int, total: int) -> str:
    """The status line after a cancelled run.

    Args:
        reason: Why the widget itself stopped the run (e.g. its layer was removed), or
            ``""`` when the user pressed Cancel.
        done: Planes the run wrote before it stopped.
        total: Planes the run was to colorize.

    Returns:
        ``cancelled: <reason>``, ``cancelled: 2 of 6 planes colorized`` for a stack, or
        ``cancelled``.
    """
    if reason:
        return f"cancelled: {reason}"
    if total > 1:
        return f"cancelled: {done} of {total} planes colorized"
    return "cancelled"


def done_status(
    done: int,
    total: int,
    plane: tuple[int, ...],
    leading: tuple[int, ...],
    whole_stack: bool = False,
) -> str:
    """The status line once a run has written a plane.

    Args:
        done: Planes the run has written.
        total: Planes the run colorizes.
        plane: The index of the plane just written (``()`` for a 2-D layer).
        leading: The layer's leading (non-plane) axis sizes.
        whole_stack: **Whole stack** is ticked (a Live re-run still does one plane).

    Returns:
        ``done 2/6`` during a stack run; ``done`` for a 2-D layer; for the one shown
        plane of a stack ``done: plane 3 of 10 only (tick Whole stack for all)``, since
        the other planes of a new output layer are black, or with **Whole stack**
        ticked ``... only (Live re-runs the shown plane; Run does all)``.
    """
    if total > 1:
        return f"done {done}/{total}"
    if not leading:
        return "done"
    where = planes_name([plane], leading)
    how = (
        "Live re-runs the shown plane; Run does all" if whole_stack else "tick Whole stack for all"
    )
    return f"done: {where} only ({how})"


#: Planes a name lists at most.
_LISTED = 5


def planes_name(planes: list[tuple[int, ...]], leading: tuple[int, ...]) -> str:
    """How the status line and notifications name planes of a stack, as the slider numbers them.

    Args:
        planes: Plane indices (at least one).
        leading: The layer's leading (non-plane) axis sizes.

    Returns:
        ``plane 3 of 10``, ``planes 1, 4 of 10`` (at most five listed, then ``...``), or
        for more leading axes ``plane (1, 2) of 3 x 4``.
    """
    listed = [str(p[0]) if len(leading) == 1 else str(tuple(int(i) for i in p)) for p in planes]
    names = ", ".join(listed[:_LISTED]) + (", ..." if len(listed) > _LISTED else "")
    return f"plane{'s' if len(planes) > 1 else ''} {names} of {' x '.join(map(str, leading))}"


def in_box_words(note: str) -> str:
    """An engine warning with its normalisation mode named as the normalisation box names it.

    ``the input is nearly constant after normalisation (range: 99% of pixels ...)`` becomes
    ``(layer contrast limits: 99% of pixels ...)``: ``range`` is no word of the widget's.
    """
    from tinct.engine.contrast import with_mode_named
    from tinct.napari_plugin.logic import NORMALIZATIONS

    label = {value: text for text, value in NORMALIZATIONS}
    words = {"range": label["contrast"], "percentile": label["percentile"], "dtype": label["dtype"]}
    return with_mode_named(note, words)


#: Errors whose message speaks for itself (as the CLI words them: no class name).
_PLAIN_ERRORS = (OSError, ValueError, RuntimeError, KeyError, ImportError)


def error_text(exc: BaseException) -> str:
    """How the status line and notification word a failed run's error.

    The errors a user's input or machine causes (a missing device, an unreadable file, a
    bad value) are their message alone, as the command line says them; anything else,
    a bug, keeps its class name. A message without text is its class name. An
    :class:`~tinct.engine.optionspec.OptionError` (a tile that cuts the image into too
    many tiles) names the options by their labels ("a smaller network size").
    """
    from tinct.engine.optionspec import OptionError

    if isinstance(exc, OptionError):  # named by the controls' labels, not the field names
        return exc.message_for("gui")
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = text.strip()
    if not text:
        return type(exc).__name__
    return text if isinstance(exc, _PLAIN_ERRORS) else f"{type(exc).__name__}: {text}"
