"""``tinct batch``: what the command refuses up front, before any file is handed to a worker."""

import numpy as np
import pytest
import torch
from PIL import Image

from tinct.cli import main


@pytest.fixture
def in_dir(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((32, 48), 128, np.uint8)).save(d / name)
    return d


def test_batch_on_cuda_without_a_gpu_is_refused_once(
    tmp_path, in_dir, weights, capsys, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    args = ["batch", str(in_dir), str(out), "--model", weights, "--quiet", "--device", "cuda"]
    assert main(args) == 1  # not one failure per file: one line, before any worker starts
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct batch: error: --device: device 'cuda' requested but CUDA is not")
    assert len(err.splitlines()) == 1 and not out.exists()


def test_batch_refuses_an_unknown_device_naming_the_flag(tmp_path, in_dir, weights, capsys):
    out = tmp_path / "out"
    assert main(["batch", str(in_dir), str(out), "--model", weights, "--device", "gpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct batch: error: --device:") and "'gpu'" in err
    assert len(err.splitlines()) == 1 and not out.exists()
