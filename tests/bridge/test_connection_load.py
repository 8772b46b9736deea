"""tinct.bridge.connection under load: clients that cancel and vanish, 10,000 malformed frames.

Every client must get its own, correct result (or the error it caused); the
server must answer every malformed frame with a documented error code (never
``internal``, never a logged traceback), stay usable, and not grow in memory.
"""

import gc
import json
import logging
import random
import socket
import threading
import time
from collections import Counter

import numpy as np
import pytest

from bridge_helpers import FakeBackend, authed, client_for, gray_image, make_server, raw
from tinct.bridge import wire as P

#: Codes docs/protocol.md documents for malformed input.
MALFORMED_CODES = {
    "bad_frame",
    "version_mismatch",
    "unauthorized",
    "too_large",
    "bad_request",
    "unknown_type",
    "unknown_model",
    "timeout",
    "busy",
}


def _expected(img):
    return np.dstack([img, img // 2, 255 - img])


# --------------------------------------------------------------------------- many clients


def test_sixteen_clients_with_cancels_and_disconnects(cfgdir):
    """16 clients x 20 requests; about a third are cancelled (by progress, from another
    connection) or abandoned (connection closed mid-request)."""
    backend = FakeBackend(delay=0.012, steps=3)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.01)
    outcomes = Counter()
    errors = []
    lock = threading.Lock()

    def worker(k):
        rng = random.Random(k)
        client, other = client_for(server), client_for(server)
        try:
            for i in range(20):
                w, h = 5 + k, 3 + i % 7  # every request has its own size and pixels
                img = gray_image(w, h, seed=1000 * k + i)
                rid = f"c{k}-r{i}"
                action = rng.choice(["plain"] * 5 + ["cancel", "cancel-other", "vanish"])
                progress, timer = None, None
                if action == "cancel":
                    stop_at = rng.randint(1, 3)
                    seen = []

                    def progress(f, m, seen=seen, stop_at=stop_at):
                        seen.append(f)
                        return len(seen) < stop_at

                elif action == "vanish":

                    def progress(f, m):
                        client.close()  # the user closed the plug-in mid-request

                elif action == "cancel-other":
                    delay = rng.uniform(0.0, 0.05)
                    timer = threading.Timer(delay, other.cancel, args=(rid,))
                    timer.start()
                try:
                    res = client.colorize(w, h, "gray8", img.tobytes(), progress=progress,
                                          request_id=rid)  # fmt: skip
                except P.BridgeError as exc:
                    allowed = {"cancel": "cancelled", "cancel-other": "cancelled",
                               "vanish": "closed"}  # fmt: skip
                    assert exc.code == allowed.get(action), (action, exc)
                    outcome = f"{action}: {exc.code}"
                else:
                    out = np.frombuffer(res.pixels, np.uint8).reshape(h, w, 3)
                    assert res.header["id"] == rid
                    assert np.array_equal(out, _expected(img)), (k, i, action)
                    outcome = f"{action}: result"
                finally:
                    if timer is not None:
                        timer.join()
                with lock:
                    outcomes[outcome] += 1
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(f"client {k}: {exc!r}")
        finally:
            client.close()
            other.close()

    try:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert sum(outcomes.values()) == 320, outcomes
        cancelled = sum(v for key, v in outcomes.items() if "cancelled" in key)
        vanished = outcomes["vanish: closed"]
        assert cancelled >= 10 and vanished >= 10, outcomes
        assert backend.max_active == 1  # one colorization at a time
        deadline = time.monotonic() + 5
        while server._jobs and time.monotonic() < deadline:  # abandoned jobs wind down
            time.sleep(0.01)
        assert not server._jobs
        with client_for(server) as client:
            img = gray_image(9, 9, seed=7)
            res = client.colorize(9, 9, "gray8", img.tobytes())
            out = np.frombuffer(res.pixels, np.uint8).reshape(9, 9, 3)
            assert np.array_equal(out, _expected(img))
    finally:
        server.shutdown()
    print("outcomes:", dict(sorted(outcomes.items())))


# --------------------------------------------------------------------------- fuzzing


def _raw_frame(header_bytes, payload=b"", version=P.PROTOCOL_VERSION):
    return P.PREFIX.pack(P.MAGIC, version, len(header_bytes)) + header_bytes + payload


#: Values that make a colorize request malformed, by field (each is always wrong).
BAD_FIELDS = {
    "width": [-1, 0, 2**40, "4", None, [4], 4.5, True],
    "height": [-3, 0, 2**30, "x", {}, False],
    "format": ["bogus", ["gray8"], {"gray8": 1}, 8, None, ""],
    "model": ["nope", 5, ["fake"], {"a": 1}],
    "decoder": ["no-such", 1, ["mode"]],
    "temperature": [-1, 0, "hot", [0.5], 1e300],
    "mrf_weight": [-1, "x", 1e9],
    "mrf_iters": [-1, 10**6, "5", 2.5],
    "tile": [-1, 8, "big", 2**20],  # 0 is valid: never tile (ColorizeOptions.tile)
    "hint_size": [0, 999, "x"],
    "result_format": ["rgb32", ["rgb8"], 3],
    "id": [5, ["a"], {"a": 1}, "x" * 200],
    "hints": [
        "x",
        {"row": 1},
        [1, 2],
        [{}],
        [{"row": -1, "col": 0, "r": 0, "g": 0, "b": 0}],
        [{"row": 0, "col": 0, "r": 300, "g": 0, "b": 0}],
        [{"row": 0, "col": 0, "r": 1, "g": 2, "b": "3"}],
        [{"row": 0, "col": 0, "r": 1, "g": 2, "b": 3}] * (P.DEFAULT_MAX_HINTS + 1),
    ],
}


def _malformed_request(rng):
    """A colorize header with 1-3 wrong fields, the rest right, and a fitting image."""
    header = {"type": "colorize", "id": f"q{rng.getrandbits(32)}", "width": 4, "height": 4,
              "format": "gray8"}  # fmt: skip
    for key in rng.sample(sorted(BAD_FIELDS), rng.randint(1, 3)):
        header[key] = rng.choice(BAD_FIELDS[key])
    return header


def _kept_open_frames(rng):
    """A malformed request that the server answers and keeps the connection for."""
    kind = rng.random()
    if kind < 0.8:
        header = _malformed_request(rng)
        return P.encode_frame(header, [("image", bytes(16))]), header.get("id")
    if kind < 0.9:
        rid = f"t{rng.getrandbits(16)}"
        return P.encode_frame({"type": rng.choice(["frobnicate", "", "HELLO", "auth"]),
                               "id": rid}), rid  # fmt: skip
    # sections that do not fit the request (the header itself is well-formed)
    rid = f"s{rng.getrandbits(16)}"
    sections = rng.choice(
        [
            [("image", bytes(15))],
            [("hint_layer", bytes(64))],
            [("image", bytes(16)), ("reference", bytes(3), {"format": "x"})],
        ]
    )
    header = {"type": "colorize", "id": rid, "width": 4, "height": 4, "format": "gray8"}
    return P.encode_frame(header, sections), rid


def _closing_frames(rng, authenticated):
    """Bytes that end the connection (bad framing, or a refused handshake)."""
    kind = rng.randrange(10)
    auth = P.encode_frame({"type": "auth", "client_nonce": P.new_nonce()})
    if kind == 0:
        return rng.randbytes(rng.randint(1, 200))
    if kind == 1:
        data = bytearray(auth)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        return bytes(data)
    if kind == 2:
        return auth[: rng.randrange(len(auth))]
    if kind == 3:
        return _raw_frame(b'{"type": "x", "a": ' + b"[" * rng.randint(33, 5000) + b"}")
    if kind == 4:
        return _raw_frame(b'{"type": "auth", "client_nonce": "\\ud800"}')
    if kind == 5:  # a declared size far beyond what arrives (memory bomb)
        size = rng.choice([700 * 2**20, 2**40]) if authenticated else 10**9
        header = json.dumps({"type": "colorize", "payload_bytes": size}).encode()
        return _raw_frame(header, rng.randbytes(rng.randint(0, 5000)))
    if kind == 6:
        return _raw_frame(b"{}" + rng.randbytes(10), version=rng.choice([0, 1, 3, 65535]))
    if kind == 7:
        return P.PREFIX.pack(P.MAGIC, P.PROTOCOL_VERSION, rng.choice([2**31, 2**32 - 1]))
    if kind == 8:
        return _raw_frame(json.dumps([1, {"type": "auth"}]).encode())
    header = json.dumps({"type": "colorize", "payload_bytes": 4,
                         "sections": {"image": {"offset": 2, "size": 9}}}).encode()  # fmt: skip
    return _raw_frame(header, b"abcd")


def _read_error(sock):
    """The error frame the server answers with before it closes (None: closed silently)."""
    try:
        frame = P.read_frame(sock, max_frame_bytes=1 << 20)
    except (P.ProtocolError, OSError):
        return None
    return frame.header


def _rss_bytes():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class _Tracebacks(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(self.format(record))


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(random.Random, "randbytes"), reason="Python >= 3.9")
def test_ten_thousand_malformed_frames(cfgdir):
    """10,000+ malformed frames: 2,000 that end their connection (half before, half after
    the handshake) and 8,400 answered on long-lived authenticated connections."""
    server, backend = make_server(cfgdir, read_timeout=1.0, auth_timeout=1.0)
    logger = logging.getLogger("tinct.bridge.server")
    level = logger.level
    tracebacks = _Tracebacks()
    logger.addHandler(tracebacks)
    logger.setLevel(logging.ERROR)  # 10,000 warnings would only fill the capture
    codes, counts, failures = Counter(), Counter(), []
    lock = threading.Lock()

    def record(kind, code):
        with lock:
            counts[kind] += 1
            codes[code] += 1

    def closing(seed, n, authenticated):
        rng = random.Random(seed)
        for _ in range(n):
            data = _closing_frames(rng, authenticated)
            try:
                sock = authed(server) if authenticated else raw(server)
            except (P.BridgeError, P.ProtocolError, OSError) as exc:
                failures.append(f"cannot connect: {exc!r}")
                return
            with sock:
                sock.settimeout(3)
                try:
                    sock.sendall(data)
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                reply = _read_error(sock)
            if reply and reply.get("type") == "auth_challenge":
                record("valid by chance", "auth_challenge")  # a mutation left it well-formed
                continue
            code = reply.get("code") if reply else "closed"
            if reply and (reply.get("type") != "error" or code not in MALFORMED_CODES):
                failures.append(f"{data[:40]!r} -> {reply}")
            record("closing-after-auth" if authenticated else "closing-before-auth", code)

    def kept_open(seed, n):
        rng = random.Random(seed)
        sock = authed(server)
        with sock:
            sock.settimeout(5)
            for _ in range(n):
                data, rid = _kept_open_frames(rng)
                sock.sendall(data)
                reply = P.read_frame(sock).header
                ok = reply.get("type") == "error" and reply.get("code") in MALFORMED_CODES
                if not ok or (rid is not None and reply.get("id") not in (rid, None)):
                    failures.append(f"{data[10:120]!r} -> {reply}")
                    return
                record("kept-open", reply["code"])

    def run(jobs):
        threads = [threading.Thread(target=f, args=a) for f, a in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)

    try:
        run([(kept_open, (1, 200)), (closing, (2, 50, False))])  # warm-up
        gc.collect()
        rss0 = _rss_bytes()
        t0 = time.monotonic()
        run(
            [(kept_open, (10 + k, 2100)) for k in range(4)]
            + [(closing, (20 + k, 500, False)) for k in range(2)]
            + [(closing, (30 + k, 500, True)) for k in range(2)]
        )
        elapsed = time.monotonic() - t0
        gc.collect()
        growth = _rss_bytes() - rss0
        with client_for(server) as client:  # still answering, correctly
            img = gray_image(6, 5, seed=3)
            res = client.colorize(6, 5, "gray8", img.tobytes())
            assert np.array_equal(np.frombuffer(res.pixels, np.uint8).reshape(5, 6, 3),
                                  _expected(img))  # fmt: skip
    finally:
        logger.removeHandler(tracebacks)
        logger.setLevel(level)
        server.shutdown()
    total = sum(counts.values()) - 250 - counts["valid by chance"]
    print(f"{total} malformed frames in {elapsed:.1f}s, RSS growth {growth / 2**20:.1f} MiB;",
          dict(counts), dict(codes))  # fmt: skip
    assert not failures, failures[:5]
    assert not tracebacks.records, tracebacks.records[:3]
    assert total >= 10_000
    assert "internal" not in codes
    assert growth < 100 * 2**20
    assert len(backend.calls) == 1  # only the final, valid request reached the backend
