"""How the bridge and the engine hold against hostile load: lock-out and cancel latency.

* **lock-out**: how long a token holder takes to connect, authenticate and get
  ``hello`` while N strangers hold connections open without authenticating
  (half trickle a byte every 0.3 s, half stay idle; each comes back as soon as
  it is dropped);
* **cancel**: the time from setting the cancel flag to the engine giving up,
  for 10,000 MRF sweeps and for 5,000 hints on a tiny image (untrained
  tinct-base on the CPU), and over the bridge, from the cancel to the engine
  being free.

    .venv/bin/python benchmarks/bench_hardening.py [--strangers 80] [--tries 20] [--json OUT]

The fuzz figures (10,000+ malformed frames, RSS growth) come from
``pytest tests/bridge/test_connection_load.py -s``.
"""

import argparse
import json
import os
import socket
import statistics
import tempfile
import threading
import time

import numpy as np

from tinct.bridge import wire as P
from tinct.bridge.server import BridgeServer


class Tint:
    default_model = "tint"

    def models(self):
        return [{"name": "tint"}]

    def colorize(self, job, progress):
        g = job.image if job.image.ndim == 2 else job.image[..., 0]
        return np.dstack([g, g // 2, 255 - g])


def _stranger(port, trickle, stop):
    frame = P.encode_frame({"type": "auth", "client_nonce": P.new_nonce()})
    while not stop.is_set():
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            time.sleep(0.05)
            continue
        with sock:
            i = 0
            while not stop.is_set():
                try:
                    if trickle:
                        sock.sendall(frame[i % 9 : i % 9 + 1])
                        i += 1
                    sock.settimeout(0.3)
                    if sock.recv(1024) == b"":
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
        time.sleep(0.02)


def lockout(strangers, tries):
    """Seconds for a token holder's connect + handshake + hello, with ``strangers`` around."""
    server = BridgeServer(Tint(), port=0, config_path=False).start()
    stop = threading.Event()
    threads = [
        threading.Thread(target=_stranger, args=(server.port, k % 2 == 0, stop), daemon=True)
        for k in range(strangers)
    ]
    for t in threads:
        t.start()
    times = []
    try:
        time.sleep(1.0 if strangers else 0.1)
        for _ in range(tries):
            t0 = time.perf_counter()
            with P.BridgeClient(port=server.port, token=server.token, timeout=30) as client:
                client.hello()
            times.append(time.perf_counter() - t0)
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        evicted = server.stats.get("evicted", 0)
        server.shutdown()
    return {"median_s": statistics.median(times), "max_s": max(times), "evicted": evicted}


def engine_cancel():
    """Cancel latency (s) of the engine for a long MRF and for many hints."""
    from tinct.cancel import Cancelled
    from tinct.engine.colorizer import Colorizer
    from tinct.engine.hints import Hint

    c = Colorizer("tinct-base", device="cpu", pretrained=False)
    img = np.random.default_rng(0).integers(0, 256, (256, 256), dtype=np.uint8)
    cases = {
        "mrf_10000_sweeps": (img, {"mrf_weight": 1.0, "mrf_iters": 10_000}),
        "hints_5000_on_32x32": (
            img[:32, :32],
            {"hints": [Hint(i % 32, i // 32 % 32, color=(255, 0, 0)) for i in range(5000)]},
        ),
    }
    out = {}
    for name, (image, kwargs) in cases.items():
        ev, stamp = threading.Event(), {}

        def fire(ev=ev, stamp=stamp):
            stamp["t"] = time.perf_counter()
            ev.set()

        timer = threading.Timer(1.0, fire)
        timer.start()
        try:
            c.colorize(image, cancel=ev, **kwargs)
            out[name] = None  # finished before the cancel
        except Cancelled:
            out[name] = time.perf_counter() - stamp["t"]
        timer.join()
    return out


def bridge_cancel():
    """From a cancel (progress callback returns False) to the engine being free, over the bridge."""
    from tinct.bridge.backend import EngineBackend
    from tinct.engine.colorizer import Colorizer

    spans = []

    class Timed(EngineBackend):
        def colorize(self, job, progress):
            try:
                return super().colorize(job, progress)
            finally:
                spans.append(time.perf_counter())

    colorizer = Colorizer("tinct-base", device="cpu", pretrained=False)
    server = BridgeServer(Timed(colorizer=colorizer), port=0, config_path=False, heartbeat=0.05)
    server.start()
    img = np.random.default_rng(0).integers(0, 256, (128, 128), dtype=np.uint8).tobytes()
    at = []

    def progress(f, m):
        if not spans and time.perf_counter() - t0 > 1.0:
            at.append(time.perf_counter())
            return False
        return True

    try:
        with P.BridgeClient(port=server.port, token=server.token, timeout=60) as client:
            t0 = time.perf_counter()
            try:
                client.colorize(128, 128, "gray8", img, mrf_weight=1.0,
                                mrf_iters=P.DEFAULT_MAX_MRF_ITERS, progress=progress)  # fmt: skip
            except P.BridgeError as exc:
                assert exc.code == "cancelled", exc
            deadline = time.perf_counter() + 10
            while not spans and time.perf_counter() < deadline:  # the engine winds down
                time.sleep(0.005)
    finally:
        server.shutdown()
    return spans[0] - at[0]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--strangers", type=int, default=80)
    ap.add_argument("--tries", type=int, default=20)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TINCT_CONFIG_DIR"] = tmp
        res = {
            "lockout_alone": lockout(0, args.tries),
            f"lockout_{args.strangers}_strangers": lockout(args.strangers, args.tries),
            "engine_cancel_s": engine_cancel(),
            "bridge_cancel_to_engine_free_s": bridge_cancel(),
        }
    for key, value in res.items():
        print(f"{key}: {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
