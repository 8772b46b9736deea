"""The user-model store: saving, registering, names, rescans, checks, removal."""

import logging
import shutil

import numpy as np
import pytest
import torch

import tinct
from tinct.engine import runtime
from tinct.models import (
    UnknownModelError,
    get_record,
    list_models,
    load_model,
    user_store,
    weights_status,
)
from tinct.models.weights import read_weights_header

INFO = {
    "recipe": "tinct-small",
    "base": "tinct-small",
    "data": "12 test tiles",
    "minutes": 1.5,
    "steps": 40,
    "score": 24.5,
    "base_score": 17.25,
    "held_out": "3 pieces",
}


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty user-model folder, registered; the session's folder again afterwards."""
    folder = tmp_path / "models"
    monkeypatch.setenv(user_store.USER_MODELS_ENV, str(folder))
    user_store.refresh()
    yield folder
    monkeypatch.undo()
    user_store.refresh()


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return load_model("tinct-small", pretrained=False)


def test_saved_model_is_registered_listed_and_loadable_by_name(store, small):
    um = user_store.save_user_model(small, "My-HE", INFO)
    assert um.name == "my-he" and um.path == store / "my-he.safetensors"
    assert "my-he" in [r.name for r in list_models()]
    rec = get_record("my-he")
    assert weights_status(rec) == "user" and rec.weights.folder == str(store)
    assert "fine-tuned from tinct-small" in rec.description and "24.50 dB" in rec.description
    assert "17.25" in rec.description and "1.5 min" in rec.description
    loaded = load_model("my-he")
    for k, v in small.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert loaded.record.name == "my-he" and loaded.record.config == small.record.config
    meta = read_weights_header(um.path)[1]
    assert meta["model"] == "tinct-small" and meta["tinct_user_model"]["score"] == 24.5
    rgb = tinct.Colorizer("my-he", device="cpu").colorize(np.full((40, 40), 0.5, np.float32))
    assert rgb.shape == (40, 40, 3)


@pytest.mark.parametrize(
    "bad",
    ["", "  ", "../evil", "a/b", "a\\b", ".hidden", "-x", "x" * 65, "with space", "gray",
     "levin", "m.safetensors", "m.pth", "a..b", "ünï"],
)  # fmt: skip
def test_bad_names_are_refused(bad):
    with pytest.raises(ValueError):
        user_store.validate_name(bad)


def test_builtin_and_taken_names_are_refused(store, small):
    for builtin in ("tinct-base", "Zhang-ECCV16"):
        with pytest.raises(ValueError, match="built-in"):
            user_store.save_user_model(small, builtin, INFO)
    user_store.save_user_model(small, "mine", INFO)
    with pytest.raises(ValueError, match="exists already"):
        user_store.save_user_model(small, "mine", INFO)
    with pytest.raises(ValueError, match="recipe"):
        user_store.save_user_model(small, "other", {**INFO, "recipe": "mine"})
    assert get_record("tinct-base").weights.folder is None


def test_replacing_a_model_changes_its_cache_key(store, small):
    user_store.save_user_model(small, "mine", INFO)
    key = runtime.model_key("mine")
    assert key.startswith("mine@")
    other = load_model("tinct-small", pretrained=False)
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    user_store.save_user_model(other, "mine", {**INFO, "steps": 41}, replace=True)
    assert runtime.model_key("mine") != key
    assert torch.equal(next(load_model("mine").parameters()), next(other.parameters()))
    assert user_store.get_user_model("mine").steps == 41


def test_a_file_added_by_another_process_is_found_by_name(store, small):
    user_store.save_user_model(small, "first", INFO)
    shutil.copy(store / "first.safetensors", store / "second.safetensors")
    assert get_record("second").weights.file_name == "second.safetensors"  # rescanned on a miss
    (store / "first.safetensors").unlink()
    assert "first" not in [u.name for u in user_store.list_user_models()]
    with pytest.raises(UnknownModelError):
        get_record("first")


