import pytest

from tinct.engine.options import LIBRARY_DEFAULTS, ColorizeOptions, model_defaults
from tinct.engine.optionspec import OptionError
from tinct.models.registry import ModelConfig


def test_defaults_are_valid_and_unresolved():
    o = ColorizeOptions()
    assert o.model == "tinct-base"
    assert o.temperature is None and o.decoder is None and o.tile is None
    assert o.mrf_weight is None and o.normalize == "auto" and o.device == "auto"


def test_precedence_library_model_user():
    cfg = ModelConfig(default_temperature=0.5, default_decoder="mode", input_size=176)
    r = ColorizeOptions().resolved(model_defaults(cfg))
    assert (r.temperature, r.decoder, r.net_size) == (0.5, "mode", 176)
    assert r.mrf_iters == LIBRARY_DEFAULTS["mrf_iters"]
    assert r.hint_size == LIBRARY_DEFAULTS["hint_size"]
    r = ColorizeOptions(temperature=0.2).resolved(model_defaults(cfg))
    assert r.temperature == 0.2 and r.decoder == "mode"
    r = ColorizeOptions().resolved({})
    assert r.temperature == LIBRARY_DEFAULTS["temperature"] and r.mrf_weight == 0.0
    mrf_cfg = ModelConfig(mrf=True)
    assert ColorizeOptions().resolved(model_defaults(mrf_cfg)).mrf_weight == 1.0
    assert ColorizeOptions(mrf_weight=0.0).resolved(model_defaults(mrf_cfg)).mrf_weight == 0.0


def test_from_mapping_converts_text():
    o = ColorizeOptions.from_mapping(
        {"mrf-weight": "1.5", "temperature": "0.3", "tile": "auto", "percentiles": "1, 99"},
        mrf_iters="4",
        normalize="Percentile",
        device=None,
    )
    assert o.mrf_weight == 1.5 and o.temperature == 0.3 and o.tile is None
    assert o.percentiles == (1.0, 99.0) and o.mrf_iters == 4 and o.normalize == "percentile"
    assert ColorizeOptions.from_mapping({"tile": "0"}).tile == 0
    assert ColorizeOptions.from_mapping({"tile": 512}).tile == 512


def test_from_mapping_unknown_key_lists_valid():
    with pytest.raises(ValueError, match=r"bogus: unknown option.*valid options:.*temperature"):
        ColorizeOptions.from_mapping({"bogus": 1})


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("temperature", 0, "temperature"),
        ("temperature", -1, "temperature"),
        ("temperature", 1e-39, "temperature"),  # used to decode to a black image
        ("temperature", 0.009, "temperature"),
        ("mrf_weight", -0.1, "mrf_weight"),
        ("mrf_iters", 1.5, "mrf_iters"),
        ("tile", 5, "tile"),
        ("tile", -1, "tile"),
        ("net_size", 3, "net_size"),
        ("normalize", "zscore", "normalize"),
        ("percentiles", (99.0, 1.0), "percentiles"),
        ("hint_size", 0, "hint_size"),
        ("device", "gpu", "device"),
        ("precision", "int8", "precision"),
        ("decoder", "nonsense", "decoder"),
        ("model", "", "model"),
    ],
)
def test_invalid_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        ColorizeOptions(**{field: value})


def test_bad_text_value_names_key():
    with pytest.raises(ValueError, match="mrf_iters: must be a whole number"):
        ColorizeOptions.from_mapping({"mrf_iters": "many"})
    with pytest.raises(ValueError, match="tile_overlap"):
        ColorizeOptions(tile=64, tile_overlap=64)


def test_replace_and_dict_roundtrip():
    o = ColorizeOptions(temperature=0.4)
    assert o.replace(temperature=None).temperature == 0.4
    assert o.replace(decoder="mode").decoder == "mode"
    assert ColorizeOptions.from_mapping(o.to_dict()) == o
    with pytest.raises(Exception):  # noqa: B017 - frozen
        o.temperature = 1.0  # type: ignore[misc]


def test_option_error_names_the_field_in_each_front_ends_terms():
    with pytest.raises(OptionError) as err:
        ColorizeOptions.from_mapping({"mrf-weight": -1})
    e = err.value
    assert e.field == "mrf_weight"
    assert e.message_for("cli").startswith("--mrf-weight: must be >= 0")
    assert e.message_for("wire").startswith('"mrf_weight": must be >= 0')
    assert e.message_for("gui").startswith("MRF weight: must be >= 0")
    assert str(e).startswith("mrf_weight: must be >= 0")


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", 101.0), ("mrf_iters", 10_001), ("net_size", 4097), ("hint_size", 257),
     ("temperature", float("nan")), ("mrf_weight", float("inf")), ("temperature", True),
     ("percentiles", (-1.0, 50.0)), ("intensity_range", (5.0, 5.0))],
)  # fmt: skip
def test_spec_bounds_hold_for_every_field(field, value):
    with pytest.raises(OptionError) as err:
        ColorizeOptions(**{field: value})
    assert err.value.field == field


