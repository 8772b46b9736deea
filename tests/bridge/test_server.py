"""The server's life cycle and whole round trips: the real client against the real server.

The server runs on 127.0.0.1 with fake colorizers (no model) except in the last
test. Admission and many clients are test_serving.py; one connection's refusals
and robustness are test_connection.py, progress and cancelling while a job runs
test_running_job.py; the colorize request's decoding without sockets is
test_request.py.
"""

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from bridge_helpers import (
    FakeBackend,
    Impostor,
    authed,
    client_for,
    gray_image,
    make_server,
    raw,
    raw_frame,
    request,
)
from tinct.bridge import wire as P
from tinct.bridge.backend import EngineBackend
from tinct.bridge.embedded import start_server_in_thread
from tinct.bridge.server import BridgeServer

# --------------------------------------------------------------------------- basics


def test_hello_and_bridge_json(served, cfgdir):
    server, _ = served
    path = cfgdir / "bridge.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cfg = json.loads(path.read_text())
    assert cfg["port"] == server.port and cfg["token"] == server.token
    assert cfg["host"] == "127.0.0.1"
    with P.BridgeClient() as client:  # found through bridge.json
        info = client.hello()
    assert info["protocol_version"] == P.PROTOCOL_VERSION
    assert info["server"] == "tinct" and info["server_version"]
    assert info["default_model"] == "fake"
    assert [m["name"] for m in info["models"]] == ["fake", "other"]
    assert info["limits"]["max_frame_bytes"] == P.DEFAULT_MAX_FRAME_BYTES
    assert info["limits"]["max_pixels"] == P.DEFAULT_MAX_PIXELS
    assert set(info["pixel_formats"]) == set(P.PIXEL_FORMATS)


def test_bridge_json_removed_on_shutdown(cfgdir):
    server, _ = make_server(cfgdir)
    assert (cfgdir / "bridge.json").exists()
    server.shutdown()
    assert not (cfgdir / "bridge.json").exists()
    server.shutdown()  # idempotent


def test_colorize_rgba8_round_trip(served):
    server, backend = served
    h, w = 31, 47
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[..., 1] = rgba[..., 0]
    rgba[..., 2] = rgba[..., 0]
    with client_for(server) as client:
        res = client.colorize(
            w,
            h,
            "rgba8",
            rgba.tobytes(),
            model="fake",
            temperature=0.5,
            decoder="mode",
            mrf_weight=1.5,
            mrf_iters=3,
            hints=[{"row": 1, "col": 2, "r": 255, "g": 0, "b": 0, "size": 3}],
        )
    assert (res.width, res.height, res.format) == (w, h, "rgba8")
    out = np.frombuffer(res.pixels, np.uint8).reshape(h, w, 4)
    g = rgba[..., 0]
    np.testing.assert_array_equal(out[..., 0], g)
    np.testing.assert_array_equal(out[..., 1], g // 2)
    np.testing.assert_array_equal(out[..., 2], 255 - g)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])  # alpha carried
    job = backend.calls[-1]
    assert job.image.shape == (h, w, 3)
    assert (job.model, job.temperature, job.decoder) == ("fake", 0.5, "mode")
    assert (job.mrf_weight, job.mrf_iters) == (1.5, 3)
    assert job.hints[0].row == 1 and job.hints[0].color == (255, 0, 0)
    assert job.hints[0].size == 3
    assert res.header["engine_s"] >= 0


@pytest.mark.parametrize(
    ("fmt", "dtype", "channels", "result"),
    [
        ("gray8", np.uint8, 1, "rgb8"),
        ("gray16", np.uint16, 1, "rgb8"),
        ("rgb8", np.uint8, 3, "rgb8"),
        ("rgb16", np.uint16, 3, "rgb8"),
        ("rgba16", np.uint16, 4, "rgba8"),
    ],
)
def test_pixel_formats(served, fmt, dtype, channels, result):
    server, backend = served
    h, w = 8, 5
    shape = (h, w) if channels == 1 else (h, w, channels)
    arr = np.full(shape, np.iinfo(dtype).max, dtype=dtype)
    with client_for(server) as client:
        res = client.colorize(
            w, h, fmt, arr.astype(dtype.__name__ and np.dtype(dtype).newbyteorder("<")).tobytes()
        )
    assert res.format == result
    out = np.frombuffer(res.pixels, np.uint8).reshape(h, w, len(result) - 1)
    assert out[0, 0, 0] == 255 and out[0, 0, 2] == 0
    if result == "rgba8":
        assert out[0, 0, 3] == 255
    assert backend.calls[-1].image.dtype == dtype


