"""A colorize job while it runs (tinct.bridge.running_job), over real sockets on 127.0.0.1.

Progress frames stream (and keep going while a frame arrives in pieces), cancel
works from the same or another connection, only ``cancel`` is allowed
meanwhile, and a broken or stalled frame or a vanished client cancels the job.
"""

import contextlib
import socket
import threading
import time

import pytest

from bridge_helpers import FakeBackend, authed, client_for, make_server, raw_frame, start_job
from tinct.bridge import wire as P


def test_client_vanishes_during_job(cfgdir):
    backend = FakeBackend(delay=0.5, steps=10)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05)
    try:
        sock = authed(server)
        P.send_frame(
            sock,
            {"type": "colorize", "width": 2, "height": 2, "format": "gray8"},
            [("image", bytes(4))],
        )
        P.read_frame(sock)  # first progress frame
        t0 = time.monotonic()
        sock.close()
        with client_for(server) as client:
            assert client.colorize(2, 2, "gray8", bytes(4)).width == 2
        assert backend.calls[0].cancel.is_set()  # the abandoned job was cancelled...
        assert backend.spans[0][1] - t0 < 0.3  # ...and stopped early (it runs 0.5 s otherwise)
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
        # the job takes 2 s uncancelled: a client that waits only 1.5 s sees "cancelled"
        # only if the cancel stopped it
        with client_for(server, timeout=1.5) as client:
            with pytest.raises(P.BridgeError) as info:
                client.colorize(8, 8, "gray8", bytes(64), progress=lambda f, m: False)
            assert info.value.code == "cancelled"
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


def test_frames_during_a_job(cfgdir):
    backend = FakeBackend(delay=1.0, steps=20)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05)
    try:
        with authed(server) as sock:
            start_job(server, sock)
            P.send_frame(sock, {"type": "hello", "id": "h"})  # only cancel is allowed
            P.send_frame(sock, {"type": "cancel", "id": "c0", "request_id": "other"})
            P.send_frame(sock, {"type": "cancel", "id": 5})  # a bad id: not echoed
            replies = {}
            while "job" not in replies:
                h = P.read_frame(sock).header
                if h["type"] != "progress":
                    replies[h.get("id")] = h
        assert replies["h"]["code"] == "busy"
        assert replies["c0"]["type"] == "cancel_ack" and replies["c0"]["found"] is False
        assert replies[None]["type"] == "cancel_ack" and replies[None]["found"] is True
        assert replies["job"]["code"] == "cancelled"
    finally:
        server.shutdown()


def test_a_partial_frame_during_a_job_keeps_the_heartbeat_and_the_result(cfgdir):
    """Four bytes of a frame while the job runs: progress goes on, the result arrives, and
    the frame is finished (and answered) after it."""
    backend = FakeBackend(delay=1.0, steps=10)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05, read_timeout=5.0)
    try:
        with authed(server) as sock:
            start_job(server, sock)
            hello = P.encode_frame({"type": "hello", "id": "h"})
            sock.sendall(hello[:4])
            last, gaps, end = time.monotonic(), [], None
            while end is None:
                h = P.read_frame(sock).header
                now = time.monotonic()
                gaps.append(now - last)
                last = now
                if h["type"] != "progress":
                    end = h
            assert end["type"] == "result" and end["id"] == "job"
            assert max(gaps) < 0.5, gaps  # heartbeats every 0.05 s, never a 5 s stall
            sock.sendall(hello[4:])
            assert P.read_frame(sock).header["id"] == "h"
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("data", "code", "needle"),
    [
        (b"GARBAGEGARBAGE", "bad_frame", "magic"),
        (raw_frame({"type": "cancel", "id": "x", "payload_bytes": 10**9}), "too_large",
         "4 MiB) (the limit for a frame sent while a request runs"),
        (raw_frame({"type": "cancel", "id": "x", "pad": [0] * P.DEFAULT_MAX_HEADER_VALUES}),
         "too_large", "values"),
        (P.PREFIX.pack(P.MAGIC, P.PROTOCOL_VERSION, 9) + b"{bad json", "bad_frame", "JSON"),
        (P.PREFIX.pack(P.MAGIC, 1, 2) + b"{}", "version_mismatch", "version 1"),
    ],
    ids=["garbage", "oversize", "many-values", "bad-json", "version"],
)  # fmt: skip
def test_a_bad_frame_during_a_job_is_answered_and_cancels_it(cfgdir, data, code, needle):
    backend = FakeBackend(delay=3.0, steps=60)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05)
    try:
        with authed(server) as sock:
            start_job(server, sock)
            t0 = time.monotonic()
            sock.sendall(data)
            while (h := P.read_frame(sock).header)["type"] == "progress":
                pass
            assert (h["type"], h["code"]) == ("error", code) and "id" not in h
            assert needle in h["message"]
            assert "--max-frame-mb" not in h["message"]  # that flag does not apply during a job
            assert sock.recv(1) == b""  # then closed
        deadline = time.monotonic() + 2
        while backend.active and time.monotonic() < deadline:
            time.sleep(0.01)
        assert backend.calls[0].cancel.is_set() and backend.spans[0][1] - t0 < 1.0
    finally:
        server.shutdown()


def test_a_frame_that_stalls_during_a_job_times_out(cfgdir):
    backend = FakeBackend(delay=3.0, steps=60)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05, read_timeout=0.4)
    try:
        with authed(server) as sock:
            start_job(server, sock)
            sock.sendall(b"TNCT")
            while (h := P.read_frame(sock).header)["type"] == "progress":
                pass
            assert h["code"] == "timeout"
        assert backend.calls[0].cancel.is_set()
    finally:
        server.shutdown()


def test_the_same_id_on_two_connections(cfgdir):
    """Jobs are kept per connection: a cancel by id reaches every job with that id, and one
    job's end does not forget the other."""
    backend = FakeBackend(delay=3.0, steps=60)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05)
    try:
        with authed(server) as a, authed(server) as b, client_for(server) as other:
            start_job(server, a, rid="dup")
            start_job(server, b, rid="dup")  # queued behind a's
            assert len(server._jobs) == 2
            assert other.cancel("dup") is True
            for sock in (a, b):
                while (h := P.read_frame(sock).header)["type"] == "progress":
                    pass
                assert (h["code"], h["id"]) == ("cancelled", "dup")
            start_job(server, a, rid="dup")  # a new job with the id: still found
            assert other.cancel("dup") is True
            while (h := P.read_frame(a).header)["type"] == "progress":
                pass
            assert h["code"] == "cancelled"
    finally:
        server.shutdown()


def test_a_client_that_half_closes_during_a_job_has_it_cancelled(cfgdir):
    """End of stream means the client is gone (documented): its job is cancelled."""
    backend = FakeBackend(delay=3.0, steps=60)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05)
    try:
        with authed(server) as sock:
            start_job(server, sock)
            sock.shutdown(socket.SHUT_WR)
            frames = []
            with contextlib.suppress(P.ConnectionClosed):
                while True:
                    frames.append(P.read_frame(sock).header)
            assert all(f["type"] == "progress" for f in frames)  # no result: it is gone
        deadline = time.monotonic() + 2
        while backend.active and time.monotonic() < deadline:
            time.sleep(0.01)
        assert backend.calls[0].cancel.is_set() and not backend.active
    finally:
        server.shutdown()
