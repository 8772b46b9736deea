"""``tinct serve``'s limit flags: infinite or absurd values are usage errors naming the flag."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-megapixels", "inf"),
        ("--max-megapixels", "1e30"),
        ("--max-frame-mb", "99999999"),
        ("--read-timeout", "inf"),
        ("--idle-timeout", "1e12"),
    ],
)
def test_unbounded_limits_are_refused(flag, value):
    proc = subprocess.run(
        [sys.executable, "-m", "tinct", "serve", flag, value, "--untrained"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert flag in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_missing_gpu_is_refused_before_the_server_listens(tmp_path, monkeypatch, capsys):
    import torch

    from tinct.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = tmp_path / "bridge.json"
    # it used to listen, write bridge.json, then fail loading the model: exit 1,
    # "tinct serve: cannot load the model: ...", a line not naming --device, among log lines
    assert main(["serve", "--device", "cuda", "--untrained", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct serve: error: --device: device 'cuda' requested but CUDA is not")
    assert len(err.splitlines()) == 1 and not config.exists()


def test_an_unknown_device_is_a_usage_error_naming_the_flag(tmp_path, capsys):
    from tinct.cli import main

    config = tmp_path / "bridge.json"
    assert main(["serve", "--device", "nonsense", "--untrained", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct serve: error: --device:") and "'nonsense'" in err
    assert len(err.splitlines()) == 1 and not config.exists()


@pytest.mark.parametrize("case", ["a-folder", "under-a-file"])
def test_a_config_path_that_cannot_be_the_file_is_a_usage_error(tmp_path, case, capsys):
    from tinct.cli import main

    # a folder was "tinct serve: cannot listen on 127.0.0.1:0: [Errno 21] Is a directory:
    # '.x.6238.a8ac51ae' -> 'x'", exit 1, after the model had loaded
    (tmp_path / "a_file").write_text("not a folder")
    config = tmp_path if case == "a-folder" else tmp_path / "a_file" / "bridge.json"
    assert main(["serve", "--untrained", "--device", "cpu", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    said = (
        f"{str(config)!r} is a folder; name the bridge.json file to write"
        if case == "a-folder"
        else f"{config.parent} is a file, not a folder"
    )
    assert err == f"tinct serve: error: --config: {said}"