def test_result_format_override(served):
    server, _ = served
    with client_for(server) as client:
        res = client.colorize(4, 4, "gray8", bytes(16), result_format="rgba8")
        assert res.format == "rgba8" and len(res.pixels) == 64
        res = client.colorize(4, 4, "rgba8", bytes(64), result_format="rgb8")
        assert res.format == "rgb8" and len(res.pixels) == 48


def test_hint_layer_and_reference(served):
    server, backend = served
    h, w = 20, 30
    layer = np.zeros((h, w, 4), np.uint8)
    layer[5, 7] = (0, 255, 0, 255)
    ref = np.full((6, 4, 3), 200, np.uint8)
    with client_for(server) as client:
        client.colorize(
            w,
            h,
            "gray8",
            gray_image(w, h).tobytes(),
            hint_layer=layer.tobytes(),
            hint_size=4,
            reference=(4, 6, "rgb8", ref.tobytes()),
        )
    job = backend.calls[-1]
    np.testing.assert_array_equal(job.hint_layer, layer)
    assert job.hint_size == 4
    assert job.reference.shape == (6, 4, 3)


def test_engine_backend_with_engine_style_colorizer(cfgdir):
    """EngineBackend hands tinct.engine.hints.Hint objects to a Colorizer look-alike."""
    calls = []

    class FakeColorizer:
        model_name = "fake-engine"

        def colorize(self, image, *, hints, reference, options, progress, cancel, rgb):
            calls.append(
                {"hints": list(hints), "temperature": options.temperature, "tile": options.tile}
            )
            return np.dstack([image[..., 0]] * 3) if image.ndim == 3 else np.dstack([image] * 3)

    layer = np.zeros((16, 16, 4), np.uint8)
    layer[3:5, 3:5] = (255, 0, 0, 255)
    with start_server_in_thread(FakeColorizer(), port=0) as handle:
        assert (cfgdir / "bridge.json").exists()
        with P.BridgeClient() as client:
            assert client.hello()["default_model"] == "fake-engine"
            client.colorize(
                16,
                16,
                "gray8",
                bytes(256),
                temperature=0.2,
                hints=[{"row": 1, "col": 2, "r": 0, "g": 0, "b": 255}],
                hint_layer=layer.tobytes(),
            )
            with pytest.raises(P.BridgeError) as info:
                client.colorize(16, 16, "gray8", bytes(256), model="zhang-eccv16")
            assert info.value.code == "unknown_model"
        assert handle.port > 0
    assert not (cfgdir / "bridge.json").exists()
    hints = calls[0]["hints"]
    assert len(hints) == 2
    assert (hints[0].row, hints[0].col) == (1, 2)
    assert hints[0].color == pytest.approx((0, 0, 1))
    assert hints[1].row == pytest.approx(3.5) and hints[1].color == pytest.approx((1, 0, 0))
    assert calls[0]["temperature"] == 0.2


# --------------------------------------------------------------------------- life cycle


def test_server_not_running_message(cfgdir):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(P.ServerNotRunning) as info:
        P.BridgeClient(port=port, token="x", timeout=2).hello()
    assert info.value.message == (  # what a GIMP user reads: no "[Errno 111]"
        f"the tinct server is not running (nothing answers on 127.0.0.1:{port}). "
        "Start the server with: tinct serve"
    )
    with pytest.raises(P.ServerNotRunning) as info:
        P.BridgeClient()  # no bridge.json
    assert "tinct serve" in str(info.value)


def test_remote_host_needs_allow_remote(cfgdir):
    with pytest.raises(ValueError, match="allow_remote"):
        BridgeServer(FakeBackend(), host="0.0.0.0", port=0)


@pytest.mark.timeout(30)  # shutdown must not wait for the open connection
def test_shutdown_with_open_connections(cfgdir):
    server, _ = make_server(cfgdir)
    sock = raw(server)
    server.shutdown()
    sock.settimeout(2)
    with contextlib.suppress(ConnectionResetError):  # reset: the connection is gone too
        assert sock.recv(1) == b""  # closed (EOF)
    sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def _shutting_down_then_closed(sock):
    sock.settimeout(3)
    reply = P.read_frame(sock).header
    assert (reply["type"], reply["code"]) == ("error", "shutting_down") and "id" not in reply
    assert reply["message"] == "the server is shutting down"
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(1) == b""  # and nothing after it