def test_broken_and_clashing_files_are_skipped_with_a_warning(store, small, caplog):
    user_store.save_user_model(small, "good", INFO)
    (store / "garbage.safetensors").write_bytes(b"\x00" * 64)
    shutil.copy(store / "good.safetensors", store / "tinct-base.safetensors")
    shutil.copy(store / "good.safetensors", store / "Upper.safetensors")
    import pickle

    (store / "pickled.safetensors").write_bytes(pickle.dumps({"w": torch.zeros(2)}))
    with caplog.at_level(logging.WARNING, logger="tinct.models.user_store"):
        found = user_store.refresh()
    assert [u.name for u in found] == ["good"]
    text = caplog.text
    for name in ("garbage", "tinct-base", "Upper", "pickled"):
        assert f"{name}.safetensors" in text
    assert get_record("tinct-base").weights.folder is None  # the built-in is untouched


def test_a_file_naming_no_builtin_model_is_skipped(store, small, caplog):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in small.state_dict().items()}
    save_file(state, str(store.parent / "x.safetensors"), metadata={"model": "nope"})
    store.mkdir(exist_ok=True)
    shutil.move(store.parent / "x.safetensors", store / "x.safetensors")
    with caplog.at_level(logging.WARNING, logger="tinct.models.user_store"):
        assert user_store.refresh() == []
    assert "names no built-in model" in caplog.text


def test_a_file_changed_after_registration_fails_its_hash_check(store, small):
    um = user_store.save_user_model(small, "mine", INFO)
    data = bytearray(um.path.read_bytes())
    data[-1] ^= 0xFF  # a tensor byte: the header stays valid
    um.path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_model("mine")


def test_remove_deletes_and_unregisters(store, small):
    user_store.save_user_model(small, "mine", INFO)
    path = user_store.remove_user_model("MINE")
    assert not path.exists() and "mine" not in [r.name for r in list_models()]
    with pytest.raises(UnknownModelError, match="'tinct-base' is a built-in model, which stays"):
        user_store.remove_user_model("Tinct-Base")  # said 'no user model', as if it were a typo
    assert get_record("tinct-base").name == "tinct-base"
    with pytest.raises(UnknownModelError, match="no user model 'nope'"):
        user_store.remove_user_model("nope")


def test_a_registered_name_wins_over_a_file_of_that_name(store, small, tmp_path, monkeypatch):
    user_store.save_user_model(small, "mine", INFO)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").write_bytes(b"not weights")
    assert runtime.model_key("mine").startswith("mine@")
    assert runtime.get_model("mine").record.name == "mine"


def test_the_default_folder_is_the_platform_data_folder(monkeypatch):
    import platformdirs

    monkeypatch.delenv(user_store.USER_MODELS_ENV)
    assert user_store.user_models_dir() == (
        __import__("pathlib").Path(platformdirs.user_data_dir("tinct")) / "models"
    )


@pytest.mark.parametrize(
    ("bad", "told"),
    [
        ("My Model", "model name 'My Model' has a space: a name has letters a-z, digits, '.', "
                     "'_' and '-' only (capitals are stored lowercase)"),
        ("a/b", "model name 'a/b' has a path separator '/': "),
        ("ünï", "model name 'ünï' has 'ü' and 'ï': "),
        (".hidden", "model name '.hidden' starts with '.': a name starts with a letter or digit"),
        ("a..b", "model name 'a..b' has '..' in it"),
    ],
)  # fmt: skip
def test_a_bad_name_is_told_what_is_wrong_with_it(bad, told):
    # "My Model" was told "use lowercase letters, ...", although capitals are lowercased
    with pytest.raises(ValueError) as err:
        user_store.validate_name(bad)
    assert str(err.value).startswith(told)
    assert user_store.validate_name("My-Model") == "my-model"