def test_range_normalisation_without_a_range_names_the_missing_range():
    with pytest.raises(OptionError) as err:
        ColorizeOptions(normalize="range")
    assert err.value.field == "intensity_range"  # was "--normalize: ..., got 'range'"
    cli = "--intensity-range: must be given with --normalize 'range'"  # was "with normalize"
    assert err.value.message_for("cli") == cli
    assert str(err.value) == "intensity_range: must be given with normalize 'range'"
    ColorizeOptions(normalize="range", intensity_range=(0.0, 1.0))  # given: fine


def test_every_field_has_a_spec_with_help_and_label():
    specs = ColorizeOptions.specs()
    assert tuple(specs) == ColorizeOptions.field_names()
    for name, spec in specs.items():
        assert spec.help and spec.label, name
    assert "temperature" in ColorizeOptions.wire_fields()
    assert "device" not in ColorizeOptions.wire_fields()  # the server decides where it runs
    assert "local_hints" in ColorizeOptions.wire_fields()  # the GIMP dialog's "Local hints"


def test_cli_flags_are_generated_from_the_fields():
    import argparse

    from tinct.cli._options import add_option_arguments, options_from_args

    parser = argparse.ArgumentParser()
    add_option_arguments(parser)
    flags = {a.dest: a for a in parser._actions if a.option_strings}
    for name in ColorizeOptions.field_names():
        assert name in flags, name
        assert "default:" in flags[name].help, name
    assert "--mrf-edge" in flags["mrf_edge"].option_strings
    assert "--tile-overlap" in flags["tile_overlap"].option_strings
    args = parser.parse_args(["--mrf-edge", "2", "--tile", "off", "--intensity-range", "1", "9"])
    o = options_from_args(args)
    assert (o.mrf_edge, o.tile, o.intensity_range) == (2.0, 0, (1.0, 9.0))


def test_a_new_field_gets_its_flag_without_more_work():
    import argparse
    import dataclasses

    from tinct.cli import _options

    extended = dataclasses.make_dataclass(
        "Extended", [("sharpness", "float | None", dataclasses.field(default=None))],
        bases=(ColorizeOptions,), frozen=True,
    )  # fmt: skip
    parser = argparse.ArgumentParser()
    _options.add_option_arguments(parser, options_class=extended)
    assert any("--sharpness" in a.option_strings for a in parser._actions)
    assert parser.parse_args(["--sharpness", "0.5"]).sharpness == "0.5"


def test_text_words_select_special_values():
    assert ColorizeOptions.from_mapping({"tile": "off"}).tile == 0
    assert ColorizeOptions.from_mapping({"tile": "auto"}).tile is None
    assert ColorizeOptions.from_mapping({"temperature": "none"}).temperature is None
    assert ColorizeOptions.from_mapping({"decoder": "MODE"}).decoder == "mode"


def test_temporal_flag_parses_text_and_rejects_other_values():
    assert ColorizeOptions().temporal is False
    assert ColorizeOptions.from_mapping({"temporal": "yes"}).temporal is True
    assert ColorizeOptions.from_mapping({"temporal": "off"}).temporal is False
    assert ColorizeOptions.from_mapping({"temporal": True}).to_dict()["temporal"] is True
    with pytest.raises(ValueError, match="temporal"):
        ColorizeOptions.from_mapping({"temporal": "sometimes"})
    with pytest.raises(ValueError, match="temporal"):
        ColorizeOptions(temporal=1)


def test_temporal_is_a_switch_flag_on_colorize_and_batch_only():
    from tinct.cli import build_parser

    spec = ColorizeOptions.specs()["temporal"]
    assert spec.kind is bool and spec.label == "temporal" and "first axis" in spec.help
    assert "temporal" not in ColorizeOptions.wire_fields()  # GIMP sends single images
    assert ColorizeOptions.name_in("temporal", "cli") == "--temporal"
    from tinct.cli._options import options_from_args

    parser = build_parser()
    base = {"colorize": ["colorize", "a.png", "-o", "out"], "batch": ["batch", "in", "out"]}
    for cmd, args in base.items():
        assert options_from_args(parser.parse_args(args)).temporal is False, cmd
        assert options_from_args(parser.parse_args([*args, "--temporal"])).temporal is True, cmd
    with pytest.raises(SystemExit):  # a switch takes no value
        parser.parse_args(["colorize", "-o", "out", "--temporal=yes", "a.png"])
    with pytest.raises(SystemExit):  # evaluate colorizes still images: no such flag
        parser.parse_args(["evaluate", "--data", "d", "--out", "r", "--temporal"])
