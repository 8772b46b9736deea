"""The status line both tinct widgets share: messages, errors and "is the widget alive".

The Colorize and Train widgets each have a one-line ``status`` label. What they put on it
follows one rule, kept here once: a message is cut to 200 characters at a word, with an
ellipsis (an error or warning also says the notification has the rest), clearing (``""``)
removes only a message this widget put there (never another panel's), and an error is
also raised as a napari notification so that it is seen when the dock is scrolled away.
"""

from __future__ import annotations

from typing import Any

from napari.utils.notifications import show_error
from qtpy.QtCore import QEvent, QObject

__all__ = ["MAX_STATUS_CHARS", "NOTIFIED", "StatusLineMixin", "cut", "on_undock"]

#: Longest text put on a status line (a longer one is cut).
MAX_STATUS_CHARS = 200
#: How a cut message that is also a notification ends.
NOTIFIED = "… (the rest in the notification)"


def cut(text: str, more: str = "…") -> str:
    """``text`` as the status line shows it: whole, or cut at a word and ending in ``more``.

    Args:
        text: The message.
        more: What a cut message ends with (:data:`NOTIFIED` where a notification has
            the whole text).

    Returns:
        At most :data:`MAX_STATUS_CHARS` characters.
    """
    if len(text) <= MAX_STATUS_CHARS:
        return text
    room = MAX_STATUS_CHARS - len(more)
    head = text[:room]
    space = head.rfind(" ")
    if space > room // 2:  # not mid-word (unless one long word is most of it)
        head = head[:space]
    return head.rstrip(" ,;:(") + more


class StatusLineMixin:
    """``_say`` / ``_error`` / ``_alive`` for a magicgui container with a ``status`` label.

    Attributes:
        last_error: Message of the last error shown to the user (``None`` after a
            widget clears it).
    """

    status: Any
    native: Any
    last_error: str | None

    def _alive(self) -> bool:
        """False once Qt has deleted the widget (events can still arrive while napari closes)."""
        try:
            self.native.objectName()
        except RuntimeError:
            return False
        return True

    def _say(self, message: str) -> None:
        """Put a message on the status line (no notification); ``""`` clears the last one."""
        if not self._alive():
            return
        if message:
            self._said = self.status.value = cut(message)
        elif self.status.value == getattr(self, "_said", None):  # only what this said
            self.status.value = ""

    def _error(self, message: str) -> None:
        """Show an error on the status line and as a napari notification."""
        self.last_error = message
        self.status.value = cut(f"error: {message}", NOTIFIED)
        show_error(f"tinct: {message}")


class _Undocked(QObject):
    """Calls back when the widget it watches loses its parent (its dock was closed)."""

    def __init__(self, watched: Any, callback: Any) -> None:
        super().__init__(watched)  # dies with the widget
        self._callback = callback
        watched.installEventFilter(self)

    def eventFilter(self, obj: Any, event: Any) -> bool:  # Qt calls it by this name
        if event.type() == QEvent.Type.ParentChange and obj.parent() is None:
            self._callback()
        return False


def on_undock(native: Any, callback: Any) -> None:
    """Call ``callback()`` when the dock holding the Qt widget ``native`` is closed.

    napari's dock close button (``remove_dock_widget``) takes the widget out of its dock
    without deleting it, so ``destroyed`` does not fire: a run or a training job would go
    on for a widget nobody sees. The widget is then left without a parent; that is
    what this watches.
    """
    _Undocked(native, callback)
