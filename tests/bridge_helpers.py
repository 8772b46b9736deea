"""Shared by the bridge tests (test_server, test_serving, test_connection, test_running_job, ...):
a fake backend and shortcuts.

The fixtures ``cfgdir`` and ``served`` that go with them are in conftest.py.
"""

import contextlib
import json
import socket
import threading
import time

import numpy as np

from tinct.bridge import wire as P
from tinct.bridge.backend import ColorizeJob
from tinct.bridge.server import BridgeServer


class FakeBackend:
    """Tints the image (R = L, G = L/2, B = 255 - L) and records calls."""

    default_model = "fake"

    def __init__(self, delay=0.0, steps=0):
        self.calls = []
        self.delay = delay
        self.steps = steps
        self.active = 0
        self.max_active = 0
        self.spans = []  # (start, end) time.monotonic() of every call
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
        start = time.monotonic()
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
                self.spans.append((start, time.monotonic()))


def make_server(cfgdir, backend=None, **kw):
    backend = backend or FakeBackend()
    kw.setdefault("read_timeout", 5.0)
    server = BridgeServer(backend, port=0, **kw).start()
    return server, backend


def client_for(server, **kw):
    kw.setdefault("timeout", 10.0)
    return P.BridgeClient(port=server.port, token=server.token, **kw)


def raw(server):
    """A plain TCP connection to the server (not authenticated)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return sock


def authed(server):
    """A TCP connection that has done the handshake (ready for request frames)."""
    sock = raw(server)
    P.client_handshake(sock, server.token, time.monotonic() + 5)
    return sock


def raw_frame(header, payload=b"", version=P.PROTOCOL_VERSION):
    """Bytes of a frame whose header is sent exactly as given (no payload_bytes filled in)."""
    data = json.dumps(header).encode()
    return P.PREFIX.pack(P.MAGIC, version, len(data)) + data + payload


def request(sock, header, sections=None):
    """Send one request frame and return the first reply frame."""
    P.send_frame(sock, header, sections)
    return P.read_frame(sock)


def start_job(server, sock, rid="job", side=2):
    """Send a ``side`` x ``side`` gray8 colorize request and wait for its first progress frame."""
    P.send_frame(sock, {"type": "colorize", "id": rid, "width": side, "height": side,
                        "format": "gray8"}, [("image", bytes(side * side))])  # fmt: skip
    assert P.read_frame(sock).header["type"] == "progress"


def gray_image(w, h, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


class Impostor:
    """Listens on a port and records every byte a client sends; ``answer(sock, data)``
    decides what to send back after the first bytes arrive."""

    def __init__(self, port=0, answer=None):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.received = bytearray()
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(0.5)
                answered = False
                while not self._stop.is_set():
                    try:
                        data = conn.recv(65536)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not data:
                        break
                    self.received += data
                    if self.answer and not answered:
                        answered = True
                        with contextlib.suppress(OSError):
                            self.answer(conn, bytes(self.received))

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
