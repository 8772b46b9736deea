"""bridge.json read by a client or by the server removing it: a small regular file only."""

from __future__ import annotations

import json
import os
import time

import pytest

from tinct.bridge import wire as P
from tinct.bridge.config import remove_bridge_config, write_bridge_config
from tinct.bridge.wire.config import MAX_CONFIG_BYTES


def _promptly(fn, *args):
    """Run ``fn(*args)``; fail (not hang) if it is still waiting after 5 s."""
    from engine_helpers import within

    return within(5, fn, *args)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_for_bridge_json_is_refused_at_once(tmp_path):
    # open() of a FIFO waits for a writer: a client (GIMP) or a server's shutdown hung there
    path = tmp_path / "bridge.json"
    os.mkfifo(path)
    with pytest.raises(P.ServerNotRunning, match=r"cannot read .* \(not a regular file\)"):
        _promptly(P.read_bridge_config, str(path))
    _promptly(remove_bridge_config, path, "tok")
    assert path.exists()  # not ours: left alone


def test_a_large_bridge_json_is_not_read(tmp_path, monkeypatch):
    # json.load read the whole file, whatever its size
    path = write_bridge_config(tmp_path / "bridge.json", "127.0.0.1", 5, "tok")
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "pad": "x" * MAX_CONFIG_BYTES}))
    with pytest.raises(P.ServerNotRunning, match=r"\(\d+ bytes, more than 65536\)"):
        P.read_bridge_config(str(path), check_process=False)
    read = []
    monkeypatch.setattr(os, "read", lambda fd, n: read.append(n) or b"")
    remove_bridge_config(path, "tok")
    assert path.exists() and not read  # refused by its size, before a byte was read
    monkeypatch.undo()
    path.write_text(json.dumps(data))
    remove_bridge_config(path, "other")
    assert path.exists()  # another server's token
    remove_bridge_config(path, "tok")
    assert not path.exists()


def test_a_token_file_typed_with_a_tilde_or_blanks_is_found(tmp_path, monkeypatch):
    # GIMP's Token file box: "~/.config/tinct/other.json" was taken literally, and the
    # plug-in said the server was not running ("there is no ~/.config/...") while it ran
    monkeypatch.setenv("HOME", str(tmp_path))
    write_bridge_config(tmp_path / "other.json", "127.0.0.1", 5, "tok")
    for typed in ("~/other.json", f"  {tmp_path / 'other.json'} \n"):
        assert P.read_bridge_config(typed, check_process=False)["token"] == "tok"
    with pytest.raises(P.ServerNotRunning, match="there is no "):
        P.read_bridge_config("~/missing.json", check_process=False)


@pytest.mark.parametrize("port", [0, -1, 70000, "8080", True, None, 1.5, [5]])
def test_a_bridge_json_with_no_valid_port_is_malformed_for_every_reader(tmp_path, port):
    # it was read as it was: the client, `tinct gimp doctor` and a starting server then
    # failed with OverflowError ("port must be 0-65535"), ValueError or TypeError
    from tinct.bridge.config import live_server
    from tinct.bridge.server import BridgeServer

    path = tmp_path / "bridge.json"
    path.write_text(json.dumps({"host": "127.0.0.1", "port": port, "token": "tok",
                                **P.process_identity()}))  # fmt: skip
    with pytest.raises(P.ServerNotRunning, match=r"names no valid port .*not 1-65535"):
        P.read_bridge_config(str(path))
    with pytest.raises(P.ServerNotRunning, match="names no valid port"):
        P.BridgeClient(config_path=str(path), timeout=1.0)
    assert live_server(path) is None
    server = BridgeServer(_Idle(), port=0, config_path=path)  # replaces it
    try:
        assert json.loads(path.read_text())["token"] == server.token
    finally:
        server.shutdown()


def test_a_bridge_json_whose_host_is_no_string_is_malformed(tmp_path):
    path = tmp_path / "bridge.json"
    path.write_text(json.dumps({"host": 127001, "port": 5, "token": "tok"}))
    with pytest.raises(P.ServerNotRunning, match="names no valid host"):
        P.read_bridge_config(str(path), check_process=False)


class _Idle:
    """A backend that is never asked to colorize."""

    default_model = "idle"

    def models(self):
        return [{"name": "idle"}]

    def colorize(self, job, progress):  # pragma: no cover - never called
        raise AssertionError("not called")


def _http(conn, data):
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    conn.close()


def _fake_challenge(conn, data):
    P.send_frame(conn, {"type": "auth_challenge", "server_nonce": P.new_nonce(),
                        "server_proof": P.new_nonce()})  # fmt: skip


