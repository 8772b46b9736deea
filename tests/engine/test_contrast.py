"""``tinct.engine.contrast``: warnings about poor inputs, worded for each front end."""

import torch

from tinct.engine.contrast import NEUTRAL_ADVICE, advice_in, contrast_notes, worded_for


def _flat(value: float) -> torch.Tensor:
    return torch.full((1, 1, 16, 16), value)


def _dark() -> torch.Tensor:
    """Gray levels that vary, all below 5 %: nearly black, not nearly constant."""
    return torch.linspace(0.0, 0.05, 256).reshape(1, 1, 16, 16)


def test_the_engine_names_no_front_ends_control():
    (constant,) = contrast_notes(_flat(0.5), "dtype")
    (black,) = contrast_notes(_dark(), "dtype")
    assert constant.endswith(f"; if the data varies more, try {NEUTRAL_ADVICE}")
    assert black.endswith(f"so the result is nearly black (try {NEUTRAL_ADVICE})")
    for note in (constant, black):
        assert "--normalize" not in note and "'percentile'" not in note
    assert contrast_notes(torch.linspace(0, 1, 256).reshape(1, 1, 16, 16), "dtype") == []


def test_percentile_normalisation_is_not_advised_when_it_was_used():
    (note,) = contrast_notes(_flat(0.5), "percentile")
    assert "try" not in note and worded_for(note, advice_in("cli")) == note


def test_each_front_end_names_its_own_control():
    (constant,) = contrast_notes(_flat(0.5), "dtype")
    (black,) = contrast_notes(_dark(), "range")
    cli = worded_for(constant, advice_in("cli"))
    assert cli.startswith("the input is nearly constant after normalisation (dtype: ")
    assert cli.endswith("; if the data varies more, try --normalize percentile")
    assert worded_for(black, advice_in("cli")).endswith(
        "so the result is nearly black (try --normalize percentile)"
    )
    assert worded_for(black, advice_in("wire")).endswith('(try "normalize": "percentile")')
    assert worded_for(constant, advice_in("python")).endswith("try normalize='percentile'")
    gui = worded_for(constant, "normalisation 'percentiles 0.5-99.5'")
    assert gui.endswith("try normalisation 'percentiles 0.5-99.5'")


def test_a_front_end_without_the_control_leaves_the_advice_out():
    (constant,) = contrast_notes(_flat(0.5), "dtype")
    (black,) = contrast_notes(_dark(), "dtype")
    assert worded_for(constant, None).endswith("gray levels)")
    assert worded_for(black, None).endswith("so the result is nearly black")


def test_other_warnings_are_left_as_they_are():
    note = "12 blank pixels (NaN or infinite) take the image's smallest value"
    assert worded_for(note, advice_in("cli")) == note


def test_a_front_end_that_knows_the_data_by_its_precision_gets_plain_words():
    """For data taken as it is (dtype), an image editor's user reads the layer's precision
    and no normalisation; other modes keep the engine's words, other notes are as they are."""
    (black,) = contrast_notes(_dark(), "dtype")
    (constant,) = contrast_notes(torch.linspace(0.5, 0.501, 256).reshape(1, 1, 16, 16), "dtype")
    (flat,) = contrast_notes(_flat(0.5), "dtype")
    assert worded_for(black, "stretching its levels first", data="16-bit integer") == (
        "the image is nearly black (16-bit integer: 99.5% of its pixels below 5% gray), so the "
        "result is nearly black (try stretching its levels first)"
    )
    assert worded_for(constant, None, data="8-bit") == (
        "the image is nearly uniform (8-bit: 99% of its pixels within 0.3 of 255 gray levels)"
    )
    assert worded_for(flat, "stretching its levels first", data="32-bit floating point") == (
        "the image is nearly uniform (32-bit floating point: 99% of its pixels the same gray); "
        "if the data varies more, try stretching its levels first"
    )
    (ranged,) = contrast_notes(_dark(), "range")
    assert worded_for(ranged, None, data="8-bit") == worded_for(ranged, None)  # its own mode
    other = "12 blank pixels (NaN or infinite) take the image's smallest value"
    assert worded_for(other, None, data="8-bit") == other
    for note in (black, constant, flat):
        told = worded_for(note, None, data="8-bit")
        assert "dtype" not in told and "normalis" not in told and "input" not in told


def test_a_flat_plane_in_a_varied_stack_is_named() -> None:
    varied = torch.linspace(0, 1, 256).reshape(1, 1, 16, 16)
    stack = torch.cat((varied, _flat(0.5), varied, _flat(0.2)))
    (note,) = contrast_notes(stack, "percentile")
    assert note.startswith("2 of 4 planes are nearly constant")
    assert "planes 1, 3, counted from 0" in note and "neutral gray" in note
    assert contrast_notes(torch.cat((varied, varied)), "percentile") == []
    assert contrast_notes(torch.cat([varied] + [_flat(0.5)] * 7), "dtype")[0].count(",") == 6


def test_the_flat_planes_come_back_gray_and_are_told() -> None:
    import warnings

    import numpy as np

    import tinct

    rng = np.random.default_rng(0)
    stack = np.stack([rng.integers(0, 256, (48, 48)), np.full((48, 48), 128)] * 2).astype(np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = tinct.colorize(stack)
    told = [str(w.message) for w in caught if "planes are nearly constant" in str(w.message)]
    assert told == [
        "2 of 4 planes are nearly constant after normalisation (planes 1, 3, counted from 0): "
        "without hints they come back neutral gray"
    ]
    for flat in out[1::2]:
        assert np.ptp(flat.astype(int), axis=-1).max() == 0  # gray: R = G = B


def test_a_front_end_names_the_mode_its_own_way() -> None:
    from tinct.engine.contrast import with_mode_named

    (note,) = contrast_notes(_dark(), "range")
    named = with_mode_named(note, {"range": "layer contrast limits"})
    assert named == note.replace("(range:", "(layer contrast limits:")
    assert with_mode_named(note, {"dtype": "type range"}) == note  # a mode it has no word for
    other = "34640 blank (NaN or infinite) pixels shown as the image's minimum (range: 3)"
    assert with_mode_named(other, {"range": "x"}) == other
