"""The GIMP plug-in's layer module without GIMP: its pure logic, on stand-in layers.

``tinct_layers.py`` imports GIMP's GObject bindings at the top; here they are stubs (the
real calls are covered in the real GIMP by test_gimp_e2e.py).
"""

from __future__ import annotations

import importlib.util
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
