"""The real client against the real server on 127.0.0.1 (fake colorizers, no model)."""

import contextlib
import json
import os
import random
import socket
import stat
import struct
import threading
import time

import numpy as np
import pytest

from tinct import protocol as P
from tinct.server import (
    BridgeServer,
    ColorizeJob,
    EngineBackend,
    start_server_in_thread,
)


class FakeBackend:
    """Tints the image (R = L, G = L/2, B = 255 - L) and records calls."""

    default_model = "fake"

    def __init__(self, delay=0.0, steps=0):
        self.calls = []
        self.delay = delay
        self.steps = steps
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def models(self):
        return [
            {
                "name": "fake",
                "display_name": "Fake",
                "takes_hints": True,
                "default_temperature": 0.38,
                "default_decoder": "annealed_mean",
                "decoders": ["annealed_mean", "mode"],
            },
            {"name": "other", "display_name": "Other", "takes_hints": False},
        ]

    def colorize(self, job: ColorizeJob, progress):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.calls.append(job)
            for i in range(self.steps):
                if job.cancel.is_set():
                    break
                time.sleep(self.delay / max(self.steps, 1))
                progress((i + 1) / self.steps, f"step {i + 1}")
            else:
                time.sleep(0 if self.steps else self.delay)
            img = job.image
            gray = img if img.ndim == 2 else img[..., 0]
            if gray.dtype == np.uint16:
                return np.dstack([gray, gray // 2, 65535 - gray]).astype(np.float32) / 65535
            return np.dstack([gray, gray // 2, 255 - gray]).astype(np.uint8)
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture
def cfgdir(tmp_path, monkeypatch):
    monkeypatch.setenv("TINCT_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def make_server(cfgdir, backend=None, **kw):
    backend = backend or FakeBackend()
    kw.setdefault("read_timeout", 5.0)
    server = BridgeServer(backend, port=0, **kw).start()
    return server, backend


@pytest.fixture
def served(cfgdir):
    server, backend = make_server(cfgdir)
    yield server, backend
    server.shutdown()


def client_for(server, **kw):
    kw.setdefault("timeout", 10.0)
    return P.BridgeClient(port=server.port, token=server.token, **kw)


def raw(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return sock


def gray_image(w, h, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


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
    """EngineBackend hands tinct.hints.Hint objects to a Colorizer look-alike."""
    calls = []

    class FakeColorizer:
        model_name = "fake-engine"

        def colorize(
            self,
            image,
            hints=(),
            reference=None,
            temperature=None,
            decoder=None,
            mrf_weight=0.0,
            mrf_iters=None,
            tile=None,
        ):
            calls.append({"hints": list(hints), "temperature": temperature, "tile": tile})
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


# --------------------------------------------------------------------------- refusals


def test_wrong_token_refused_and_closed(served):
    server, backend = served
    with P.BridgeClient(port=server.port, token="wrong", timeout=5) as client:
        with pytest.raises(P.BridgeError) as info:
            client.hello()
        assert info.value.code == "unauthorized"
        assert client._sock is None
    sock = raw(server)
    with sock:
        P.send_frame(sock, {"type": "hello"})  # no token at all
        assert P.read_frame(sock).header["code"] == "unauthorized"
        assert sock.recv(1) == b""  # closed
    with client_for(server) as client:
        assert client.hello()["server"] == "tinct"
    assert not backend.calls


def test_unauthorized_payload_is_never_read(served):
    server, _ = served
    with raw(server) as sock:
        header = {"type": "colorize", "token": "bad", "payload_bytes": 500_000_000}
        P.send_frame(sock, header)
        assert P.read_frame(sock).header["code"] == "unauthorized"


def test_version_mismatch_reply_names_both(served):
    server, _ = served
    with raw(server) as sock:
        data = bytearray(P.encode_frame({"type": "hello", "token": server.token}))
        struct.pack_into("<H", data, 4, 9)
        sock.sendall(data)
        reply = P.read_frame(sock).header
    assert reply["code"] == "version_mismatch"
    assert "version 9" in reply["message"] and f"version {P.PROTOCOL_VERSION}" in reply["message"]


def test_bad_magic_reply(served):
    server, _ = served
    with raw(server) as sock:
        sock.sendall(b"HTTP/1.1 GET /\r\n\r\n")
        assert P.read_frame(sock).header["code"] == "bad_frame"
        assert sock.recv(1) == b""


def test_oversize_frame_refused(cfgdir):
    server, _backend = make_server(cfgdir, max_frame_bytes=1000)
    try:
        with client_for(server) as client:
            with pytest.raises(P.BridgeError) as info:
                client.colorize(40, 40, "rgba8", bytes(6400))
            assert info.value.code == "too_large"
            assert "1000" in info.value.message
        with raw(server) as sock:
            sock.sendall(P.PREFIX.pack(P.MAGIC, P.PROTOCOL_VERSION, 1 << 30))
            assert P.read_frame(sock).header["code"] == "too_large"
        with client_for(server) as client:
            assert client.colorize(10, 10, "gray8", bytes(100)).width == 10
    finally:
        server.shutdown()


def test_too_many_pixels(cfgdir):
    server, _ = make_server(cfgdir, max_pixels=100)
    try:
        with client_for(server) as client:
            with pytest.raises(P.BridgeError) as info:
                client.colorize(11, 10, "gray8", bytes(110))
            assert info.value.code == "too_large"
            assert client.hello()["limits"]["max_pixels"] == 100  # connection still usable
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"width": 4, "height": 4, "fmt": "gray8", "pixels": bytes(15)}, "bad_request"),
        ({"width": 0, "height": 4, "fmt": "gray8", "pixels": b""}, "bad_request"),
        (
            {"width": 4, "height": 4, "fmt": "gray8", "pixels": bytes(16), "model": "nope"},
            "unknown_model",
        ),
        (
            {"width": 4, "height": 4, "fmt": "gray8", "pixels": bytes(16), "temperature": -1},
            "bad_request",
        ),
        (
            {
                "width": 4,
                "height": 4,
                "fmt": "gray8",
                "pixels": bytes(16),
                "hints": [{"row": 9, "col": 0, "r": 1, "g": 2, "b": 3}],
            },
            "bad_request",
        ),
        (
            {
                "width": 4,
                "height": 4,
                "fmt": "gray8",
                "pixels": bytes(16),
                "hints": [{"row": 0, "col": 0, "r": 256, "g": 2, "b": 3}],
            },
            "bad_request",
        ),
        (
            {"width": 4, "height": 4, "fmt": "gray8", "pixels": bytes(16), "hint_layer": bytes(10)},
            "bad_request",
        ),
        (
            {
                "width": 4,
                "height": 4,
                "fmt": "gray8",
                "pixels": bytes(16),
                "result_format": "rgb16",
            },
            "bad_request",
        ),
    ],
)
def test_bad_requests_keep_connection(served, kwargs, code):
    server, backend = served
    with client_for(server) as client:
        args = [kwargs.pop(k) for k in ("width", "height", "fmt", "pixels")]
        with pytest.raises(P.BridgeError) as info:
            client.colorize(*args, **kwargs)
        assert info.value.code == code
        assert client.hello()["server"] == "tinct"
    assert not backend.calls


def test_unknown_type(served):
    server, _ = served
    with raw(server) as sock:
        P.send_frame(sock, {"type": "frobnicate", "token": server.token})
        assert P.read_frame(sock).header["code"] == "unknown_type"
        P.send_frame(sock, {"type": "hello", "token": server.token})
        assert P.read_frame(sock).header["type"] == "hello"


def test_server_not_running_message(cfgdir):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(P.ServerNotRunning) as info:
        P.BridgeClient(port=port, token="x", timeout=2).hello()
    assert "Start the server with: tinct serve" in str(info.value)
    with pytest.raises(P.ServerNotRunning) as info:
        P.BridgeClient()  # no bridge.json
    assert "tinct serve" in str(info.value)


def test_remote_host_needs_allow_remote(cfgdir):
    with pytest.raises(ValueError, match="allow_remote"):
        BridgeServer(FakeBackend(), host="0.0.0.0", port=0)


# --------------------------------------------------------------------------- robustness


def test_fuzzed_frames_never_kill_the_server(cfgdir):
    server, _backend = make_server(cfgdir, read_timeout=0.3)
    rng = random.Random(1234)
    good = P.encode_frame(
        {"type": "colorize", "token": server.token, "width": 4, "height": 4, "format": "gray8"},
        [("image", bytes(16))],
    )
    t0 = time.monotonic()
    try:
        for i in range(150):
            kind = i % 5
            if kind == 0:
                data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
            elif kind == 1:
                data = bytearray(good)
                for _ in range(rng.randint(1, 6)):
                    data[rng.randrange(len(data))] = rng.getrandbits(8)
                data = bytes(data)
            elif kind == 2:
                data = good[: rng.randrange(len(good))]
            elif kind == 3:
                hdr = json.dumps(
                    {
                        "type": rng.choice(["colorize", "hello", "cancel", 5, None]),
                        "token": server.token,
                        "width": rng.choice([-1, 0, 4, 2**40, "x"]),
                        "height": rng.choice([4, None]),
                        "format": rng.choice(["gray8", "rgba16", "bogus"]),
                        "hints": rng.choice([None, [], [{}], "x", [{"row": 1}]]),
                        "payload_bytes": 16,
                        "sections": rng.choice([None, {"image": {"offset": 0, "size": 16}}, {}]),
                    }
                ).encode()
                data = P.PREFIX.pack(P.MAGIC, 1, len(hdr)) + hdr + bytes(16)
            else:
                data = P.MAGIC + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 20)))
            with raw(server) as sock:
                sock.settimeout(2)
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                try:
                    while sock.recv(65536):
                        pass
                except OSError:
                    pass
        assert time.monotonic() - t0 < 60
        with client_for(server) as client:
            assert client.colorize(4, 4, "gray8", bytes(16)).width == 4
        assert server.stats["connections"] >= 150
    finally:
        server.shutdown()


