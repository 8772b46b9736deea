"""The GIMP plug-in's layer module without GIMP: its pure logic, on stand-in layers.

``tinct_layers.py`` imports GIMP's GObject bindings at the top; here they are stubs (the
real calls are covered in the real GIMP by test_gimp_e2e.py).
"""

from __future__ import annotations

import importlib.util
import struct
import sys
import types
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "src/tinct/bridge/gimp_plugin/tinct_layers.py"


@pytest.fixture
def tinct_layers(monkeypatch):
    gi = types.ModuleType("gi")
    gi.require_version = lambda *a: None
    repository = types.ModuleType("gi.repository")
    repository.Gegl = repository.Gimp = types.SimpleNamespace()
    gi.repository = repository
    monkeypatch.setitem(sys.modules, "gi", gi)
    monkeypatch.setitem(sys.modules, "gi.repository", repository)
    spec = importlib.util.spec_from_file_location("tinct_layers_under_test", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StandIn:
    """A layer with ``get_<name>`` / ``set_<name>`` for each property; records each set."""

    def __init__(self, **props):
        self.props = props
        self.sets = []

    def __getattr__(self, attr):
        kind, _, name = attr.partition("_")
        if kind == "get" and name in self.props:
            return lambda: self.props[name]
        if kind == "set" and name in self.props:
            return lambda value: (self.sets.append(name), self.props.__setitem__(name, value))
        raise AttributeError(attr)


DEFAULTS = {"opacity": 100.0, "mode": "normal", "blend_space": "auto",
            "composite_space": "auto", "composite_mode": "auto", "visible": True}  # fmt: skip


def test_the_result_takes_the_source_look_mode_first(tinct_layers):
    source = StandIn(
        opacity=60.0, mode="multiply", blend_space="rgb-linear", composite_space="auto",
        composite_mode="clip-to-backdrop", visible=False,
    )  # fmt: skip
    layer = StandIn(**DEFAULTS)
    changed = tinct_layers.copy_look(source, layer)
    assert layer.props == source.props
    assert changed == layer.sets == ["opacity", "mode", "blend_space", "composite_mode", "visible"]
    assert source.sets == []  # the source is only read


def test_a_source_at_the_defaults_changes_nothing(tinct_layers):
    layer = StandIn(**DEFAULTS)
    assert tinct_layers.copy_look(StandIn(**DEFAULTS), layer) == []
    assert layer.sets == []  # no needless undo steps


def test_the_look_is_what_a_restorer_sees(tinct_layers):
    look = tinct_layers.LOOK
    assert set(look) == set(DEFAULTS)
    assert look.index("mode") < min(look.index(n) for n in look if "space" in n or "composite" in n)


def test_the_precision_is_named_as_gimps_image_precision_menu_names_it(tinct_layers):
    """The server's notes about the layer name it ("16-bit integer: 99.5% of its pixels
    below 4% gray"): a float layer travels as 16-bit integers, so the plug-in says which."""
    names = [f"{p}_{c}" for p in ("U8", "U16", "U32", "HALF", "FLOAT", "DOUBLE")
             for c in ("LINEAR", "NON_LINEAR", "PERCEPTUAL")]  # fmt: skip
    tinct_layers.Gimp.Precision = types.SimpleNamespace(**{n: object() for n in names})

    def named(name):
        image = types.SimpleNamespace(
            get_precision=lambda: getattr(tinct_layers.Gimp.Precision, name)
        )
        return tinct_layers.precision_name(image)

    assert named("U8_NON_LINEAR") == "8-bit integer"
    assert named("U16_LINEAR") == named("U16_PERCEPTUAL") == "16-bit integer"
    assert named("U32_NON_LINEAR") == "32-bit integer"
    assert named("HALF_LINEAR") == "16-bit floating point"
    assert named("FLOAT_NON_LINEAR") == "32-bit floating point"
    assert named("DOUBLE_PERCEPTUAL") == "64-bit floating point"
    tinct_layers.Gimp.Precision.NEW_ONE = object()
    assert named("NEW_ONE") is None  # a precision of a later GIMP: the format's bits are said


def test_a_server_error_is_told_in_words_not_by_its_protocol_code(tinct_layers):
    told = tinct_layers.server_error_message(
        "too_large", "the image is 9000x8000 pixels (72 megapixels), more than this server's "
        "limit of 67.1 megapixels",
    )  # fmt: skip
    assert told == (
        "Tinct: the layer is too large for the server: the image is 9000x8000 pixels "
        "(72 megapixels), more than this server's limit of 67.1 megapixels"
    )
    assert tinct_layers.server_error_message("bad_request", "model 'levin' colorizes from "
                                             "colour hints only") == (
        "Tinct: the server refused the request: model 'levin' colorizes from colour hints only"
    )  # fmt: skip
    assert tinct_layers.server_error_message("shutting_down", "the server is shutting down") == (
        "Tinct: the server is shutting down; the image is unchanged"
    )
    assert tinct_layers.server_error_message("unknown_model", "model 'zhang-eccv16' cannot "
                                             "run: its weights are not installed") == (
        "Tinct: model 'zhang-eccv16' cannot run: its weights are not installed"
    )  # fmt: skip
    assert tinct_layers.server_error_message("closed", "connection closed") == (
        "Tinct: the connection to the server was lost (connection closed); the image is "
        "unchanged"  # the server was killed while it colorized
    )
    # the server stopped mid-job: its message says "cancelled" once (the code is not repeated)
    assert tinct_layers.server_error_message("cancelled", "cancelled: the server is shutting "
                                             "down") == (
        "Tinct: cancelled: the server is shutting down; the image is unchanged"
    )  # fmt: skip
    for code in ("bad_request", "too_large", "unknown_model", "busy", "internal", "timeout",
                 "closed", "shutting_down", "cancelled"):  # fmt: skip
        told = tinct_layers.server_error_message(code, "why")
        assert told.startswith("Tinct: ") and f"({code})" not in told and "_" not in told
    assert tinct_layers.server_error_message("new_code", "why") == (
        "Tinct server error (new_code): why"  # a code of a later server: named as it is
    )


class Painted:
    """A layer of ``pixels`` (wire format bytes) as read_layer and read_hints see it."""

    def __init__(self, ident, pixels, width, height, alpha=True, name="hints"):
        self.ident, self.pixels, self.size, self.alpha, self.name = (
            ident, pixels, (width, height), alpha, name,
        )  # fmt: skip

    def get_id(self):
        return self.ident

    def get_name(self):
        return self.name

    def get_width(self):
        return self.size[0]

    def get_height(self):
        return self.size[1]

    def has_alpha(self):
        return self.alpha

    def get_offsets(self):
        return True, 0, 0

    def get_buffer(self):
        return types.SimpleNamespace(get=lambda *args: self.pixels)


def dots(count, total, fmt="rgba8"):
    """``total`` pixels, the first ``count`` opaque red, the others fully transparent."""
    if fmt == "rgba16":
        opaque = (65535, 0, 0, 65535)
        return (struct.pack("=4H", *opaque) * count) + bytes(8 * (total - count))
    return bytes((255, 0, 0, 255)) * count + bytes(4 * (total - count))


def test_transparent_share_reads_the_alpha_of_either_format(tinct_layers):
    assert tinct_layers.transparent_share(dots(1, 4)) == 0.75
    assert tinct_layers.transparent_share(dots(3, 4, "rgba16"), "rgba16") == 0.25
    faint = struct.pack("=4H", 0, 0, 0, 300)  # alpha 300/65535: not fully transparent
    assert tinct_layers.transparent_share(faint * 2 + dots(0, 2, "rgba16"), "rgba16") == 0.5


def test_the_painted_dots_are_not_colorized_instead_of_the_photo(tinct_layers, monkeypatch):
    # after painting the dots, their layer is the active one: it was colorized, and the
    # user got a "Colorized" layer of dots and no error
    monkeypatch.setattr(tinct_layers, "Gegl", types.SimpleNamespace(
        Rectangle=types.SimpleNamespace(new=lambda *a: a),
        AbyssPolicy=types.SimpleNamespace(CLAMP=0, NONE=1),
    ), raising=False)  # fmt: skip
    monkeypatch.setattr(tinct_layers, "Gimp", types.SimpleNamespace(
        ImageBaseType=types.SimpleNamespace(RGB=0, GRAY=1),
    ), raising=False)  # fmt: skip
    image = types.SimpleNamespace(get_base_type=lambda: 0)
    hints = Painted(7, dots(3, 100), 10, 10)
    with pytest.raises(tinct_layers.UserError) as info:
        tinct_layers.read_hints(image, hints, hints)  # also chosen as Hint layer
    assert str(info.value) == (
        "the layer to colorize, 'hints', is the hint layer: select the photo's layer in the "
        "Layers dialog, then run Tinct Colorize again"
    )
    with pytest.raises(tinct_layers.UserError) as info:
        tinct_layers.read_layer(hints)  # no Hint layer chosen
    assert str(info.value) == (
        "the layer 'hints' is 97% transparent, so there is next to nothing to colorize: select "
        "the photo's layer (a layer of painted colour dots goes in Hint layer); for a small "
        "cut-out, use Layer > Crop to Content first"
    )
    with pytest.raises(tinct_layers.UserError, match="'hints' is 97% transparent"):
        tinct_layers.read_layer(Painted(7, dots(3, 100, "rgba16"), 10, 10), "rgba16")
    photo = Painted(8, dots(10, 100), 10, 10, name="photo")  # 90% transparent: a cut-out
    assert tinct_layers.read_layer(photo) == (10, 10, photo.pixels)
    flat = Painted(9, bytes(400), 10, 10, alpha=False, name="flat")  # no alpha: not checked
    assert tinct_layers.read_layer(flat) == (10, 10, flat.pixels)
    assert tinct_layers.read_hints(image, photo, hints) == hints.pixels  # as before