@pytest.mark.timeout(30)
def test_shutdown_tells_idle_and_uploading_clients_why_they_are_closed(cfgdir):
    """One ``shutting_down`` frame each, then end of stream: a connection between
    requests, one in the middle of a header and one in the middle of a payload."""
    server, backend = make_server(cfgdir)
    socks = [authed(server) for _ in range(3)]
    idle, in_header, uploading = socks
    try:
        assert request(idle, {"type": "hello", "id": "h"}).header["type"] == "hello"
        in_header.sendall(P.encode_frame({"type": "hello", "id": "h2"})[:14])
        side = 1024
        header = {"type": "colorize", "id": "up", "width": side, "height": side,
                  "format": "gray8", "sections": {"image": {"offset": 0, "size": side * side}},
                  "payload_bytes": side * side}  # fmt: skip
        uploading.sendall(raw_frame(header, bytes(side * side // 3)))
        time.sleep(0.3)  # both are read by now, as far as they have come
        t0 = time.monotonic()
        assert server.shutdown() is True
        assert time.monotonic() - t0 < 2.0
        for sock in socks:
            _shutting_down_then_closed(sock)
        assert not backend.calls  # the upload was not served
    finally:
        for sock in socks:
            sock.close()
        server.shutdown()


@pytest.mark.timeout(30)
def test_a_client_that_reads_nothing_does_not_hold_up_shutdown(cfgdir):
    """The server is stuck sending a 16 MiB result to a client that does not read it;
    shutdown waits a moment for that connection, then cuts it off."""
    from tinct.bridge.server import FAREWELL_WAIT_S

    server, backend = make_server(cfgdir, read_timeout=20.0)
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(5)
            sock.connect(("127.0.0.1", server.port))
            P.client_handshake(sock, server.token, time.monotonic() + 5)
            side = 2048
            P.send_frame(sock, {"type": "colorize", "id": "big", "width": side, "height": side,
                                "format": "gray8", "result_format": "rgba8"},
                         [("image", bytes(side * side))])  # fmt: skip
            deadline = time.monotonic() + 10
            while not backend.spans and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.5)  # the result is on its way, and stuck
            t0 = time.monotonic()
            assert server.shutdown() is True
            assert time.monotonic() - t0 < FAREWELL_WAIT_S + 1.5
    finally:
        server.shutdown()


def test_config_file_permissions_even_with_loose_umask(tmp_path):
    old = os.umask(0)
    try:
        server = BridgeServer(FakeBackend(), port=0, config_path=tmp_path / "d" / "b.json")
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE((tmp_path / "d" / "b.json").stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o700
    finally:
        server.shutdown()


def test_no_config_written_when_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("TINCT_CONFIG_DIR", str(tmp_path))
    server = BridgeServer(FakeBackend(), port=0, config_path=False)
    server.shutdown()
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- real engine


def test_real_engine_round_trip(cfgdir):
    from tinct.engine import colorizer as engine

    try:
        colorizer = engine.Colorizer(model="tinct-base", device="cpu", pretrained=False)
    except TypeError:
        colorizer = engine.Colorizer(model="tinct-base", device="cpu")
    with (
        start_server_in_thread(EngineBackend(colorizer=colorizer), port=0) as handle,
        P.BridgeClient(port=handle.port, token=handle.token, timeout=120) as client,
    ):
        assert "tinct-base" in [m["name"] for m in client.hello()["models"]]
        img = gray_image(64, 48)
        hint = {"row": 10, "col": 10, "r": 255, "g": 0, "b": 0}
        res = client.colorize(64, 48, "gray8", img.tobytes(), hints=[hint])
    assert (res.width, res.height, res.format) == (64, 48, "rgb8")
    assert len(res.pixels) == 64 * 48 * 3


# --------------------------------------------------------------------------- stale bridge.json


def _fake_challenge(conn, data):
    P.send_frame(conn, {"type": "auth_challenge", "server_nonce": P.new_nonce(),
                        "server_proof": P.new_nonce()})  # fmt: skip


def _echo(conn, data):
    conn.sendall(data)  # mirror the client's own frames


def _v1_hello(conn, data):
    P.send_frame(conn, {"type": "hello", "protocol_version": P.PROTOCOL_VERSION})


def _garbage(conn, data):
    conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + os.urandom(64))


@pytest.mark.parametrize("answer", [None, _fake_challenge, _echo, _v1_hello, _garbage],
                         ids=["silent", "fake-challenge", "echo", "hello", "garbage"])  # fmt: skip
def test_stale_bridge_json_sends_no_token_and_no_pixels(cfgdir, answer):
    server, _ = make_server(cfgdir)
    cfg = json.loads((cfgdir / "bridge.json").read_text())
    port, token = server.port, server.token
    server.shutdown()  # as if killed: the file stays behind, another program takes the port
    impostor = Impostor(port, answer)
    (cfgdir / "bridge.json").write_text(json.dumps(cfg))
    pixels = b"PIXELS:)" * 64
    try:
        client = P.BridgeClient(timeout=1.0)  # this process "wrote" it: the pid check passes
        with client, pytest.raises(P.BridgeError) as info:
            client.colorize(32, 16, "gray8", pixels)
        time.sleep(0.2)
    finally:
        impostor.close()
    got = bytes(impostor.received)
    assert impostor.connections == 1 and got  # it did connect and send its auth frame
    assert token.encode() not in got and b"PIXELS" not in got
    frame = P.decode_frame(got)  # exactly one frame: the nonce, nothing secret
    assert frame.type == "auth" and set(frame.header) <= {"type", "client_nonce", "protocol",
                                                           "client", "payload_bytes"}  # fmt: skip
    if answer is _fake_challenge:
        assert isinstance(info.value, P.ServerUnverified)
        assert "stale" in info.value.message and "tinct serve" in info.value.message


@pytest.mark.skipif(os.name != "posix", reason="the pid check is POSIX only")
def test_bridge_json_of_a_dead_server_is_not_even_dialled(cfgdir):
    impostor = Impostor(answer=_fake_challenge)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    cfg = {"host": "127.0.0.1", "port": impostor.port, "token": "t0ken", **P.process_identity()}
    cfg["pid"] = proc.pid
    cfgdir.mkdir(parents=True, exist_ok=True)
    (cfgdir / "bridge.json").write_text(json.dumps(cfg))
    try:
        with pytest.raises(P.ServerNotRunning) as info:
            P.BridgeClient().hello()
    finally:
        impostor.close()
    assert "stale" in info.value.message and str(proc.pid) in info.value.message
    assert impostor.connections == 0


def test_cancel_frees_the_engine_from_a_long_mrf_job_within_a_second(cfgdir):
    """The real engine, the longest MRF a request may ask for; the next client is not kept
    waiting for the cancelled job."""
    from tinct.engine import colorizer as engine

    colorizer = engine.Colorizer(model="tinct-base", device="cpu", pretrained=False)
    spans = []

    class Timed(EngineBackend):
        def colorize(self, job, progress):
            t0 = time.monotonic()
            try:
                return super().colorize(job, progress)
            finally:
                spans.append((t0, time.monotonic()))

    server = BridgeServer(Timed(colorizer=colorizer), port=0, heartbeat=0.05).start()
    img = gray_image(256, 256).tobytes()
    cancel_at = []

    # At 256 x 256 the network pass takes ~0.1 s and the 100 sweeps ~3.5 s on an idle
    # 2-core CPU (at 128 x 128 the whole job could end in under a second, before any
    # cancel): cancel at 0.5 s, well inside the sweeps on a machine several times faster.
    def progress(f, m):
        if spans == [] and time.monotonic() - t0 > 0.5:
            cancel_at.append(time.monotonic())
            return False
        return True

    try:
        with client_for(server, timeout=60) as client:
            t0 = time.monotonic()
            with pytest.raises(P.BridgeError) as info:
                client.colorize(256, 256, "gray8", img, mrf_weight=1.0,
                                mrf_iters=P.DEFAULT_MAX_MRF_ITERS, progress=progress)  # fmt: skip
            assert info.value.code == "cancelled"
            res = client.colorize(32, 32, "gray8", img[: 32 * 32])  # same connection
            assert res.width == 32
    finally:
        server.shutdown()
    (_, end_cancelled), _second = spans
    assert end_cancelled - cancel_at[0] < 1.0, end_cancelled - cancel_at[0]


# --------------------------------------------------------------------------- stopping


class Stubborn(FakeBackend):
    """Notices a cancel only every 0.3 s (like an engine inside a long native call)."""

    def colorize(self, job, progress):
        self.calls.append(job)
        with self.lock:
            self.active += 1
        try:
            for _ in range(100):
                time.sleep(0.3)
                if job.cancel.is_set():
                    return np.zeros((*job.image.shape[:2], 3), np.uint8)
            return np.zeros((*job.image.shape[:2], 3), np.uint8)
        finally:
            with self.lock:
                self.active -= 1


def test_shutdown_cancels_jobs_waits_for_them_and_tells_their_clients(cfgdir):
    backend = Stubborn()
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05)
    errors = []

    def run():
        with client_for(server) as client:
            try:
                client.colorize(8, 8, "gray8", bytes(64))
            except P.BridgeError as exc:
                errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 5
    while not backend.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.shutdown() is True  # every job stopped
    assert backend.active == 0  # shutdown returned only after the job's thread ended
    assert not server._running_workers()
    t.join(5)
    assert [e.code for e in errors] == ["cancelled"]
    assert "shutting down" in errors[0].message
    assert not (cfgdir / "bridge.json").exists()


def test_a_second_server_refuses_a_live_bridge_json(served, cfgdir):
    from tinct.bridge.server import ServerAlreadyRunning

    server, _ = served
    before = (cfgdir / "bridge.json").read_text()
    with pytest.raises(ServerAlreadyRunning) as info:
        BridgeServer(FakeBackend(), port=0)
    assert str(os.getpid()) in str(info.value) and str(server.port) in str(info.value)
    assert "--config" in str(info.value)
    assert (cfgdir / "bridge.json").read_text() == before  # untouched: still found
    with P.BridgeClient() as client:
        assert client.hello()["server"] == "tinct"
    other = BridgeServer(FakeBackend(), port=0, config_path=cfgdir / "other.json")
    other.shutdown()  # another file is fine


def test_a_stale_bridge_json_is_replaced_and_only_its_owner_removes_it(cfgdir):
    server, _ = make_server(cfgdir)
    port = server.port
    server.shutdown()  # as if killed: leave its file behind, nobody on the port
    cfg = {"host": "127.0.0.1", "port": port, "token": "old", **P.process_identity()}
    (cfgdir / "bridge.json").write_text(json.dumps(cfg))
    server, _ = make_server(cfgdir)  # nothing answers on that port: the file is stale
    assert json.loads((cfgdir / "bridge.json").read_text())["token"] == server.token
    cfg["token"] = "someone else's"
    (cfgdir / "bridge.json").write_text(json.dumps(cfg))
    server.shutdown()
    assert json.loads((cfgdir / "bridge.json").read_text())["token"] == "someone else's"


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_an_existing_config_folder_is_made_user_only(cfgdir, tmp_path, caplog):
    cfgdir.mkdir(mode=0o755)
    os.chmod(cfgdir, 0o755)
    server, _ = make_server(cfgdir)
    server.shutdown()
    assert stat.S_IMODE(cfgdir.stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    with caplog.at_level("WARNING", logger="tinct.bridge.server"):
        BridgeServer(FakeBackend(), port=0, config_path=shared / "b.json").shutdown()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # not ours to change: a warning
    assert any("can be read by other users" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("127.attacker.example", False), ("127.0.0.1 ", False), (" 127.0.0.1", False),
     ("0.0.0.0", False), ("10.1.2.3", False), ("", False), ("::", False)],
)  # fmt: skip
def test_loopback_means_every_address_is_loopback(host, loopback, monkeypatch):
    from tinct.bridge import server as server_module

    real = socket.getaddrinfo

    def resolve(name, *args, **kw):  # no DNS in tests: the attacker's name is public
        if name == "127.attacker.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.7", 0))]
        return real(name, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert server_module.is_loopback_host(host) is loopback


def test_a_name_that_resolves_elsewhere_needs_allow_remote(cfgdir):
    with pytest.raises(ValueError, match="allow_remote"):
        BridgeServer(FakeBackend(), host="127.attacker.example", port=0)
    with pytest.raises(ValueError, match="allow_remote"):
        BridgeServer(FakeBackend(), host="127.0.0.1 ", port=0)
    assert not (cfgdir / "bridge.json").exists()


# --------------------------------------------------------------------------- weights


def test_a_download_runs_outside_the_engine_lock_and_fails_cleanly(
    cfgdir, tmp_path, monkeypatch, caplog
):
    from tinct.models import weights

    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "empty-cache"))
    locked = []

    def offline(record_weights, *, progress=True):
        locked.append(server._engine_lock.locked())
        raise weights.WeightsUnavailableError(f"could not download {record_weights.url}")

    monkeypatch.setattr(weights, "fetch", offline)
    server = BridgeServer(EngineBackend(model="tinct-base", pretrained=True), port=0).start()
    try:
        with client_for(server) as client, caplog.at_level("INFO", logger="tinct.bridge"):
            ready = {m["name"]: m["ready"] for m in client.hello()["models"]}
            assert ready["zhang-eccv16"] is False and ready["tinct-base"] is True
            with pytest.raises(P.BridgeError) as info:
                client.colorize(8, 8, "gray8", bytes(64), model="zhang-eccv16")
            assert info.value.code == "unknown_model"
            assert "'zhang-eccv16'" in info.value.message and "not installed" in info.value.message
    finally:
        server.shutdown()
    assert locked == [False]
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"


