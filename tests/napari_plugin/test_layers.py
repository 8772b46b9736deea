"""Reading and writing layers (tinct.napari_plugin.layers) on a headless ViewerModel."""

import numpy as np
import pytest

pytest.importorskip("napari")

from napari.components import ViewerModel

from tinct.napari_plugin import layers as layer_io
from tinct.napari_plugin import logic


@pytest.fixture
def viewer():
    return ViewerModel()


def test_source_geometry_checks_the_layer(viewer):
    img = viewer.add_image(np.zeros((3, 16, 20), np.uint8))
    assert layer_io.source_geometry(img) == logic.PlaneGeometry((3,), (16, 20), None)
    with pytest.raises(ValueError, match="choose an image layer"):
        layer_io.source_geometry(None)
    labels = viewer.add_labels(np.zeros((16, 16), np.int32), name="lab")
    with pytest.raises(ValueError, match="'lab' is a Labels layer"):
        layer_io.source_geometry(labels)
    with pytest.raises(ValueError, match="too small"):
        layer_io.source_geometry(viewer.add_image(np.zeros((2, 40), np.uint8)))


def test_shown_plane_and_reference_follow_the_viewer(viewer):
    stack = viewer.add_image(np.arange(4)[:, None, None] * np.ones((4, 8, 8), np.uint8))
    viewer.dims.set_current_step(0, 2)
    assert layer_io.shown_plane(stack, viewer.dims.point, (4,)) == (2,)
    ref = layer_io.reference_plane(stack, viewer.dims.point)
    assert ref.shape == (8, 8) and (ref == 2).all()


def test_hint_groups_map_world_to_data(viewer):
    img = viewer.add_image(np.zeros((64, 80), np.uint8), scale=(2, 2), translate=(10, 20))
    pts = viewer.add_points([[10 + 2 * 30, 20 + 2 * 40], [-500, 0]], face_color="lime")
    geometry = logic.plane_geometry(img.data.shape, False)
    (ph,) = layer_io.hint_groups(pts, img, geometry).values()
    np.testing.assert_allclose(ph.coords, [[30, 40]])  # the second point is outside
    np.testing.assert_allclose(ph.colors, [[0, 1, 0]])
    assert layer_io.hint_groups(None, img, geometry) == {}


def test_2d_hints_over_a_stack_apply_to_every_plane(viewer):
    img = viewer.add_image(np.zeros((3, 16, 16), np.uint8))
    pts = viewer.add_points([[4.0, 5.0]], ndim=2)
    groups = layer_io.hint_groups(pts, img, logic.plane_geometry(img.data.shape, False))
    assert sorted(groups) == [(0,), (1,), (2,)]


def test_add_hints_layer_copies_the_transform(viewer):
    img = viewer.add_image(np.zeros((2, 400, 480), np.uint8), scale=(1, 2, 2))
    pts = layer_io.add_hints_layer(viewer, img)
    assert pts.ndim == 3 and pts.mode == "add" and pts.name == "hints"
    np.testing.assert_allclose(pts.scale, (1, 2, 2))
    pts.add([[0.0, 5.0, 5.0]])
    np.testing.assert_allclose(pts.face_color[0], [1, 0, 0, 1])  # red is the first colour
    assert layer_io.add_hints_layer(viewer, None).ndim == 2


def test_write_output_creates_then_updates_in_place(viewer):
    src = viewer.add_image(np.zeros((2, 4, 5), np.uint8), name="gray", scale=(1, 3, 3))
    hints = viewer.add_points([], ndim=3, name="hints")
    shape = (2, 4, 5, 3)
    plane = np.full((4, 5, 3), 0.5, np.float32)
    out = layer_io.write_output(viewer, src, shape, (1,), plane, hints)
    assert out.name == "gray colorized" and out.rgb and out.data.shape == shape
    assert (out.data[1] == 128).all() and not out.data[0].any()
    np.testing.assert_allclose(out.scale, (1, 3, 3))
    assert [lyr.name for lyr in viewer.layers] == ["gray", "gray colorized", "hints"]
    assert viewer.layers.selection.active is hints
    again = layer_io.write_output(viewer, src, shape, (0,), np.full((4, 5, 4), 7, np.uint8))
    assert again is out and (out.data[0] == 7).all() and (out.data[1] == 128).all()


