"""``tinct serve`` as a process (tinct.cli.serve): stopping on a signal, a second server, its log.

Each test runs the real command with ``--untrained`` weights on the CPU.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from bridge_helpers import gray_image
from tinct.bridge import wire as P

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and modes")


def _serve(cfgdir, *args):
    env = {**os.environ, "TINCT_CONFIG_DIR": str(cfgdir), "PYTHONFAULTHANDLER": ""}
    cmd = [sys.executable, "-m", "tinct", "serve", "--untrained", "--device", "cpu", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def _wait_for_bridge_json(cfgdir, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with P.BridgeClient(config_path=str(cfgdir / "bridge.json"), timeout=5) as client:
                return client.hello()
        except P.BridgeError:
            time.sleep(0.2)
    raise AssertionError("tinct serve did not start")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_a_job_cancels_it_and_exits_cleanly(cfgdir, signum):
    """The job's client is told, bridge.json goes, and the process exits 0 (it used to abort
    with "terminate called without an active exception" while the job was inside torch)."""
    proc = _serve(cfgdir)
    try:
        _wait_for_bridge_json(cfgdir, proc)
        errors, running = [], threading.Event()

        def job():
            with P.BridgeClient(config_path=str(cfgdir / "bridge.json"), timeout=60) as client:
                try:
                    client.colorize(256, 256, "gray8", gray_image(256, 256).tobytes(),
                                    mrf_weight=1.0, mrf_iters=P.DEFAULT_MAX_MRF_ITERS,
                                    progress=lambda f, m: running.set())  # fmt: skip
                except P.BridgeError as exc:
                    errors.append(exc)

        t = threading.Thread(target=job)
        t.start()
        assert running.wait(60)
        time.sleep(0.5)  # inside the engine now
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        t.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "terminate called" not in err
    assert "stopped" in err
    assert [e.code for e in errors] == ["cancelled"] and "shutting down" in errors[0].message
    assert not (cfgdir / "bridge.json").exists()


@pytest.mark.timeout(240)
def test_a_second_server_on_the_same_bridge_json_is_refused(cfgdir, tmp_path):
    first = _serve(cfgdir)
    try:
        info = _wait_for_bridge_json(cfgdir, first)
        before = (cfgdir / "bridge.json").read_text()
        log = tmp_path / "second.log"
        second = _serve(cfgdir, "--log", str(log))
        _, err = second.communicate(timeout=120)
        assert second.returncode == 1, err
        lines = err.strip().splitlines()
        assert lines[-1].startswith("tinct serve: a tinct server (pid ")
        assert "already running" in lines[-1] and "--config" in lines[-1]
        assert "Traceback" not in err
        assert (cfgdir / "bridge.json").read_text() == before  # the first is still found
        assert stat.S_IMODE(log.stat().st_mode) == 0o600  # the log is user-only
        with P.BridgeClient(config_path=str(cfgdir / "bridge.json"), timeout=5) as client:
            assert client.hello()["server_version"] == info["server_version"]
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 0
    assert not (cfgdir / "bridge.json").exists()


@pytest.mark.timeout(240)
def test_a_stale_bridge_json_does_not_stop_a_new_server(cfgdir):
    cfgdir.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {"host": "127.0.0.1", "port": 9, "token": "old", **P.process_identity()}
    stale["pid"] = dead.pid
    (cfgdir / "bridge.json").write_text(json.dumps(stale))
    proc = _serve(cfgdir)
    try:
        _wait_for_bridge_json(cfgdir, proc)
        assert json.loads((cfgdir / "bridge.json").read_text())["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


@pytest.mark.timeout(240)
def test_a_bridge_json_that_cannot_be_written_is_said_in_one_line(tmp_path):
    # TINCT_CONFIG_DIR under a file (or a read-only or full disk): the OSError of the
    # write was "tinct serve: cannot listen on 127.0.0.1:0: [Errno 20] Not a directory"
    (tmp_path / "afile").write_text("")
    cfgdir = tmp_path / "afile" / "tinct"
    proc = _serve(cfgdir)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"tinct serve: cannot write {cfgdir / 'bridge.json'} ("), err
    assert "--config FILE" in last
    assert "cannot listen" not in err and "Traceback" not in err
