"""One connection's conversation (tinct.connection), over real sockets on 127.0.0.1.

Refusals answer with an error frame and close or keep the connection as
docs/protocol.md says; nothing a client does (garbage, stalls, vanishing, a
failing backend) harms the server or other connections; progress streams and
cancel works from the same or another connection.
"""

import json
import random
import socket
import struct
import threading
import time

import numpy as np
import pytest

from bridge_helpers import FakeBackend, client_for, gray_image, make_server, raw
from tinct import protocol as P

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


# --------------------------------------------------------------------------- progress and cancel


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