def test_to_uint8_rgb():
    assert layer_io.to_uint8_rgb(np.ones((2, 2, 4))).tolist() == [[[255] * 3] * 2] * 2
    u8 = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    np.testing.assert_array_equal(layer_io.to_uint8_rgb(u8), u8)


def test_write_output_names_the_model(viewer):
    src = viewer.add_image(np.zeros((4, 5), np.uint8), name="gray")
    plane = np.full((4, 5, 3), 0.5, np.float32)
    a = layer_io.write_output(viewer, src, (4, 5, 3), (), plane, model="tinct-base")
    b = layer_io.write_output(viewer, src, (4, 5, 3), (), plane, model="my-he")
    assert (a.name, b.name) == ("gray colorized (tinct-base)", "gray colorized (my-he)")
    assert a is not b and len(viewer.layers) == 3  # results of two models side by side


def test_a_multiscale_layer_is_read_at_full_resolution(viewer):
    levels = [np.full((64, 96), 10, np.uint8), np.full((32, 48), 20, np.uint8)]
    img = viewer.add_image(levels, multiscale=True)
    assert layer_io.source_geometry(img).plane == (64, 96)
    assert layer_io.full_resolution(img) is levels[0]
    ref = layer_io.reference_plane(img, viewer.dims.point)
    assert ref.shape == (64, 96) and (ref == 10).all()  # not np.asarray's smallest level


def test_write_output_takes_the_whole_transform_and_follows_it(viewer):
    src = viewer.add_image(
        np.zeros((40, 50), np.uint8), name="gray", scale=(0.5, 0.5), translate=(100, 50),
        rotate=30, shear=[0.2],
    )  # fmt: skip
    plane = np.zeros((40, 50, 3), np.uint8)
    out = layer_io.write_output(viewer, src, (40, 50, 3), (), plane)
    corner = [39, 49]
    np.testing.assert_allclose(out.data_to_world(corner), src.data_to_world(corner))
    src.scale, src.translate, src.rotate = (2, 3), (-7, 4), -45  # the user moved the source
    again = layer_io.write_output(viewer, src, (40, 50, 3), (), plane)
    assert again is out  # updated in place, transform included
    np.testing.assert_allclose(out.data_to_world(corner), src.data_to_world(corner))
    src.affine = [[1, 0.3, 5], [0, 1, -2], [0, 0, 1]]
    layer_io.write_output(viewer, src, (40, 50, 3), (), plane)
    np.testing.assert_allclose(out.data_to_world(corner), src.data_to_world(corner))
    hints = layer_io.add_hints_layer(viewer, src)
    np.testing.assert_allclose(hints.data_to_world(corner), src.data_to_world(corner))


@pytest.mark.skipif(
    not hasattr(ViewerModel().add_image(np.zeros((2, 2))), "units"), reason="napari < 0.6"
)
def test_output_and_hints_layers_keep_the_physical_units(viewer):
    src = viewer.add_image(
        np.zeros((2, 40, 50), np.uint8), name="gray", scale=(2.0, 0.325, 0.325),
        units=("um", "um", "um"), axis_labels=("z", "y", "x"),
    )  # fmt: skip
    plane = np.zeros((40, 50, 3), np.uint8)
    out = layer_io.write_output(viewer, src, (2, 40, 50, 3), (0,), plane)
    hints = layer_io.add_hints_layer(viewer, src)
    for layer in (out, hints):  # else napari warns "Inconsistent units across layers"
        assert tuple(layer.units) == tuple(src.units)
        assert tuple(layer.axis_labels) == ("z", "y", "x")
    src.units = ("nm", "nm", "nm")  # the user corrected the calibration: the result follows
    again = layer_io.write_output(viewer, src, (2, 40, 50, 3), (1,), plane)
    assert again is out and tuple(out.units) == tuple(src.units)