@pytest.mark.parametrize(
    "answer", [_http, _fake_challenge, None], ids=["http", "fake-challenge", "reads-to-the-end"]
)
def test_a_bridge_json_pointing_at_another_program_does_not_stop_a_new_server(tmp_path, answer):
    # the file's process still runs (or cannot be checked: another PID namespace), but
    # another program has its port: it accepted the connect, so the new server refused
    # to start ("a tinct server (pid N) is already running") until the file was deleted
    from bridge_helpers import Impostor
    from tinct.bridge.config import live_server
    from tinct.bridge.server import BridgeServer

    impostor = Impostor(answer=answer)  # without an answer: reads until the end, closes
    path = tmp_path / "bridge.json"
    stale = {"host": "127.0.0.1", "port": impostor.port, "token": "old",
             **P.process_identity()}  # fmt: skip
    path.write_text(json.dumps(stale))
    try:
        assert live_server(path, timeout=5.0) is None  # told at once, not by the timeout
        server = BridgeServer(_Idle(), port=0, config_path=path)
    finally:
        impostor.close()
    try:
        assert json.loads(path.read_text())["token"] == server.token
        assert b"old" not in bytes(impostor.received)  # the token never crossed the wire
    finally:
        server.shutdown()


def test_a_live_server_proves_it_without_a_word_in_its_log(tmp_path, caplog):
    from bridge_helpers import FakeBackend
    from tinct.bridge.config import live_server
    from tinct.bridge.server import BridgeServer, ServerAlreadyRunning

    path = tmp_path / "bridge.json"
    server = BridgeServer(FakeBackend(), port=0, config_path=path).start()
    try:
        caplog.clear()
        with caplog.at_level("INFO", logger="tinct.bridge.server"):
            assert live_server(path)["token"] == server.token
            with pytest.raises(ServerAlreadyRunning):
                BridgeServer(FakeBackend(), port=0, config_path=path)
            time.sleep(0.3)  # the probes' connections have ended on the server's side
        assert not [r for r in caplog.records if r.levelno >= 30], caplog.text
    finally:
        server.shutdown()


def test_a_bridge_json_whose_port_accepts_and_stays_silent_counts_as_live(tmp_path):
    # a `tinct serve` still loading its model has bound and listens (the kernel accepts)
    # but answers only once the model is loaded: replacing its file would hide it
    import socket

    from tinct.bridge.config import live_server

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # never accept()ed
    port = listener.getsockname()[1]
    path = tmp_path / "bridge.json"
    path.write_text(json.dumps({"host": "127.0.0.1", "port": port, "token": "tok",
                                **P.process_identity()}))  # fmt: skip
    try:
        assert live_server(path, timeout=0.5)["port"] == port
    finally:
        listener.close()


@pytest.mark.skipif(os.name != "posix", reason="POSIX owners and modes")
def test_a_bridge_json_that_other_users_can_write_is_not_trusted(tmp_path):
    # the handshake proves only that the peer holds the file's token: a client that read a
    # file another user could write proved itself to, and sent its pixels to, that user's
    # server (a shared TINCT_CONFIG_DIR, a Token file typed in GIMP)
    from tinct.bridge.config import remove_bridge_config

    path = write_bridge_config(tmp_path / "bridge.json", "127.0.0.1", 5, "tok")
    assert P.read_bridge_config(str(path), check_process=False)["token"] == "tok"
    for mode in (0o602, 0o666):
        os.chmod(path, mode)
        with pytest.raises(P.ServerNotRunning, match=r"not to be trusted: other users can write"):
            P.read_bridge_config(str(path), check_process=False)
        with pytest.raises(P.ServerNotRunning, match="not to be trusted"):
            P.BridgeClient(config_path=str(path), timeout=1.0)
        remove_bridge_config(path, "tok")
        assert path.exists()  # not removed either: it may not be what this server wrote
    os.chmod(path, 0o644)  # readable is no risk to the reader
    assert P.read_bridge_config(str(path), check_process=False)["port"] == 5
    os.chmod(path, 0o620)  # the user's own group: umask 002 with user private groups
    os.chown(path, -1, os.getgid())
    assert P.read_bridge_config(str(path), check_process=False)["port"] == 5


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
def test_a_bridge_json_of_another_user_is_not_trusted(tmp_path):
    path = write_bridge_config(tmp_path / "bridge.json", "127.0.0.1", 5, "tok")
    os.chmod(path, 0o644)
    os.chown(path, 54321, 54321)
    with pytest.raises(P.ServerNotRunning, match=r"belongs to another user \(uid 54321\)"):
        P.read_bridge_config(str(path), check_process=False)
    os.chown(path, os.getuid(), os.getgid())  # the user's own again
    assert P.read_bridge_config(str(path), check_process=False)["port"] == 5


@pytest.mark.skipif(os.name != "posix", reason="flock is POSIX")
def test_two_servers_started_at_once_on_one_bridge_json_leave_one_running(tmp_path, monkeypatch):
    # both found no live server in the file, both wrote it, and the first one's clients
    # were lost to the second: the check and the write are now one claim on the folder
    import threading

    import tinct.bridge.server as server_module
    from tinct.bridge.server import BridgeServer, ServerAlreadyRunning

    check = server_module.live_server

    def slow_check(path, *args):
        found = check(path, *args)
        time.sleep(0.5)  # a slow check: the other server starts meanwhile
        return found

    monkeypatch.setattr(server_module, "live_server", slow_check)
    path = tmp_path / "bridge.json"
    started, refused = [], []

    def start():
        try:
            started.append(BridgeServer(_Idle(), port=0, config_path=path))
        except ServerAlreadyRunning as exc:
            refused.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert len(started) == 1 and len(refused) == 1, (started, refused)
        assert json.loads(path.read_text())["token"] == started[0].token
    finally:
        for server in started:
            server.shutdown()
