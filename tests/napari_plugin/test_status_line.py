"""The status line rule shared by the Colorize and Train widgets."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tinct.napari_plugin.status_line import MAX_STATUS_CHARS, StatusLineMixin


class _Deleted:
    def objectName(self) -> str:
        raise RuntimeError("wrapped C/C++ object has been deleted")


class _Line(StatusLineMixin):
    def __init__(self) -> None:
        self.status = SimpleNamespace(value="")
        self.native = SimpleNamespace(objectName=lambda: "w")
        self.last_error = None


def test_say_cuts_and_clears_only_its_own_message() -> None:
    line = _Line()
    line._say("x" * 500)
    assert line.status.value == "x" * (MAX_STATUS_CHARS - 1) + "…"
    line.status.value = "another panel's text"
    line._say("")
    assert line.status.value == "another panel's text"  # not ours: kept
    line._say("ours")
    line._say("")
    assert line.status.value == ""


def test_error_is_on_the_line_and_notified(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr("tinct.napari_plugin.status_line.show_error", shown.append)
    line = _Line()
    line._error("no image layer")
    assert line.status.value == "error: no image layer"
    assert line.last_error == "no image layer"
    assert shown == ["tinct: no image layer"]


def test_a_long_error_is_cut_at_a_word_and_points_to_the_notification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown: list[str] = []
    monkeypatch.setattr("tinct.napari_plugin.status_line.show_error", shown.append)
    line = _Line()
    message = (
        "could not download https://example.org/weights.pth (no network: the host name "
        "could not be resolved); to install it by hand, save that file as "
        "/root/.cache/tinct/weights.pth (sha256 9b330a0bae53f4ded77b1e23defbf78beaa09c10e, "
        "128,976,165 bytes; $TINCT_CACHE sets the folder)"
    )
    line._error(message)
    text = line.status.value
    assert len(text) <= MAX_STATUS_CHARS and text.endswith("… (the rest in the notification)")
    head = text.removesuffix("… (the rest in the notification)")
    assert f"error: {message}".startswith(head) and f"error: {message}"[len(head)] == " "
    assert shown == [f"tinct: {message}"]  # the notification has it whole


def test_a_deleted_widget_is_left_alone() -> None:
    line = _Line()
    line.native = _Deleted()
    assert not line._alive()
    line._say("late message")
    assert line.status.value == ""
