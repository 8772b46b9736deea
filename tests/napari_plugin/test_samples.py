"""npe2 manifest and sample data (no Qt needed)."""

import numpy as np
import pytest

from tinct.napari_plugin import samples as _sample_data


@pytest.mark.parametrize(
    ("fn", "ndim"),
    [
        (_sample_data.sample_photo, 2),
        (_sample_data.sample_microscopy, 2),
        (_sample_data.sample_astronomy, 2),
        (_sample_data.sample_stack, 3),
    ],
)
def test_samples_are_grayscale_uint8_layers(fn, ndim):
    (data, meta, kind), *rest = fn()
    assert not rest and kind == "image"
    assert data.dtype == np.uint8 and data.ndim == ndim
    assert min(data.shape[-2:]) >= 256
    assert data.std() > 10  # real content, not a flat image
    assert "gray" in meta["name"]


def test_stack_planes_are_shifted_copies():
    data = _sample_data.sample_stack(planes=3)[0][0]
    assert data.shape[0] == 3
    np.testing.assert_array_equal(np.roll(data[0], 8, axis=1), data[1])
    with pytest.raises(ValueError, match="planes"):
        _sample_data.sample_stack(planes=0)


def test_gray_uint8_of_rgb_and_gray():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 255
    g = _sample_data.gray_uint8(rgb)
    assert g.dtype == np.uint8 and g.shape == (4, 4) and 170 < g[0, 0] < 190  # Rec. 709 green
    assert _sample_data.gray_uint8(np.full((2, 2), 0.5)).dtype == np.uint8


def test_manifest_is_valid_and_lists_the_contributions():
    npe2 = pytest.importorskip("npe2")
    pm = npe2.PluginManifest.from_distribution("tinct")
    assert pm.name == "tinct"
    assert [w.display_name for w in pm.contributions.widgets] == ["Colorize", "Train"]
    keys = {s.key for s in pm.contributions.sample_data}
    assert keys == {"photo", "microscopy", "microscopy12", "astronomy", "stack"}
    assert pm.display_name == "tinct"  # menus read "Colorize (tinct)", as the docs say
    commands = {c.id: c.python_name for c in pm.contributions.commands}
    assert commands["tinct.colorize_widget"] == "tinct.napari_plugin.widget:ColorizeWidget"
    assert commands["tinct.train_widget"] == "tinct.napari_plugin.train_widget:TrainWidget"
    for python_name in commands.values():  # every command resolves to a callable
        module, attr = python_name.split(":")
        mod = (
            pytest.importorskip(module)
            if module.endswith(("widget", "train"))
            else __import__(module, fromlist=[attr])
        )
        assert callable(getattr(mod, attr))


def test_twelve_bit_microscopy_sample_is_uint16_in_12_bits():
    ((data, _meta, kind),) = _sample_data.sample_microscopy_12bit()
    assert kind == "image" and data.dtype == np.uint16 and data.ndim == 2
    assert data.min() == 100 and data.max() == 4000
