import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import tinct
from tinct.models.weights import load_weights
from tinct.training.config import TrainConfig
from tinct.training.train import _lr_factor, train


@pytest.fixture(scope="module")
def colour_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("colour")
    rng = np.random.default_rng(0)
    for i in range(6):
        base = rng.integers(0, 256, 3)
        arr = np.clip(base + rng.integers(-40, 40, (48, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"c{i}.png")
    return root


def _cfg(data, out, **kw):
    base = {
        "recipe": "tinct-small",
        "data": [str(data)],
        "out": str(out),
        "steps": 3,
        "batch_size": 2,
        "crop": 32,
        "image_size": 48,
        "warmup": 1,
        "val_fraction": 0.34,
        "threads": 1,
    }
    base.update(kw)
    return TrainConfig(**base)


def test_lr_schedule_warms_up_and_anneals():
    cfg = TrainConfig(steps=100, warmup=10)
    assert _lr_factor(0, 0, cfg) == pytest.approx(0.1)
    assert _lr_factor(50, 0, cfg) == pytest.approx(0.5)
    assert _lr_factor(100, 0, cfg) == pytest.approx(0.0, abs=1e-9)
    timed = TrainConfig(minutes=1.0, warmup=1)
    assert _lr_factor(5, 60.0, timed) == pytest.approx(0.0, abs=1e-9)


def test_train_exports_loadable_weights_with_metadata(colour_dir, tmp_path):
    path = train(_cfg(colour_dir, tmp_path / "run"), log=lambda s: None)
    assert path.exists() and (tmp_path / "run" / "log.csv").exists()
    _state, meta = load_weights(path)
    assert meta["model"] == "tinct-small" and meta["steps"] == 3
    assert "psnr_auto" in meta["metrics"] and meta["wall_time_s"] > 0
    model = tinct.load_model(str(path))
    out = model(torch.full((1, 1, 32, 32), 50.0))
    assert out.logits.shape[1] == 313 and torch.isfinite(out.ab).all()


def test_the_last_line_of_log_csv_and_of_the_log_is_where_the_run_ended(colour_dir, tmp_path):
    import csv
    import json

    lines: list[str] = []
    train(_cfg(colour_dir, tmp_path / "run", steps=3), log=lines.append)
    text = (tmp_path / "run" / "log.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert rows and rows[-1]["step"] == "3" and rows[-1]["loss"]  # a short run had no row
    val = json.loads(rows[-1]["val"])
    assert "psnr_auto" in val and val["psnr_auto"] == round(val["psnr_auto"], 3)
    final = lines[-1]
    assert final.startswith("exported ") and final.endswith(json.dumps(val))  # not 15 digits


def test_a_run_with_nothing_held_out_says_why_it_has_no_validation(colour_dir, tmp_path):
    lines: list[str] = []
    train(_cfg(colour_dir, tmp_path / "run", steps=1, val_fraction=0.02), log=lines.append)
    why = "no images held out: --val-fraction 0.02 of 6 images is less than one"
    assert any(ln.startswith("no validation: " + why) for ln in lines)
    assert lines[-1].endswith("): no validation (" + why + "; raise it to validate)")
    assert "{}" not in lines[-1]
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert rows[-1].startswith("1,") and rows[-1].endswith(",")  # the last step, no scores


def test_rescale_range_reaches_the_sampler_and_is_checked(colour_dir, tmp_path, monkeypatch):
    import tinct.training.train as T

    scales = []
    real = T.BatchSampler

    def recording(*args, **kwargs):
        sampler = real(*args, **kwargs)
        scales.append(sampler.scale)
        return sampler

    monkeypatch.setattr(T, "BatchSampler", recording)
    train(_cfg(colour_dir, tmp_path / "run", steps=1, rescale=(0.75, 0.75)), log=lambda s: None)
    assert scales == [(0.75, 0.75)]
    for bad in ((0.0, 1.0), (1.0, 0.5)):
        with pytest.raises(ValueError, match="rescale"):
            train(_cfg(colour_dir, tmp_path / "bad", rescale=bad), log=lambda s: None)


def test_resume_continues_step_count(colour_dir, tmp_path):
    out = tmp_path / "run"
    train(_cfg(colour_dir, out, steps=2), log=lambda s: None)
    path = train(_cfg(colour_dir, out, steps=4), resume=True, log=lambda s: None)
    assert load_weights(path)[1]["steps"] == 4


def test_resume_without_a_checkpoint_says_it_starts_fresh(colour_dir, tmp_path):
    lines: list[str] = []
    train(_cfg(colour_dir, tmp_path / "run", steps=1), resume=True, log=lines.append)
    assert any("no checkpoint" in ln and "starting a fresh run" in ln for ln in lines)


def test_resume_from_a_corrupt_checkpoint_is_a_checkpoint_error(colour_dir, tmp_path):
    from tinct.training.checkpoint import CheckpointError

    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"")  # other damage: test_checkpoint.py
    with pytest.raises(CheckpointError, match="not a readable tinct checkpoint"):
        train(_cfg(colour_dir, out, steps=1), resume=True, log=lambda s: None)


def test_finetune_from_weights(colour_dir, tmp_path):
    first = train(_cfg(colour_dir, tmp_path / "a", steps=1), log=lambda s: None)
    second = train(_cfg(colour_dir, tmp_path / "b", steps=1, init=str(first)), log=lambda s: None)
    assert load_weights(second)[1]["init"] == str(first)


@pytest.mark.slow
def test_torchrun_ddp_two_processes_gloo(colour_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--standalone", "-m", "tinct", "train", "--recipe", "tinct-small",
        "--data", str(colour_dir), "--out", str(out), "--steps", "2", "--batch-size", "2",
        "--crop", "32", "--device", "cpu", "--threads", "1", "--val-fraction", "0.34",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    _state, meta = load_weights(out / "tinct-small.safetensors")
    assert meta["steps"] == 2 and meta["hardware"].startswith("2 x")


def _trainable():
    from tinct.models import list_models

    return [r.name for r in list_models() if r.config.trainable]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", _trainable())
def test_every_trainable_recipe_takes_a_step(recipe, colour_dir, tmp_path):
    path = train(_cfg(colour_dir, tmp_path, recipe=recipe, steps=1), log=lambda s: None)
    assert load_weights(path)[1]["model"] == recipe


def test_split_indices_is_seeded_disjoint_and_capped():
    from tinct.training.config import split_indices

    held, rest = split_indices(1000, 0.02, seed=0)
    assert len(held) == 20 and len(rest) == 980
    assert not set(held) & set(rest) and set(held) | set(rest) == set(range(1000))
    assert split_indices(1000, 0.02, seed=0) == (held, rest)
    assert len(split_indices(100_000, 0.5)[0]) == 256


def _bank_hooks(n=6, **kw):
    from tinct.training.config import TrainHooks
    from tinct.training.datasets import ImageBank

    rng = np.random.default_rng(1)
    images = [
        np.clip(rng.integers(0, 256, 3) + rng.integers(-40, 40, (48, 48, 3)), 0, 255).astype(
            np.uint8
        )
        for _ in range(n)
    ]
    return TrainHooks(bank=ImageBank.from_arrays(images, 48), held_out=[n - 1], **kw)


def test_hooks_train_on_a_bank_report_progress_and_stop_on_cancel(tmp_path):
    import threading

    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.step >= 2:
            cancel.set()

    hooks = _bank_hooks(progress=progress, cancel=cancel, data_description="six arrays")
    path = train(_cfg("unused", tmp_path, steps=50), log=lambda s: None, hooks=hooks)
    meta = load_weights(path)[1]
    assert meta["steps"] == 2 and meta["cancelled"] is True and meta["data"] == "six arrays"
    assert [p.step for p in seen][:3] == [0, 1, 2] and all(0 <= p.fraction <= 1 for p in seen)
    assert seen[-1].metrics and "psnr_auto" in seen[-1].metrics  # the built-in validation ran


def test_hooks_keep_the_best_weights_by_the_hooks_own_score(tmp_path):
    calls = []

    def worse_every_time(model):
        calls.append(model.training)
        return {"score": -float(len(calls))}

    torch.manual_seed(0)
    first = tinct.load_model("tinct-small", pretrained=False)
    init = tmp_path / "init.safetensors"
    from tinct.models.weights import save_weights

    save_weights(first, init)
    hooks = _bank_hooks(validate=worse_every_time, best_key="score")
    cfg = _cfg("unused", tmp_path / "run", steps=3, init=str(init), lr=0.1)
    path = train(cfg, log=lambda s: None, hooks=hooks)
    state, meta = load_weights(path)
    assert meta["kept_step"] == 0 and meta["steps"] == 3 and meta["metrics"] == {"score": -1.0}
    assert calls and not any(calls)  # the hook sees the model in eval mode
    for k, v in first.state_dict().items():
        assert torch.equal(state[k], v), k  # the starting weights were the best


def test_hooks_refuse_a_bank_that_is_all_held_out(tmp_path):
    from tinct.training.config import TrainHooks

    hooks = _bank_hooks(n=2)
    hooks = TrainHooks(bank=hooks.bank, held_out=[0, 1])
    with pytest.raises(ValueError, match="held out"):
        train(_cfg("unused", tmp_path), log=lambda s: None, hooks=hooks)
