"""tinct.cli.main: output piped into a reader that stopped early ends quietly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tinct import cli


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
def test_a_closed_stdout_pipe_ends_quietly_with_141():
    """`tinct models | head -1` printed 'tinct models: error: [Errno 32] Broken pipe', exit 1."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tinct", "models"], stdout=write, stderr=subprocess.PIPE,
            text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.close(write)
    assert proc.stderr == ""
    assert proc.returncode == cli.EXIT_BROKEN_PIPE == 141


def test_a_broken_pipe_that_is_not_stdout_is_still_an_error(monkeypatch, capsys):
    """Only standard output's closed pipe is quiet; a socket's is a one-line runtime failure."""
    import tinct.cli.models as models

    def fail(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(models, "run", fail)
    assert cli.main(["models"]) == 1
    assert capsys.readouterr().err == "tinct models: error: [Errno 32] Broken pipe\n"