def test_slow_client_times_out_others_served(cfgdir):
    server, _ = make_server(cfgdir, read_timeout=0.4)
    try:
        slow = raw(server)
        slow.sendall(P.encode_frame({"type": "hello", "token": server.token})[:7])
        t0 = time.monotonic()
        with client_for(server) as client:  # served while the slow one stalls
            assert client.hello()["server"] == "tinct"
        reply = P.read_frame(slow).header
        assert reply["code"] == "timeout"
        assert slow.recv(1) == b""
        assert time.monotonic() - t0 < 3
        slow.close()
        with client_for(server) as client:
            assert client.hello()["server"] == "tinct"
    finally:
        server.shutdown()


def test_client_dies_mid_frame(served):
    server, backend = served
    frame = P.encode_frame(
        {"type": "colorize", "token": server.token, "width": 100, "height": 100, "format": "gray8"},
        [("image", bytes(10000))],
    )
    for cut in (5, 30, len(frame) - 100):
        sock = raw(server)
        sock.sendall(frame[:cut])
        sock.close()
    with client_for(server) as client:
        assert client.colorize(100, 100, "gray8", bytes(10000)).width == 100
    assert len(backend.calls) == 1


def test_concurrent_clients(cfgdir):
    backend = FakeBackend(delay=0.001)
    server, _ = make_server(cfgdir, backend=backend)
    errors = []

    def worker(k):
        try:
            with client_for(server) as client:
                for i in range(25):
                    img = gray_image(16 + k, 12, seed=k * 100 + i)
                    res = client.colorize(
                        16 + k,
                        12,
                        "gray8",
                        img.tobytes(),
                        hints=[{"row": 0, "col": k, "r": k, "g": i, "b": 0}],
                    )
                    out = np.frombuffer(res.pixels, np.uint8).reshape(12, 16 + k, 3)
                    assert np.array_equal(out[..., 0], img)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    try:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert len(backend.calls) == 200
        assert backend.max_active == 1  # one colorization at a time
        with client_for(server) as client:
            assert client.hello()["server"] == "tinct"
    finally:
        server.shutdown()


