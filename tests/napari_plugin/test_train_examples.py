"""The Train widget's colour example layers as arrays (tinct.napari_plugin.train_examples).

napari's layer model only: no viewer, no display.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")

from napari.layers import Image

from tinct.napari_plugin.train_examples import example_arrays


def _colour(seed, shape=(96, 96)):
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 216, 3)
    return np.clip(base + rng.integers(-30, 30, (*shape, 3)), 0, 255).astype(np.uint8)


def test_examples_that_are_not_8_bit_are_read_as_shown():
    """12-bit colour in uint16 is read through its contrast limits, not as nearly black."""
    rgb8 = _colour(0)
    u16 = Image(rgb8.astype(np.uint16) * 16, name="12-bit", rgb=True)
    (shown,), _ = example_arrays([u16])  # napari's limits: the data's range, as shown
    assert shown.min() == 0 and shown.max() == 255  # not nearly black (the type's max: 62)
    u16.contrast_limits = (0, 255 * 16)
    counts = Image(rgb8 * np.float32(4), name="counts", rgb=True)
    counts.contrast_limits = (0, 255 * 4)
    flt = Image(rgb8 / np.float32(255), name="float", rgb=True)
    plain = Image(rgb8, name="slide 0", rgb=True)
    (a16, ac, af, a8), names = example_arrays([u16, counts, flt, plain])
    assert names == ["12-bit", "counts", "float", "slide 0"]
    assert a16.dtype == ac.dtype == np.uint8
    np.testing.assert_array_equal(a16, rgb8)
    np.testing.assert_array_equal(ac, rgb8)
    assert af is flt.data and a8 is plain.data  # [0, 1] floats and 8-bit as they are


def test_a_gray_layer_is_refused_with_its_name():
    with pytest.raises(ValueError, match="'nuclei' is not a colour"):
        example_arrays([Image(np.zeros((40, 40), np.uint8), name="nuclei")])


def test_the_train_widget_module_still_offers_it():
    """``tinct.napari_plugin.train_widget.example_arrays`` was public there first."""
    pytest.importorskip("qtpy")
    from tinct.napari_plugin import train_widget

    assert train_widget.example_arrays is example_arrays
