"""The registry API, the metadata of every record, and ``tinct models``."""

import dataclasses
import re

import pytest

import tinct
from tinct.cli import main
from tinct.models import (
    ModelConfig,
    ModelRecord,
    UnknownModelError,
    Weights,
    count_parameters,
    get_record,
    list_models,
    load_model,
    register_model,
    unregister_model,
    weights_status,
)
from tinct.models.tinct_base import TinctUNet
from tinct.models.weights import WeightsUnavailableError, bundled_path

EXPECTED = {
    "tinct-base",
    "tinct-small",
    "tinct-he",
    "zhang-eccv16",
    "zhang-siggraph17",
    "zhang2016",
    "melas-kyriazi",
    "hwang-zhou-regression",
    "hwang-zhou-classification",
    "larsson",
    "sun-shen-classification",
    "sun-shen-regression",
    "levin",
}
STATUSES = {"bundled", "downloaded", "downloadable", "built in", "train it yourself"}
RECORDS = list_models()


def test_all_expected_models_are_registered():
    names = [r.name for r in RECORDS]
    assert set(names) == EXPECTED and len(names) == len(set(names))
    assert names[0] == "tinct-base"
    assert tinct.list_models() == RECORDS  # lazy re-export


def test_get_record_is_case_insensitive_and_lists_names_when_unknown():
    assert get_record("Zhang-ECCV16").name == "zhang-eccv16"
    with pytest.raises(UnknownModelError) as err:
        get_record("no-such-model")
    assert isinstance(err.value, KeyError)
    assert "no-such-model" in str(err.value) and "tinct-base" in str(err.value)
    with pytest.raises(KeyError, match="zhang-siggraph17"):
        load_model("nope", pretrained=False)


def test_duplicate_and_malformed_names_raise():
    record = get_record("tinct-small")
    with pytest.raises(ValueError, match="already registered"):
        register_model(record)
    with pytest.raises(ValueError, match="name"):
        register_model(dataclasses.replace(record, name="Bad Name"))
    temp = register_model(dataclasses.replace(record, name="test-temp-record"))
    try:
        assert get_record("test-temp-record") is temp
    finally:
        unregister_model("test-temp-record")
    with pytest.raises(UnknownModelError):
        get_record("test-temp-record")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"color_space": "rgb"},
        {"target": "pixels"},
        {"heads": ()},
        {"target": "regression", "heads": ("logits",)},
        {"target": "gamut313", "num_bins": 312},
        {"target": "grid529", "num_bins": 313},
        {"target": "channel", "num_bins": 40},
        {"target": "channel", "num_bins": 40, "bins_per_channel": 10, "channel_range": (0, 1)},
        {"heads": ("logits", "ab"), "ab_stride": None},
        {"default_temperature": 0},
    ],
)
def test_model_config_validation(kwargs):
    with pytest.raises(ValueError):
        ModelConfig(**kwargs)


def test_model_config_roundtrip():
    cfg = get_record("hwang-zhou-classification").config
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hints = True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"file_name": "x.pth", "url": "https://example.org/x.pth"},  # no sha256
        {"file_name": "x.pth", "sha256": "ABC"},
        {"file_name": "sub/x.pth"},
        {"file_name": "x.bin", "format": "npz"},
    ],
)
def test_weights_validation(kwargs):
    with pytest.raises(ValueError):
        Weights(**kwargs)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.name)
def test_record_metadata_schema(record):
    assert isinstance(record, ModelRecord)
    assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", record.name)
    assert record.display_name and record.description and record.paper
    assert callable(record.builder)
    cfg = record.config
    assert isinstance(cfg, ModelConfig)
    assert cfg.input_size >= 32 and cfg.stride >= 1
    from tinct.decode import DECODERS

    assert cfg.default_decoder in {*DECODERS, "larsson", "ab"}  # a decoder that exists
    if cfg.default_decoder == "ab":
        assert "ab" in cfg.heads
    else:
        assert "logits" in cfg.heads
    if cfg.target in ("channel", "hue_chroma"):
        lo, hi = cfg.channel_range
        assert hi > lo and cfg.num_bins == 2 * cfg.bins_per_channel
    if cfg.hints_required:
        assert cfg.hints
    assert weights_status(record) in STATUSES
    w = record.weights
    if w is None:
        assert weights_status(record) in ("built in", "train it yourself")
        assert cfg.trainable != (weights_status(record) == "built in")
        return
    assert w.format in ("pth", "safetensors") and w.license and w.citation
    if w.url is not None:  # downloadable: full provenance
        assert w.url.startswith("https://")
        assert re.fullmatch(r"[0-9a-f]{64}", w.sha256)
        assert w.size and w.size > 0
        assert w.url.rsplit("/", 1)[1] == w.file_name
        # the 8 hex digits in the official file names are the sha256 prefix
        tag = re.search(r"-([0-9a-f]{8})\.pth$", w.file_name)
        assert tag is None or w.sha256.startswith(tag.group(1))
    else:  # bundled
        assert w.format == "safetensors" and w.file_name.endswith(".safetensors")
        assert w.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", w.sha256)


def test_zhang_weight_entries_match_the_reference():
    e, s = get_record("zhang-eccv16").weights, get_record("zhang-siggraph17").weights
    assert e.sha256 == "9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9"
    assert e.size == 128_976_165 and e.license == "BSD-2-Clause"
    assert s.sha256 == "df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66"
    assert s.size == 136_787_426


def test_parameter_counts():
    assert count_parameters(get_record("tinct-base")) == sum(
        p.numel() for p in TinctUNet(fusion=True, refiner=True).parameters()
    )
    assert count_parameters(get_record("levin")) == 0
    small = {r.name: count_parameters(r) for r in RECORDS if r.config.trainable}
    assert all(n < 5e6 for n in small.values()), small  # CPU-trainable recipes


def test_tinct_base_without_bundled_file_raises_clearly():
    if bundled_path("tinct-base.safetensors").is_file():
        pytest.skip("tinct-base weights are bundled in this checkout")
    assert weights_status(get_record("tinct-base")) == "train it yourself"
    with pytest.raises(WeightsUnavailableError, match=r"tinct-base\.safetensors"):
        load_model("tinct-base")


def test_recipes_without_weights_need_training():
    with pytest.raises(WeightsUnavailableError, match="tinct train --recipe larsson"):
        load_model("larsson")
    model = load_model("larsson", pretrained=False)
    assert model.record.name == "larsson" and not model.training
    assert load_model("levin").record.name == "levin"  # built in: nothing to load


def test_cli_models_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["NAME", "DISPLAY"]
    for record in RECORDS:
        row = next(line for line in lines if line.startswith(record.name + " "))
        assert record.display_name in row
        assert weights_status(record) in row
    assert "downloadable" in out or "downloaded" in out
    assert "built in" in out and "32.24 M" in out and "4.79 M" in out


def test_cli_models_json(capsys):
    import json

    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == EXPECTED
    levin = next(r for r in rows if r["name"] == "levin")
    assert levin["weights"] == "built in" and "hints (required)" in levin["inputs"]


def test_records_are_hashable():
    assert len(set(RECORDS)) == len(RECORDS)
    assert len({r.config for r in RECORDS}) >= 8
