"""Accepting and serving (tinct.bridge.serving): hello's limits, many clients, admission.

Simultaneous clients are all served, stalled strangers cannot lock a token
holder out, a full pending budget drops the oldest pending connection that
has not spoken, and jobs get the engine first come, first served.
"""

import threading
import time

import numpy as np
import pytest

from bridge_helpers import FakeBackend, client_for, gray_image, make_server, raw
from tinct.bridge import wire as P
from tinct.bridge.serving import FifoLock


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


# --------------------------------------------------------------------------- the engine lock


def _until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_the_engine_lock_is_first_come_first_served():
    """Waiters that block, and waiters that wait a little at a time (as a job does, to see
    its cancel), get the lock in the order they came, however often they polled."""
    lock = FifoLock()
    order = []

    def blocking(k):
        assert lock.acquire(timeout=10)
        order.append(k)
        lock.release()

    def polling(k):
        place = lock.join()
        try:
            while not place.wait(0.01):
                pass
        finally:
            place.leave()
        order.append(k)
        lock.release()

    assert lock.acquire()
    threads = []
    for k in range(8):
        threads.append(threading.Thread(target=(blocking, polling)[k % 2], args=(k,)))
        threads[-1].start()
        _until(lambda k=k: lock.waiting == k + 1)
    time.sleep(0.1)  # the pollers have given up and waited again many times
    lock.release()
    for t in threads:
        t.join(10)
    assert order == list(range(8))
    assert not lock.locked() and lock.waiting == 0


def test_the_engine_lock_works_as_a_lock():
    lock = FifoLock()
    with lock:
        assert lock.locked()
        assert lock.acquire(blocking=False) is False
        assert lock.acquire(timeout=0.05) is False
        place = lock.join()
        assert lock.waiting == 1 and place.wait(0.01) is False
        place.leave()  # a job cancelled while queued
        assert lock.waiting == 0
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
    place = lock.join()
    assert place.wait(0) and place.granted and lock.locked()
    place.leave()  # granted: leaving does not release
    assert lock.locked()
    lock.release()


class _Gated(FakeBackend):
    """Holds the engine with the job ``first`` until ``gate`` is set."""

    def __init__(self):
        super().__init__()
        self.entered, self.gate = threading.Event(), threading.Event()

    def colorize(self, job, progress):
        if job.request_id == "first":
            self.entered.set()
            self.gate.wait(10)
        return super().colorize(job, progress)


def test_queued_jobs_get_the_engine_in_the_order_they_came(cfgdir):
    backend = _Gated()
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05)
    lock = server._engine_lock
    errors = []

    def submit(rid):
        try:
            with client_for(server) as client:
                client.colorize(4, 4, "gray8", bytes(16), request_id=rid)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    try:
        threads = [threading.Thread(target=submit, args=("first",))]
        threads[0].start()
        assert backend.entered.wait(5)
        for k in range(6):
            threads.append(threading.Thread(target=submit, args=(f"job{k}",)))
            threads[-1].start()
            _until(lambda k=k: lock.waiting == k + 1)
        time.sleep(0.3)  # every job has polled its cancel flag a few times
        backend.gate.set()
        for t in threads:
            t.join(20)
    finally:
        server.shutdown()
    assert not errors
    assert [job.request_id for job in backend.calls] == ["first"] + [f"job{k}" for k in range(6)]