def test_a_request_for_too_many_tiles_is_refused_and_the_server_serves_on(cfgdir):
    """``tile`` 16 overlapping by 15 on ``levin`` would be 136 161 network passes."""
    from tinct.engine.colorizer import Colorizer
    from tinct.engine.tiled import MAX_TILES

    server, _ = make_server(cfgdir, backend=EngineBackend(colorizer=Colorizer("levin")))
    img, hint = gray_image(64, 64), {"row": 10, "col": 10, "r": 255, "g": 0, "b": 0}
    header = {"type": "colorize", "id": "greedy", "width": 64, "height": 64,
              "format": "gray8", "hints": [hint], "tile": 16, "tile_overlap": 15}  # fmt: skip
    try:
        started = time.monotonic()
        sock = authed(server)
        reply = request(sock, header, [("image", img.tobytes())])
        while reply.type == "progress":
            reply = P.read_frame(sock)
        refused = time.monotonic() - started
        with client_for(server, timeout=60) as other:  # the server serves on
            res = other.colorize(64, 64, "gray8", img.tobytes(), hints=[hint])
        again = request(sock, {"type": "models", "id": "m"})  # and so does that connection
        sock.close()
    finally:
        server.shutdown()
    assert reply.type == "error" and reply.header["code"] == P.E_BAD_REQUEST, reply.header
    assert reply.header["message"].startswith('"tile": cuts this image into 136161 tiles')
    assert f"more than the {MAX_TILES} allowed" in reply.header["message"]
    assert refused < 10  # up front, not after the passes (51 s here)
    assert (res.width, res.height, len(res.pixels)) == (64, 64, 64 * 64 * 3)
    assert again.type == "models"


