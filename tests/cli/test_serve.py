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
