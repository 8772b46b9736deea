"""Widget decisions as plain functions: no Qt, no napari, no torch."""

from types import SimpleNamespace

import numpy as np
import pytest

from tinct.napari_plugin import logic


def _rec(name, heads=("logits",), target="gamut313", hints=False, global_hint=False, **cfg):
    config = SimpleNamespace(
        heads=heads,
        target=target,
        hints=hints,
        global_hint=global_hint,
        default_temperature=cfg.get("temperature", 0.38),
        default_decoder=cfg.get("decoder", "annealed_mean"),
    )
    return SimpleNamespace(name=name, display_name=name.upper(), config=config)


def test_model_choices_label_status_and_capabilities():
    recs = [
        _rec("base", heads=("logits", "ab"), hints=True, global_hint=True),
        _rec("reg", heads=("ab",), target="regression", decoder="ab", temperature=1.0),
    ]
    status = {"base": "bundled", "reg": "downloadable"}
    base, reg = logic.model_choices(recs, lambda r: status[r.name])
    assert base.label == "BASE [bundled]" and base.ready and not base.downloadable
    assert base.distribution and base.regression and base.hints and base.global_hint
    assert reg.downloadable and not reg.ready
    assert not reg.distribution and reg.regression and not reg.hints
    mine = SimpleNamespace(name="my-he", display_name="my-he (user model)", config=None)
    (user,) = logic.model_choices([mine], lambda r: "user")
    assert user.label == "my-he [user model]"  # not "my-he (user model) [user]"


def test_model_choices_from_the_real_registry():
    from tinct import models

    choices = logic.model_choices(models.list_models(), models.weights_status)
    names = [c.name for c in choices]
    assert "tinct-base" in names
    assert all(c.label for c in choices)


def test_decoder_choices_put_auto_then_the_default_first():
    decoders = ["mean", "annealed_mean", "mode"]
    both = logic.model_choices([_rec("m", heads=("logits", "ab"), decoder="mode")])[0]
    assert logic.decoder_choices(both, decoders) == ["auto", "mode", "mean", "annealed_mean", "ab"]
    reg = logic.model_choices([_rec("r", heads=("ab",), target="regression", decoder="ab")])[0]
    assert logic.decoder_choices(reg, decoders) == ["auto", "ab"]
    assert logic.decoder_option("auto") is None
    assert logic.decoder_option("mode") == "mode"


def test_decode_only_params_are_options_the_engine_re_decodes():
    from tinct.engine.options import ColorizeOptions

    assert {"temperature", "decoder", "mrf_weight", "mrf_iters"} == logic.DECODE_ONLY_PARAMS
    assert set(ColorizeOptions.field_names()) >= logic.DECODE_ONLY_PARAMS


def test_output_layer_name():
    assert logic.output_layer_name("cells") == "cells colorized"


@pytest.mark.parametrize(
    ("shape", "rgb", "dtype", "match"),
    [
        ((0, 0), False, "uint8", "empty"),
        ((1, 1), False, "uint8", "too small"),
        ((5, 0, 10), False, "uint8", "empty"),
        ((64,), False, "uint8", "at least 2"),
        ((32, 32, 2), True, "uint8", "3 or 4 channels"),
        ((32, 32), False, "complex64", "cannot colorize"),
        ((32, 32), False, "bool", "cannot colorize"),
    ],
)
def test_validate_image_rejects_bad_input(shape, rgb, dtype, match):
    with pytest.raises(ValueError, match=match):
        logic.validate_image(shape, rgb, dtype)


@pytest.mark.parametrize(
    ("shape", "rgb"), [((32, 40), False), ((3, 32, 40), False), ((32, 40, 4), True)]
)
def test_validate_image_accepts_good_input(shape, rgb):
    logic.validate_image(shape, rgb, np.float32)


def test_plane_geometry_and_indices():
    g = logic.plane_geometry((2, 3, 16, 20), rgb=False)
    assert g.leading == (2, 3) and g.plane == (16, 20) and g.channels is None
    assert g.n_planes == 6 and g.output_shape == (2, 3, 16, 20, 3)
    assert list(logic.iter_plane_indices(g.leading))[:2] == [(0, 0), (0, 1)]
    rgb = logic.plane_geometry((16, 20, 3), rgb=True)
    assert rgb.leading == () and rgb.channels == 3 and rgb.output_shape == (16, 20, 3)
    assert list(logic.iter_plane_indices(())) == [()]


def test_current_plane_rounds_and_clips():
    assert logic.current_plane([1.6, 10.0, 3.0], (4,)) == (2,)
    assert logic.current_plane([-3.0, 99.0], (4, 5)) == (0, 4)
    assert logic.current_plane([5.0, 5.0], ()) == ()


def test_group_hints_by_plane_2d_drops_points_outside():
    g = logic.plane_geometry((10, 20), rgb=False)
    coords = np.array([[1.0, 2.0], [9.4, 19.4], [-1.0, 3.0], [3.0, 25.0]])
    colors = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1]], float)
    groups = logic.group_hints_by_plane(coords, colors, g)
    assert list(groups) == [()]
    ph = groups[()]
    np.testing.assert_array_equal(ph.index, [0, 1])
    np.testing.assert_allclose(ph.coords, [[1, 2], [9, 19]])
    np.testing.assert_allclose(ph.colors, [[1, 0, 0], [0, 1, 0]])


def test_group_hints_by_plane_nd_each_point_on_its_own_plane():
    g = logic.plane_geometry((3, 10, 10), rgb=False)
    coords = np.array([[0.0, 1, 1], [2.2, 5, 5], [1.0, 3, 3], [7.0, 3, 3]])
    colors = np.eye(4)[:, :3]
    groups = logic.group_hints_by_plane(coords, colors, g)
    assert sorted(groups) == [(0,), (1,), (2,)]
    np.testing.assert_allclose(groups[(2,)].coords, [[5, 5]])
    np.testing.assert_allclose(groups[(1,)].colors, [[0, 0, 1]])


def test_group_hints_nan_leading_coordinate_means_every_plane():
    g = logic.plane_geometry((3, 10, 10), rgb=False)
    groups = logic.group_hints_by_plane(np.array([[np.nan, 4, 4]]), np.array([[1, 0, 0]]), g)
    assert sorted(groups) == [(0,), (1,), (2,)]


def test_group_hints_empty():
    g = logic.plane_geometry((10, 10), rgb=False)
    assert logic.group_hints_by_plane(np.empty((0, 2)), np.empty((0, 4)), g) == {}


def test_swatch_stylesheet_contrasting_border():
    dark = logic.swatch_stylesheet((10, 20, 30))
    light = logic.swatch_stylesheet((250, 250, 200))
    assert "rgb(10, 20, 30)" in dark and "#ffffff" in dark
    assert "#000000" in light


def test_output_layer_name_says_which_model_made_the_colour():
    assert logic.output_layer_name("cells") == "cells colorized"
    assert logic.output_layer_name("cells", "my-he") == "cells colorized (my-he)"
    weights = "/runs/x/he-v2.safetensors"
    assert logic.output_layer_name("cells", weights) == "cells colorized (he-v2)"
    assert logic.model_label("tinct-base") == "tinct-base"
