"""``tinct batch --scheduler``: an address where no Dask scheduler answers fails in seconds."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
from PIL import Image

from tinct.cli import main
from tinct.scale.scheduler import SchedulerUnreachableError, check_scheduler

pytest.importorskip("distributed")

#: Nothing listens on port 1 of the loopback address (a privileged port no test opens).
NOBODY = "tcp://127.0.0.1:1"


@pytest.fixture
def in_dir(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(np.full((32, 48), 128, np.uint8)).save(d / "a.png")
    return d


@pytest.fixture
def silent():
    """A TCP address that accepts connections and never says a word (a typo in the port)."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"


def test_unreachable_scheduler_is_one_line_in_seconds(tmp_path, in_dir, weights, capsys):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    # it used to print a progress bar, wait Dask's 30 s, then "Timed out trying to connect
    # to tcp://127.0.0.1:1 after 30 s", a line naming no flag
    code = main(["batch", str(in_dir), str(out), "--scheduler", NOBODY, "--model", weights])
    took = time.perf_counter() - t0
    assert code == 1
    assert took < 20, took  # the 5 s default plus start-up on a busy machine, not 30 s
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct batch: error: --scheduler: no Dask scheduler answered at ")
    assert NOBODY in err
    assert "--connect-timeout" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1  # no progress bar either
    assert not list(out.rglob("*.png"))


def test_connect_timeout_sets_the_wait(tmp_path, in_dir, weights, capsys):
    argv = ["batch", str(in_dir), str(tmp_path / "out"), "--scheduler", NOBODY, "-q"]
    assert main([*argv, "--model", weights, "--connect-timeout", "0.5"]) == 1
    err = capsys.readouterr().err.strip()
    assert "within 0.5 s" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e9"])
def test_connect_timeout_is_bounded(tmp_path, in_dir, weights, capsys, value):
    argv = ["batch", str(in_dir), str(tmp_path / "out"), "--scheduler", NOBODY]
    assert main([*argv, "--model", weights, "--connect-timeout", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct batch: error: --connect-timeout: must be > 0")
    assert len(err.splitlines()) == 1


def test_a_listener_that_never_answers_is_bounded_too(silent):
    # distributed.Client (and distributed.comm.connect) wait for ever for its handshake
    t0 = time.perf_counter()
    with pytest.raises(SchedulerUnreachableError, match="no Dask scheduler answered at"):
        check_scheduler(silent, 0.5)
    assert time.perf_counter() - t0 < 5


def test_a_scheduler_passes_and_a_worker_is_named():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, processes=False, dashboard_address=None, silence_logs=40
    ) as cluster:
        check_scheduler(cluster.scheduler_address, 5)
        (worker,) = cluster.scheduler.workers
        with pytest.raises(SchedulerUnreachableError, match="is a Dask Worker, not a Dask"):
            check_scheduler(worker, 5)  # a worker's address given for the scheduler's