def test_progress_frames_streamed(cfgdir):
    server, _ = make_server(cfgdir, backend=FakeBackend(delay=0.4, steps=4), heartbeat=0.05)
    seen = []
    try:
        with client_for(server) as client:
            res = client.colorize(
                8, 8, "gray8", bytes(64), progress=lambda f, m: seen.append((f, m))
            )
        assert res.width == 8
        fractions = [f for f, _ in seen]
        assert fractions == sorted(fractions)
        assert any(m == "step 2" for _, m in seen)
        assert all(0.0 <= f <= 1.0 for f in fractions)
    finally:
        server.shutdown()


def test_cancel_on_same_connection(cfgdir):
    backend = FakeBackend(delay=2.0, steps=40)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05)
    try:
        with client_for(server) as client:
            t0 = time.monotonic()
            with pytest.raises(P.BridgeError) as info:
                client.colorize(8, 8, "gray8", bytes(64), progress=lambda f, m: False)
            assert info.value.code == "cancelled"
            assert time.monotonic() - t0 < 1.5
            assert client.hello()["server"] == "tinct"  # same connection still fine
    finally:
        server.shutdown()


def test_cancel_from_other_connection(cfgdir):
    backend = FakeBackend(delay=3.0, steps=60)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05)
    result = {}

    def run():
        with client_for(server) as client:
            try:
                client.colorize(8, 8, "gray8", bytes(64), request_id="job-1")
            except P.BridgeError as exc:
                result["code"] = exc.code

    try:
        t = threading.Thread(target=run)
        t.start()
        deadline = time.monotonic() + 5
        while not backend.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        with client_for(server) as other:
            assert other.cancel("job-1") is True
            assert other.cancel("no-such-job") is False
        t.join(5)
        assert result["code"] == "cancelled"
    finally:
        server.shutdown()


