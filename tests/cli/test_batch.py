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


def test_an_unknown_flag_is_told_by_the_sub_command(tmp_path, in_dir, capsys):
    # it was "tinct: error: unrecognized arguments: --resme (see tinct --help)"
    assert main(["batch", str(in_dir), str(tmp_path / "out"), "--resme"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "tinct batch: error: unrecognized arguments: --resme (see tinct batch --help)"


def test_resume_is_accepted_and_skips_finished_outputs(tmp_path, in_dir, weights, capsys):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a", "b"):  # both done already: nothing to do, no cluster started
        Image.fromarray(np.full((32, 48, 3), 99, np.uint8)).save(out / f"{name}_colorized.png")
    assert main(["batch", str(in_dir), str(out), "--model", weights, "--resume", "-q"]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct batch: 0 done, 2 skipped, 0 failed in ")
    assert len(err.splitlines()) == 1


def test_too_many_tiles_names_the_flags_and_exits_2(tmp_path, in_dir, weights, capsys):
    # it was "tinct batch: a.png: tile: cuts this image ..." and exit 1
    from distributed import LocalCluster

    out = tmp_path / "out"
    with LocalCluster(
        n_workers=1, processes=False, dashboard_address=None, silence_logs=40
    ) as cluster:
        args = ["batch", str(in_dir), str(out), "--model", weights, "-q", "--device", "cpu"]
        args += ["--scheduler", cluster.scheduler_address, "--tile", "16", "--net-size", "4096"]
        assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    told = sorted(line for line in lines if ": --tile: cuts this image into " in line)
    assert [line.split(": --tile:")[0] for line in told] == [
        f"tinct batch: {in_dir.resolve() / name}" for name in ("a.png", "b.png")
    ]
    assert all("at --net-size 4096" in line for line in told)


def test_16_bits_with_a_video_in_the_folder_is_refused_up_front(tmp_path, in_dir, weights, capsys):
    (in_dir / "clip.mp4").write_bytes(b"never read")
    out = tmp_path / "out"
    args = ["batch", str(in_dir), str(out), "--model", weights, "--output-depth", "16"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct batch: error: --output-depth: ") and "clip.mp4 is a video" in err
    assert len(err.splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("address", ["tcp://localhost:99999", "tcp://127.0.0.1:0"])
def test_a_scheduler_port_out_of_range_is_a_usage_error(tmp_path, in_dir, address, capsys):
    # it was asked for 5 s, then "no Dask scheduler answered", exit 1
    out = tmp_path / "out"
    assert main(["batch", str(in_dir), str(out), "--scheduler", address, "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tinct batch: error: --scheduler: {address!r} is not a scheduler ")
    assert "is not in 1-65535" in err and len(err.splitlines()) == 1 and not out.exists()
