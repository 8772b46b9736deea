"""Accepting and serving (tinct.bridge.serving): hello's limits, many clients, admission.

Simultaneous clients are all served, stalled strangers cannot lock a token
holder out, and a full pending budget drops the oldest pending connection
that has not spoken.
"""

import threading
import time

import numpy as np
import pytest

from bridge_helpers import client_for, gray_image, make_server, raw
from tinct.bridge import wire as P


def test_hello_reports_the_limits(served):
    server, _ = served
    with client_for(server) as client:
        limits = client.hello()["limits"]
    assert limits["max_hints"] == P.DEFAULT_MAX_HINTS
    assert limits["max_mrf_iters"] == P.DEFAULT_MAX_MRF_ITERS
    assert limits["auth_timeout_s"] == server.auth_timeout
    assert limits["read_timeout_s"] == server.read_timeout > 0


def test_simultaneous_clients_are_all_served(served):
    server, _ = served
    n = 24
    barrier = threading.Barrier(n)
    errors, done = [], []

    def one(k):
        try:
            client = client_for(server)
            barrier.wait(10)
            with client:
                img = gray_image(8, 8, seed=k)
                res = client.colorize(8, 8, "gray8", img.tobytes())
                out = np.frombuffer(res.pixels, np.uint8).reshape(8, 8, 3)
                assert np.array_equal(out[..., 0], img)
            done.append(k)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(done) == n


def test_stalled_strangers_cannot_lock_out_a_token_holder(cfgdir):
    """120 unauthenticated connections (half trickling a byte every 0.3 s, half idle) that
    reconnect as soon as they are dropped; a token holder still gets in at once, every time."""
    server, _ = make_server(cfgdir)  # default auth_timeout (5 s) and max_pending (64)
    stop = threading.Event()
    frame = P.encode_frame({"type": "auth", "client_nonce": P.new_nonce()})

    def attacker(trickle):
        while not stop.is_set():
            try:
                sock = raw(server)
            except OSError:
                time.sleep(0.05)
                continue
            with sock:
                i = 0
                while not stop.is_set():
                    try:
                        if trickle:
                            sock.sendall(frame[i % 9 : i % 9 + 1])  # never completes a prefix
                            i += 1
                        sock.settimeout(0.3)
                        if sock.recv(1024) == b"":
                            break  # dropped: come back
                    except TimeoutError:
                        continue
                    except OSError:
                        break
            time.sleep(0.02)

    attackers = [threading.Thread(target=attacker, args=(k % 2 == 0,)) for k in range(120)]
    for t in attackers:
        t.start()
    latencies = []
    try:
        time.sleep(1.0)  # let them fill every pending slot
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            with client_for(server, timeout=10) as client:
                assert client.hello()["server"] == "tinct"
            latencies.append(time.monotonic() - t0)
            time.sleep(0.2)
    finally:
        stop.set()
        for t in attackers:
            t.join(10)
        server.shutdown()
    assert len(latencies) >= 5
    assert max(latencies) < 2.0, latencies  # "within seconds"; typically a few ms
    assert server.stats.get("evicted", 0) > 0


def test_eviction_spares_a_pending_client_that_has_spoken(cfgdir):
    server, _ = make_server(cfgdir, max_pending=2)
    try:
        with raw(server) as a, raw(server) as b:
            nonce = P.new_nonce()
            P.send_frame(a, {"type": "auth", "client_nonce": nonce})
            challenge = P.read_frame(a).header  # a has spoken; b (newer) has not
            time.sleep(0.1)
            with raw(server) as c:  # the budget is full: b goes, not the older a
                assert P.read_frame(b).header["code"] == "busy"
                proof = P.auth_proof(server.token, "client", nonce, challenge["server_nonce"])
                P.send_frame(a, {"type": "auth_response", "client_proof": proof})
                assert P.read_frame(a).header["type"] == "auth_ok"
                c.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    c.recv(1)  # c is still pending, not dropped
        assert server.stats["evicted"] == 1
    finally:
        server.shutdown()
