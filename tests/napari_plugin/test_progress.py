"""What the Colorize widget's progress bar and status line say (pure: no display needed)."""

from __future__ import annotations

import pytest

from tinct.napari_plugin.progress import (
    STATES,
    ProgressView,
    cancelled_status,
    done_status,
    error_text,
    progress_view,
)


def test_a_stack_run_counts_its_planes():
    assert progress_view("running", 0, 6) == ProgressView(0, 6, "0/6 planes")
    assert progress_view("running", 2, 6) == ProgressView(2, 6, "2/6 planes")
    assert progress_view("cancelling", 2, 6) == ProgressView(2, 6, "cancelling…")
    assert progress_view("done", 6, 6) == ProgressView(6, 6, "done (6 planes)")


def test_a_stopped_run_is_not_left_at_its_last_value():
    for state, text in (("cancelled", "cancelled"), ("failed", "failed")):
        assert progress_view(state, 2, 5) == ProgressView(0, 5, text)  # not 40 %
        assert progress_view(state, 0, 1) == ProgressView(0, 1, text)


def test_one_plane_and_no_run():
    assert progress_view("running", 0, 1) == ProgressView(0, 1, "colorizing…")
    assert progress_view("done", 1, 1) == ProgressView(1, 1, "done")
    assert progress_view("idle") == ProgressView(0, 1, "")  # no "0%" before the first run


def test_the_bar_never_shows_more_than_was_done_or_an_empty_range():
    assert progress_view("running", 9, 6).value == 6
    assert progress_view("running", -1, 6).value == 0
    assert progress_view("running", 0, 0) == ProgressView(0, 1, "colorizing…")
    for state in STATES:  # no Qt placeholders (%p, %v, %m): the text is shown as it is
        assert "%" not in progress_view(state, 1, 3).text


def test_an_unknown_state_is_an_error():
    with pytest.raises(ValueError, match="unknown progress state 'paused'"):
        progress_view("paused", 1, 2)  # type: ignore[arg-type]


def test_the_status_after_a_cancel_says_what_was_done():
    assert cancelled_status("", 2, 6) == "cancelled: 2 of 6 planes colorized"
    assert cancelled_status("", 0, 6) == "cancelled: 0 of 6 planes colorized"
    assert cancelled_status("", 0, 1) == "cancelled"
    removed = "the layer 'stack' was removed"
    assert cancelled_status(removed, 2, 6) == f"cancelled: {removed}"


def test_the_status_after_one_plane_of_a_stack_says_which_and_how_to_do_all():
    assert done_status(1, 1, (), ()) == "done"
    assert done_status(2, 6, (1,), (6,)) == "done 2/6"
    assert done_status(1, 1, (3,), (10,)) == "done: plane 3 of 10 only (tick Whole stack for all)"
    assert done_status(1, 1, (3,), (10,), whole_stack=True) == (
        "done: plane 3 of 10 only (Live re-runs the shown plane; Run does all)"
    )
    assert done_status(1, 1, (1, 2), (2, 5)) == (
        "done: plane (1, 2) of 2 x 5 only (tick Whole stack for all)"
    )


def test_errors_a_user_causes_are_worded_without_a_class_name():
    from tinct.engine.runtime import DeviceUnavailableError

    missing = DeviceUnavailableError("device 'cuda' requested but CUDA is not available")
    assert error_text(missing) == "device 'cuda' requested but CUDA is not available"
    assert error_text(ValueError("reference must be a colour image")) == (
        "reference must be a colour image"
    )
    assert error_text(FileNotFoundError("no weights file at x")) == "no weights file at x"
    assert error_text(KeyError("tinct-xl")) == "tinct-xl"  # not "'tinct-xl'"
    assert error_text(TypeError("bad operand")) == "TypeError: bad operand"  # a bug: named
    assert error_text(ValueError()) == "ValueError"
    from tinct.engine.optionspec import OptionError

    tiles = OptionError("tile", "too many at {net_size} 4096: a smaller {tile_overlap}", 16)
    told = "tile: too many at network size 4096: a smaller tile overlap, got 16"
    assert error_text(tiles) == told  # the labels, not net_size and tile_overlap


def test_engine_notes_name_the_mode_as_the_normalisation_box_does():
    from tinct.napari_plugin.progress import in_box_words

    note = "the input is nearly constant after normalisation (range: 99% of pixels within 0.4/255"
    assert in_box_words(note) == note.replace("(range:", "(layer contrast limits:")
    black = "the input maps to nearly black (percentile: 99.5% of pixels below 4% gray)"
    assert in_box_words(black) == black.replace("(percentile:", "(percentiles 0.5-99.5:")
    other = "34640 blank (NaN or infinite) pixels shown as the image's minimum (range: 3)"
    assert in_box_words(other) == other  # only the contrast notes' mode is reworded
