import pytest

from tinct.models.registry import ModelConfig
from tinct.options import LIBRARY_DEFAULTS, ColorizeOptions, model_defaults


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
    with pytest.raises(ValueError, match=r"unknown option.*bogus.*valid options:.*temperature"):
        ColorizeOptions.from_mapping({"bogus": 1})


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("temperature", 0, "temperature"),
        ("temperature", -1, "temperature"),
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
    with pytest.raises(ValueError, match="option 'mrf_iters'"):
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


def test_temporal_flag_parses_text_and_rejects_other_values():
    assert ColorizeOptions().temporal is False
    assert ColorizeOptions.from_mapping({"temporal": "yes"}).temporal is True
    assert ColorizeOptions.from_mapping({"temporal": "off"}).temporal is False
    assert ColorizeOptions.from_mapping({"temporal": True}).to_dict()["temporal"] is True
    with pytest.raises(ValueError, match="temporal"):
        ColorizeOptions.from_mapping({"temporal": "sometimes"})
    with pytest.raises(ValueError, match="temporal"):
        ColorizeOptions(temporal=1)
