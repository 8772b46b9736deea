"""tinct.training.checkpoint: atomic save, resume, plain errors."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from tinct.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinct.training.config import TrainConfig


def _state(seed: int) -> tuple[nn.Module, torch.optim.Optimizer, torch.Generator]:
    torch.manual_seed(seed)
    model = nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    return model, opt, torch.Generator().manual_seed(seed)


def test_round_trip_restores_model_optimiser_generator_and_counters(tmp_path):
    model, opt, gen = _state(0)
    torch.rand(5, generator=gen)  # advance, so the saved state is not the seed's
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, opt, gen, step=7, elapsed=12.5, cfg=TrainConfig(data=["x"]))
    assert path.exists() and not path.with_suffix(".tmp").exists()

    model2, opt2, gen2 = _state(1)
    assert load_checkpoint(path, model2, opt2, gen2) == (7, 12.5)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert torch.equal(gen2.get_state(), gen.get_state())


def test_another_models_checkpoint_is_one_plain_error(tmp_path):
    model, opt, gen = _state(0)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, opt, gen, step=1, elapsed=1.0, cfg=TrainConfig(data=["x"]))
    other = nn.Linear(4, 2)
    with pytest.raises(CheckpointError, match="another model's weights"):
        load_checkpoint(path, other, torch.optim.AdamW(other.parameters()), torch.Generator())


def test_a_dict_without_the_entries_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {}}, path)
    model, opt, gen = _state(0)
    with pytest.raises(CheckpointError, match="not a readable tinct checkpoint"):
        load_checkpoint(path, model, opt, gen)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not a zip", b"\x80\x02}q\x00."])
def test_corrupt_checkpoint_is_refused_plainly(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    model, opt, gen = _state(0)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, model, opt, gen)
    message = str(err.value)
    assert "not a readable tinct checkpoint" in message and "without --resume" in message
    assert "weights_only" not in message and "\n" not in message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_a_fifo_in_place_of_the_checkpoint_is_refused_not_waited_on(tmp_path):
    """torch.load opened <out>/checkpoint.pt whatever it was: a FIFO there hung --resume."""
    from engine_helpers import finishes_despite_fifo

    path = tmp_path / "checkpoint.pt"
    os.mkfifo(path)
    model, opt, gen = _state(0)
    raised: list[BaseException] = []

    def resume() -> None:
        try:
            load_checkpoint(path, model, opt, gen)
        except BaseException as exc:  # recorded for the assertion
            raised.append(exc)

    assert finishes_despite_fifo(resume, path, 20), "load_checkpoint blocked on a FIFO"
    assert isinstance(raised[0], CheckpointError)
    assert str(raised[0]) == (
        f"cannot resume: {path} is not a regular file (a FIFO, a device or a broken link); "
        "run without --resume to start afresh (the checkpoint is then replaced)"
    )


def test_a_save_stopped_mid_write_leaves_the_last_checkpoint_and_no_temporary_file(
    tmp_path, monkeypatch
):
    model, opt, gen = _state(0)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, opt, gen, step=3, elapsed=1.0, cfg=TrainConfig(data=["x"]))
    before = path.read_bytes()
    save = torch.save

    def interrupted(obj, f, *args, **kwargs):
        save(obj, f, *args, **kwargs)
        with open(f, "r+b") as fh:  # half of it written, then Ctrl-C
            fh.truncate(os.path.getsize(f) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, opt, gen, step=4, elapsed=2.0, cfg=TrainConfig(data=["x"]))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.pt"
    ]  # checkpoint.tmp was left behind


def test_weights_exported_mid_write_leave_the_previous_file(tmp_path, monkeypatch):
    import safetensors.torch

    from tinct.training.export import export_weights

    path = tmp_path / "tinct-small.safetensors"
    export_weights(nn.Linear(3, 2), path, {"step": 1})
    before = path.read_bytes()
    save_file = safetensors.torch.save_file

    def interrupted(state, filename, metadata=None):
        save_file(state, filename, metadata=metadata)
        with open(filename, "r+b") as fh:
            fh.truncate(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_weights(nn.Linear(3, 2), path, {"step": 2})
    # it was written in place: a 10-byte file that no longer loaded
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]
