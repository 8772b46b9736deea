"""SIGTERM and Ctrl-C stop ``tinct`` the same way: no temporary file left, one line, 143/130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]

#: Runs ``tinct colorize`` as the console script does (``main()`` reading sys.argv), with
#: the image writer sending the signal to its own process once the temporary file exists.
_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    import tinct.engine.imagefiles as files

    write, sig = files.write_image, getattr(signal, sys.argv[1])
    # Ctrl-C as in a terminal: a job started in the background (``cmd &`` in a script)
    # inherits SIGINT ignored, and Python then leaves it ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def write_then_signal(path, image):
        write(path, image)
        os.kill(os.getpid(), sig)
        time.sleep(30)  # the signal arrives here, mid-write as far as the CLI knows

    files.write_image = write_then_signal
    from tinct.cli import main

    sys.argv = ["tinct", *sys.argv[2:]]
    sys.exit(main())
    """
)


@pytest.mark.parametrize(("signame", "status"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_signal_during_the_write_removes_the_temporary_file(tmp_path, signame, status):
    src = tmp_path / "in.png"
    Image.fromarray(np.tile(np.arange(48, dtype=np.uint8) * 5, (32, 1))).save(src)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TINCT_DEBUG": ""}
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, signame, "colorize", str(src), "-o", str(out / "r.png")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == status, proc.stderr[-800:]
    assert proc.stderr.strip().splitlines()[-1] == "tinct colorize: interrupted"
    assert "Traceback" not in proc.stderr
    assert list(out.iterdir()) == []  # neither the result nor its temporary file


#: ``tinct colorize`` of several files with its progress bar; Ctrl-C comes as the second
#: file is about to be written (the first is finished).
_MANY = textwrap.dedent(
    """
    import os, signal, sys, time
    import tinct.engine.imagefiles as files

    write, calls = files.write_image, []
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def write_or_interrupt(path, image, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
        write(path, image, **kwargs)

    files.write_image = write_or_interrupt
    from tinct.cli import main

    sys.argv = ["tinct", *sys.argv[1:]]
    sys.exit(main())
    """
)


def test_ctrl_c_mid_batch_keeps_finished_outputs_and_says_so_on_its_own_line(tmp_path, weights):
    inputs = []
    for i in range(3):
        inputs.append(tmp_path / f"in{i}.png")
        Image.fromarray(np.tile(np.arange(48, dtype=np.uint8) * (i + 3), (32, 1))).save(inputs[-1])
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TINCT_DEBUG": ""}
    args = ["colorize", *map(str, inputs), "-o", str(out), "--model", weights]  # the bar shown
    proc = subprocess.run(
        [sys.executable, "-c", _MANY, *args], capture_output=True, text=True, timeout=120,
        env=env,
    )  # fmt: skip
    assert proc.returncode == 130, proc.stderr[-800:]
    # the bar was left open: "colorize:  33%|...| 1/3 [...]tinct colorize: interrupted", then
    # the bar again when the interpreter closed it
    assert proc.stderr.endswith("\ntinct colorize: interrupted\n"), proc.stderr[-400:]
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["in0_colorized.png"]  # no temporary file
    assert Image.open(out / "in0_colorized.png").size == (48, 32)


def test_ctrl_c_of_tinct_batch_is_one_line_and_keeps_finished_outputs(tmp_path, weights):
    # a busy worker closed under its task: Dask logged "... distributed.worker.state_machine
    # - WARNING - Async instruction for <Task cancelled ...> ended with CancelledError"
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray((rng.random((192, 192)) * 255).astype(np.uint8)).save(src / f"{i:02d}.png")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TINCT_DEBUG": ""}
    args = ["batch", str(src), str(out), "--workers", "1", "--model", weights, "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-c", _MANY.replace("len(calls) == 2", "False"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("*_colorized.png"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-800:]
    assert err.strip().splitlines() == ["tinct batch: interrupted"], err[-800:]
    done = sorted(out.glob("*"))
    assert len(done) >= 2 and all(p.name.endswith("_colorized.png") for p in done)
    for p in done:
        Image.open(p).load()  # complete files only