def test_an_impostor_is_told_with_the_token_file_the_client_read(cfgdir, tmp_path):
    impostor = Impostor(answer=_fake_challenge)
    other = tmp_path / "elsewhere.json"
    other.write_text(json.dumps({"host": "127.0.0.1", "port": impostor.port, "token": "t0ken",
                                 **P.process_identity()}))  # fmt: skip
    try:
        cases = (({"config_path": other}, f"the token in {other}"),
                 ({"port": impostor.port, "token": "t0ken"}, "the token given"))  # fmt: skip
        for kwargs, named in cases:
            client = P.BridgeClient(timeout=1.0, **kwargs)
            with client, pytest.raises(P.ServerUnverified) as info:
                client.hello()
            assert named in info.value.message and "bridge.json" not in info.value.message
    finally:
        impostor.close()


def test_a_bridge_json_that_cannot_be_written_is_named_and_the_port_closed(tmp_path, monkeypatch):
    # the OSError of the write escaped as is: tinct serve said "cannot listen on
    # 127.0.0.1:0: [Errno 20] Not a directory", and the bound socket stayed open
    import tinct.bridge.server as server_module
    from tinct.bridge.server import ConfigUnwritable

    ports = []
    write = server_module.write_bridge_config

    def recording(path, host, port, token):
        ports.append(port)
        return write(path, host, port, token)

    monkeypatch.setattr(server_module, "write_bridge_config", recording)
    (tmp_path / "afile").write_text("")
    path = tmp_path / "afile" / "bridge.json"
    with pytest.raises(ConfigUnwritable) as info:
        BridgeServer(FakeBackend(), port=0, config_path=path)
    assert isinstance(info.value, OSError)  # callers that catch OSError still do
    assert str(info.value).startswith(f"cannot write {path} (")
    assert "--config FILE" in str(info.value)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ports[0]), timeout=5).close()
