"""Number boxes that say when they refuse or correct what the user typed.

A Qt spin box silently drops a keystroke that would take its text out of range
(``25`` typed into a box that goes up to 20 reads ``2``) and, on Enter or when
the focus leaves, silently puts back its previous value for text it cannot take
(``0.01`` in a box that starts at 0.1) or clamps it (``300`` in a box up to 256).
:func:`tell_refusals` watches a box's keystrokes and commits and says so, in words,
through a callback (the widget's status line) and a tooltip at the box.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QEvent, QObject, Qt, QTimer
from qtpy.QtWidgets import QAbstractSpinBox, QToolTip

__all__ = ["refusal_text", "tell_refusals"]

_COMMIT_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


def _number(value: float) -> str:
    return f"{value:g}"


def refusal_text(label: str, typed: str, low: float, high: float) -> str:
    """What the user is told when a number box did not take what they typed.

    Args:
        label: The box's label.
        typed: The text they typed (or would have, with the refused keystroke).
        low: The box's minimum.
        high: The box's maximum.

    Returns:
        E.g. ``"MRF weight: 25 is out of range (0 to 20)"``.
    """
    bounds = f"{_number(low)} to {_number(high)}"
    try:
        float(typed)
    except ValueError:
        text = f"{label}: {typed.strip()!r} is not a number ({bounds})"
    else:
        text = f"{label}: {typed.strip()} is out of range ({bounds})"
    return text


class _Watcher(QObject):
    """Event filter on one spin box."""

    def __init__(self, box: QAbstractSpinBox, label: str, tell: Callable[[str], None]) -> None:
        super().__init__(box)
        self._box, self._label, self._tell = box, label, tell
        edit = box.lineEdit()
        if edit is None:  # every QAbstractSpinBox has one; Qt's stubs say it may not
            raise TypeError(f"{type(box).__name__} has no line edit")
        self._edit = edit
        self._said_at: float | None = None  # the value when a refusal was last said
        box.installEventFilter(self)  # it has the focus and hands keys to its line edit

    def eventFilter(self, obj: Any, event: Any) -> bool:  # Qt's name
        kind = event.type()
        if obj is not self._box:
            return False
        if kind == QEvent.Type.KeyPress:
            if event.key() in _COMMIT_KEYS:
                self._committing()
            elif event.text() and event.text().isprintable():
                return self._typed(event)
        elif kind == QEvent.Type.FocusOut:
            self._committing()
        return False

    def _committing(self) -> None:
        """Check, once Qt has handled it, what the commit of the typed text did."""
        typed, before = self._strip(self._edit.text()), float(self._box.value())  # type: ignore[attr-defined]

        def check() -> None:
            with contextlib.suppress(RuntimeError):  # the box was deleted meanwhile
                self._after_commit(typed, before)

        QTimer.singleShot(0, check)

    def _spliced(self, key: str) -> str:
        """The line edit's text with ``key`` typed at the cursor (over the selection)."""
        edit, text = self._edit, self._edit.text()
        if edit.hasSelectedText():
            start = edit.selectionStart()
            return text[:start] + key + text[start + len(edit.selectedText()) :]
        pos = edit.cursorPosition()
        return text[:pos] + key + text[pos:]

    def _typed(self, event: Any) -> bool:
        """Let the box take a keystroke now, then say if it refused or changed the text."""
        before, attempted = self._edit.text(), self._spliced(event.text())
        self._box.event(event)  # the box's own handling (filters are not run again)
        shown = self._edit.text()
        if shown != attempted:
            typed = refusal_text(self._label, self._strip(attempted), *self._range())
            if shown == before:  # Qt dropped the keystroke without a sign
                self._say(typed)
            else:  # the box rewrote the text (clamped it)
                self._say(f"{typed}; set to {self._strip(shown)}")
        return True  # handled

    def _after_commit(self, typed: str, before: float) -> None:
        value = float(self._box.value())  # type: ignore[attr-defined]
        if not typed or _formatted_alike(typed, f"{value!r}"):
            if self._said_at is not None and value != self._said_at:  # a good value since
                self._said_at = None
                self._tell("")
            return
        low, high = self._range()
        text = refusal_text(self._label, typed, low, high)
        how = "left at" if value == before else "set to"
        self._say(f"{text}; {how} {_number(value)}")

    def _strip(self, text: str) -> str:
        box = self._box
        text = text.removeprefix(box.prefix()) if hasattr(box, "prefix") else text
        text = text.removesuffix(box.suffix()) if hasattr(box, "suffix") else text
        return text.strip()

    def _range(self) -> tuple[float, float]:
        return float(self._box.minimum()), float(self._box.maximum())  # type: ignore[attr-defined]

    def _say(self, text: str) -> None:
        self._said_at = float(self._box.value())  # type: ignore[attr-defined]
        self._tell(text)
        QToolTip.showText(self._box.mapToGlobal(self._box.rect().bottomLeft()), text, self._box)


def _formatted_alike(typed: str, shown: str) -> bool:
    """Whether the box shows what was typed, up to formatting (``2`` shown as ``2.00``)."""
    try:
        return float(typed) == float(shown)
    except ValueError:
        return typed == shown


def tell_refusals(widget: Any, tell: Callable[[str], None]) -> None:
    """Say when a number widget refuses a keystroke or puts its old value back.

    Args:
        widget: A magicgui ``SpinBox``/``FloatSpinBox``, or a slider with a number
            readout (``FloatSlider``): its spin box is watched.
        tell: Called with the message (e.g. set the widget's status line), and with
            ``""`` once a value the box takes has been entered since (the message is
            then out of date).
    """
    native = widget.native
    box = native if isinstance(native, QAbstractSpinBox) else native.findChild(QAbstractSpinBox)
    if box is not None:
        _Watcher(box, str(widget.label), tell)