def test_client_vanishes_during_job(cfgdir):
    backend = FakeBackend(delay=0.5, steps=10)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05)
    try:
        sock = raw(server)
        P.send_frame(
            sock,
            {"type": "colorize", "token": server.token, "width": 2, "height": 2, "format": "gray8"},
            [("image", bytes(4))],
        )
        P.read_frame(sock)  # first progress frame
        sock.close()
        with client_for(server) as client:
            assert client.colorize(2, 2, "gray8", bytes(4)).width == 2
    finally:
        server.shutdown()


def test_backend_exception_is_isolated(cfgdir):
    class Broken(FakeBackend):
        def colorize(self, job, progress):
            raise RuntimeError("model exploded")

    server, _ = make_server(cfgdir, backend=Broken())
    try:
        with client_for(server) as client:
            with pytest.raises(P.BridgeError) as info:
                client.colorize(2, 2, "gray8", bytes(4))
            assert info.value.code == "internal" and "model exploded" in info.value.message
            assert client.hello()["server"] == "tinct"
    finally:
        server.shutdown()


def test_shutdown_with_open_connections(cfgdir):
    server, _ = make_server(cfgdir)
    sock = raw(server)
    t0 = time.monotonic()
    server.shutdown()
    assert time.monotonic() - t0 < 5
    sock.settimeout(2)
    with contextlib.suppress(ConnectionResetError):  # reset: the connection is gone too
        assert sock.recv(1) == b""  # closed (EOF)
    sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


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
    engine = pytest.importorskip("tinct.engine", reason="tinct.engine not written yet")
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
