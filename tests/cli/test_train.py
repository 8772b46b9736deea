"""``tinct train --name``: a fine-tune registered as a user model, listed and removed by the CLI."""

import json

import numpy as np
import pytest
from PIL import Image

from tinct.cli import main
from tinct.models import get_record, user_store


@pytest.fixture
def tiles(tmp_path):
    d = tmp_path / "tiles"
    d.mkdir()
    rng = np.random.default_rng(0)
    for slide in ("s1", "s2", "s3", "s4"):
        base = rng.integers(60, 200, 3)
        for x in (0, 64):
            arr = np.clip(base + rng.integers(-30, 30, (64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"{slide}_x{x}_y0.png")
    return d


def test_train_with_name_registers_a_user_model(small_store, tiles, tmp_path, capsys):
    args = ["train", "--init", "small0", "--data", str(tiles), "--steps", "2", "--name", "CLI-HE",
            "--batch-size", "2", "--crop", "32", "--warmup", "1", "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr()
    assert "registered user model cli-he" in out.out and "tinct colorize --model cli-he" in out.out
    assert "held-out" in out.err  # progress with the held-out score
    um = user_store.get_user_model("cli-he")
    assert um.path == small_store / "cli-he.safetensors" and um.steps == 2 and um.base == "small0"
    assert um.held_out == "2 of 8 pieces"  # one source of four held out
    assert get_record("cli-he").weights.folder == str(small_store)

    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert "user models (in" in table and "cli-he" in table and "small0" in table
    rows = json.loads(main(["models", "--json"]) == 0 and capsys.readouterr().out)
    row = next(r for r in rows if r["name"] == "cli-he")
    assert row["weights"] == "user" and row["user_model"]["base"] == "small0"
    assert row["user_model"]["held-out dB"] != "-"

    gray = tmp_path / "gray.png"
    Image.fromarray(np.tile(np.arange(40, dtype=np.uint8) * 6, (40, 1))).save(gray)
    out_png = tmp_path / "out.png"
    assert main(["colorize", str(gray), "-o", str(out_png), "--model", "cli-he", "-q"]) == 0
    assert np.asarray(Image.open(out_png)).shape == (40, 40, 3)

    again = ["train", "--init", "small0", "--data", str(tiles), "--steps", "1", "--name", "cli-he"]
    assert main(again) == 2  # exists already, and no --replace
    assert "exists already" in capsys.readouterr().err

    assert main(["models", "--remove", "cli-he"]) == 0
    assert "removed user model cli-he" in capsys.readouterr().out
    assert not (small_store / "cli-he.safetensors").exists()
    assert main(["models", "--remove", "cli-he"]) == 2


def test_train_leaves_out_an_unreadable_file_and_names_it(tiles, tmp_path, capsys):
    (tiles / "s5_x0_y0.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    run = str(tmp_path / "run")
    args = ["train", "--recipe", "tinct-small", "--data", str(tiles), "--steps", "1", "--out", run,
            "--batch-size", "2", "--crop", "32", "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr()
    line = next(ln for ln in (out.out + out.err).splitlines() if ln.startswith("skipped"))
    assert line.startswith("skipped 1 unreadable image: ") and "s5_x0_y0.png" in line
    assert (tmp_path / "run" / "tinct-small.safetensors").exists()


def test_train_exports_snapshots_and_takes_the_regression_weight(tiles, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--recipe", "tinct-small", "--data", str(tiles), "--steps", "3",
            "--out", str(out), "--batch-size", "2", "--crop", "32", "--warmup", "1",
            "--threads", "1", "--val-fraction", "0", "--regression-weight", "0",
            "--snapshot-every", "1e-9"]  # fmt: skip
    assert main(args) == 0
    snaps = sorted(p.name for p in (out / "snapshots").glob("*.safetensors"))
    assert snaps == [f"step_00000{i}.safetensors" for i in (1, 2, 3)]
    from tinct.models.weights import load_weights

    _, meta = load_weights(out / "tinct-small.safetensors")
    assert meta["train_config"]["regression_weight"] == 0.0


@pytest.mark.parametrize(
    ("flag", "value"), [("--regression-weight", "-1"), ("--snapshot-every", "-2")]
)
def test_train_refuses_a_negative_weight_or_interval(tiles, tmp_path, capsys, flag, value):
    out = str(tmp_path / "r")
    args = ["train", "--data", str(tiles), "--steps", "1", "--out", out, flag, value]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert flag in err and "traceback" not in err.lower() and len(err.strip().splitlines()) == 1


def test_train_refuses_an_unknown_device_naming_the_flag(tiles, tmp_path, capsys):
    out = tmp_path / "r"
    args = ["train", "--data", str(tiles), "--steps", "1", "--out", str(out), "--device", "gpu"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == "tinct train: error: --device: must be auto, cpu, cuda or cuda:N, got 'gpu'"
    assert not out.exists()  # refused before the run folder is made


def test_train_on_cuda_without_a_gpu_is_one_line_naming_the_flag(
    tiles, tmp_path, capsys, monkeypatch
):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "r"
    args = ["train", "--data", str(tiles), "--steps", "1", "--out", str(out), "--device", "cuda"]
    assert main(args) == 1  # the machine's, not the command line's: a runtime failure
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct train: error: --device: device 'cuda' requested but CUDA is not")
    assert len(err.splitlines()) == 1 and "Assertion" not in err and not out.exists()


def test_train_says_a_capitalised_name_is_registered_lowercase(small_store, tiles, capsys):
    args = ["train", "--init", "small0", "--data", str(tiles), "--steps", "1", "--name", "One-Step",
            "--batch-size", "2", "--crop", "32", "--warmup", "1", "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr()
    note = "tinct train: --name 'One-Step' registers the model as 'one-step' (user-model names"
    assert note in out.err and "registered user model one-step" in out.out
    assert "(1 step)" in out.out and "1 steps" not in out.out + out.err  # singular
    assert user_store.get_user_model("One-Step").name == "one-step"


def test_help_gives_the_fine_tuning_defaults_that_name_uses(capsys):
    """--help said lr 0.002 and warm-up 200, but --name trains with finetune's own defaults."""
    import inspect

    from tinct.training.finetuning import finetune

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    defaults = inspect.signature(finetune).parameters
    assert f"(default: 0.002; with --name: {defaults['lr'].default:g})" in text
    assert f"(default: 200; with --name: {defaults['warmup'].default})" in text


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--lr", "inf"), ("--lr", "1e309"), ("--regression-weight", "inf"), ("--minutes", "inf"),
     ("--val-every", "inf"), ("--snapshot-every", "inf"), ("--minutes", "nan")],
)  # fmt: skip
def test_an_infinite_number_is_a_usage_error_naming_its_flag(tiles, tmp_path, flag, value, capsys):
    # "> 0" and ">= 0" let inf through: --lr inf trained on to NaN weights
    run = tmp_path / "run"
    args = ["train", "--data", str(tiles), "--out", str(run), "--steps", "1", flag, value]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tinct train: error: {flag}: must be a finite number, got {float(value)}"
    assert not run.exists()


@pytest.mark.parametrize("flag", ["--name", "--out", "--init", "--cache-dir"])
def test_an_empty_value_is_a_usage_error_not_the_flag_left_out(tiles, tmp_path, flag, capsys):
    # --name '' was taken for no --name: a plain run trained into --out, exit 0
    args = ["train", "--data", str(tiles), "--out", str(tmp_path / "run"), "--steps", "1"]
    assert main([*args, flag, ""]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tinct train: error: {flag}: is empty; give a value or leave the flag out"
    assert not (tmp_path / "run").exists()


def test_a_cache_dir_that_is_a_file_is_refused_before_any_image_is_decoded(tiles, tmp_path, capsys):
    # it failed after decoding every image: "tinct train: error: [Errno 17] File exists"
    cache = tmp_path / "cache.txt"
    cache.write_text("not a folder")
    args = ["train", "--data", str(tiles), "--out", str(tmp_path / "run"), "--steps", "1"]
    assert main([*args, "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tinct train: error: --cache-dir: {cache} is a file, not a folder"
    assert not (tmp_path / "run").exists()


def test_a_data_folder_without_images_is_named_as_typed(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["train", "--data", str(empty), "--out", str(tmp_path / "run"), "--steps", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()  # was "... under ['/tmp/.../empty']"
    assert err.startswith("tinct train: error: --data: no images (.jpg, ")
    assert err.endswith(f") under {empty}")


def test_out_with_name_is_a_usage_error(small_store, tiles, tmp_path, capsys):
    # the fine-tune ignored --out: nothing was written there, the model went to the store
    args = ["train", "--data", str(tiles), "--steps", "1", "--name", "mine"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct train: error: --out: does not apply with --name (the model goes")
