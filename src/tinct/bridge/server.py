"""The tinct bridge server: colorization over a local, authenticated TCP socket.

Hosts (the GIMP plug-in, scripts) send frames defined in :mod:`tinct.bridge.wire`
to a long-running process that holds the model. The server binds loopback only,
authenticates every connection both ways with a random token stored in a
user-only ``bridge.json`` (the token never crosses the wire), bounds what
strangers can hold (pending connections have their own budget, the oldest
gives way, deadlines per handshake and per frame), isolates connections from
each other (a thread each, errors never escape a connection) and runs one
colorization at a time on the shared engine while streaming progress frames.

This module is the server's life cycle: binding, bridge.json (written by
:mod:`tinct.bridge.config`), starting and stopping, and the state its
connections share, including who is admitted. One connection's requests and
replies are :mod:`tinct.bridge.connection`; the ``colorize`` request's decoding and the
result's encoding are :mod:`tinct.bridge.request`; what runs the engine is
:mod:`tinct.bridge.backend`.

The colorizer is injected, so the server can be tested with a fake and the
napari plugin can serve its already loaded model::

    handle = start_server_in_thread(colorizer, port=0)  # tinct.bridge.embedded
    ...  # GIMP now finds the server through bridge.json
    handle.stop()
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import socket
import socketserver
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinct.bridge import wire as P
from tinct.bridge.backend import (
    Backend,
    ColorizeJob,
    EngineBackend,
)
from tinct.bridge.config import live_server, remove_bridge_config, write_bridge_config
from tinct.bridge.connection import Connection, Handler
from tinct.bridge.request import parse_colorize

__all__ = [
    "BridgeServer",
    "ServerAlreadyRunning",
    "is_loopback_host",
]

log = logging.getLogger("tinct.bridge.server")


# --------------------------------------------------------------------------- the server


class ServerAlreadyRunning(RuntimeError):
    """bridge.json names a server that still runs: starting another would hide it.

    Attributes:
        path: the bridge.json.
        info: what the file says (``host``, ``port``, ``pid``, ...).
    """

    def __init__(self, path: Path, info: dict[str, Any]) -> None:
        self.path = path
        self.info = info
        where = f"{info.get('host') or P.DEFAULT_HOST}:{info.get('port')}"
        super().__init__(
            f"a tinct server (pid {info.get('pid')}) is already running on {where} and "
            f"clients find it through {path}; stop it first, or give this server another "
            "bridge.json (tinct serve --config FILE)"
        )


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = os.name != "nt"
    block_on_close = False
    request_queue_size = 128  # listen backlog: bursts of simultaneous clients

    def __init__(self, addr: tuple[str, int], bridge: BridgeServer) -> None:
        self.bridge = bridge
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = family
        super().__init__(addr, Handler, bind_and_activate=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("unhandled error on connection from %s", client_address)


class BridgeServer:
    """The bridge server.

    Args:
        backend: a :class:`Backend`; default: an :class:`EngineBackend` built from
            ``colorizer`` / ``colorizer_factory`` / ``model`` / ``device``.
        colorizer: a loaded colorizer (``.colorize(image, hints=..., ...)``).
        colorizer_factory: ``factory(model_name) -> colorizer``.
        model: default model name.
        device: engine device when the server builds the colorizer itself.
        host: address to bind (loopback unless ``allow_remote``).
        port: TCP port (0 = pick a free one).
        allow_remote: allow a ``host`` that is not loopback (every address it
            resolves to, and the one bound, must be loopback otherwise).
        token: auth token (default: a fresh ``secrets.token_urlsafe(32)``).
        config_path: where to write bridge.json; None = the user default,
            False = do not write one.
        max_frame_bytes: largest accepted payload.
        max_pixels: largest accepted image (width x height).
        max_hints: most hints per request (point hints plus hint-layer blobs).
        max_mrf_iters: most MRF sweeps per request.
        read_timeout: seconds from a frame's first byte to the end of its header;
            also the base of the payload deadline and the limit on each send.
        min_transfer_rate: bytes per second a payload must at least arrive at:
            its deadline is ``read_timeout + payload_bytes / min_transfer_rate``.
        auth_timeout: seconds from the accept to the end of the handshake.
        idle_timeout: seconds an idle authenticated connection is kept open.
        max_connections: concurrent authenticated connections; more are refused
            with ``busy``.
        max_pending: concurrent connections still authenticating; a new one
            beyond this drops the oldest pending one.
        heartbeat: seconds between progress frames while colorizing.
        stop_timeout: seconds :meth:`shutdown` waits for cancelled jobs to stop.

    Raises:
        ValueError: a non-loopback host without ``allow_remote``.
        ServerAlreadyRunning: ``config_path`` names a server that still runs.
        OSError: the address cannot be bound.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        colorizer: Any = None,
        colorizer_factory: Callable[[str], Any] | None = None,
        model: str | None = None,
        device: str = "auto",
        host: str = P.DEFAULT_HOST,
        port: int = 0,
        allow_remote: bool = False,
        token: str | None = None,
        config_path: str | os.PathLike[str] | bool | None = None,
        max_frame_bytes: int = P.DEFAULT_MAX_FRAME_BYTES,
        max_pixels: int = P.DEFAULT_MAX_PIXELS,
        max_hints: int = P.DEFAULT_MAX_HINTS,
        max_mrf_iters: int = P.DEFAULT_MAX_MRF_ITERS,
        read_timeout: float = 30.0,
        min_transfer_rate: float = 4 * 1024 * 1024,
        auth_timeout: float = 5.0,
        idle_timeout: float = 300.0,
        max_connections: int = 32,
        max_pending: int = 64,
        heartbeat: float = 1.0,
        stop_timeout: float = 5.0,
    ) -> None:
        if not allow_remote and not is_loopback_host(host):
            raise ValueError(
                f"refusing to listen on {host!r}: only loopback is allowed without allow_remote"
            )
        self.backend: Backend = backend or EngineBackend(
            colorizer=colorizer, colorizer_factory=colorizer_factory, model=model, device=device
        )
        self.token = token or secrets.token_urlsafe(32)
        self.max_frame_bytes = int(max_frame_bytes)
        self.max_pixels = int(max_pixels)
        self.max_hints = int(max_hints)
        self.max_mrf_iters = int(max_mrf_iters)
        self.read_timeout = float(read_timeout)
        self.min_transfer_rate = float(min_transfer_rate)
        self.auth_timeout = float(auth_timeout)
        self.idle_timeout = float(idle_timeout)
        self.max_connections = int(max_connections)
        self.max_pending = max(1, int(max_pending))
        self.heartbeat = float(heartbeat)
        if config_path is None or config_path is True:
            self.config_path: Path | None = Path(P.bridge_config_path())
        elif config_path is False:
            self.config_path = None
        else:
            self.config_path = Path(config_path)
        if self.config_path is not None:
            running = live_server(self.config_path)
            if running is not None:
                raise ServerAlreadyRunning(self.config_path, running)
        self._tcp = _TCPServer((host, int(port)), self)
        bound = str(self._tcp.server_address[0])
        if not allow_remote and not is_loopback_host(bound):
            self._tcp.server_close()
            raise ValueError(
                f"refusing to listen on {host!r}: it bound {bound}, which is not loopback"
            )
        self.host = host
        self._engine_lock = threading.Lock()
        self._conn_lock = threading.Lock()
        self._conns: set[Connection] = set()  # authenticated
        self._pending: OrderedDict[Connection, None] = OrderedDict()  # oldest first
        self._jobs: dict[tuple[int, str], ColorizeJob] = {}  # (id(connection), request id)
        self._workers: dict[threading.Thread, ColorizeJob] = {}  # the threads running jobs
        self.stop_timeout = float(stop_timeout)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self.stats = {"connections": 0, "requests": 0, "errors": 0}
        if self.config_path is not None:
            write_bridge_config(self.config_path, host, self.port, self.token)
        log.info("tinct bridge listening on %s:%d", host, self.port)

    # -- lifecycle
    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._tcp.server_address[1])

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` is called (blocks)."""
        self._started = True
        self._tcp.serve_forever(poll_interval=0.2)

    def start(self) -> BridgeServer:
        """Serve in a daemon thread; returns self."""
        self._started = True
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"tinct-bridge-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def shutdown(self) -> bool:
        """Stop: cancel the jobs and wait for them, drop the connections, remove bridge.json.

        Stops accepting, cancels every running or queued job and waits up to
        ``stop_timeout`` seconds for their threads to end (the engine checks the
        cancel flag often, so this takes well under a second), while the jobs'
        connections answer ``cancelled`` ("the server is shutting down"). Then
        it closes every connection and removes bridge.json if it is still this
        server's. Idempotent; must not be called from the thread running
        :meth:`serve_forever`.

        Returns:
            Whether every job has stopped (False: one is still inside the engine
            after ``stop_timeout``).
        """
        if self._stopping.is_set():
            return not self._running_workers()
        self._stopping.set()
        if self._started:  # socketserver's shutdown() waits for serve_forever()
            self._tcp.shutdown()
        self._tcp.server_close()
        with self._conn_lock:
            for job in [*self._jobs.values(), *self._workers.values()]:
                job.cancel.set()
            busy = [c for c in self._conns if any(k[0] == id(c) for k in self._jobs)]
        deadline = time.monotonic() + self.stop_timeout
        for worker in self._running_workers():
            worker.join(max(0.0, deadline - time.monotonic()))
        for conn in busy:  # let them send "cancelled" and close
            if conn.thread is not None and conn.thread is not threading.current_thread():
                conn.thread.join(max(0.0, min(1.0, deadline - time.monotonic())))
        with self._conn_lock:
            conns = [*self._conns, *self._pending]
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.config_path is not None:
            remove_bridge_config(self.config_path, self.token)
        stuck = self._running_workers()
        if stuck:
            log.warning(
                "tinct bridge on port %d stopped; %d job(s) did not stop within %gs",
                self.port,
                len(stuck),
                self.stop_timeout,
            )
        else:
            log.info("tinct bridge on port %d stopped", self.port)
        return not stuck

    def _running_workers(self) -> list[threading.Thread]:
        with self._conn_lock:
            return [w for w in self._workers if w.is_alive()]

    close = shutdown

    def __enter__(self) -> BridgeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- requests
    def hello_reply(self) -> dict[str, Any]:
        """The header of the reply to ``hello``."""
        from tinct import __version__

        return {
            "type": "hello",
            "server": "tinct",
            "server_version": __version__,
            "protocol_version": P.PROTOCOL_VERSION,
            "default_model": self.backend.default_model,
            "models": self.backend.models(),
            "pixel_formats": sorted(P.PIXEL_FORMATS),
            "result_formats": list(P.RESULT_FORMATS),
            "limits": {
                "max_frame_bytes": self.max_frame_bytes,
                "max_header_bytes": P.DEFAULT_MAX_HEADER_BYTES,
                "max_pixels": self.max_pixels,
                "max_hints": self.max_hints,
                "max_mrf_iters": self.max_mrf_iters,
                "read_timeout_s": self.read_timeout,
                "min_transfer_rate": self.min_transfer_rate,
                "auth_timeout_s": self.auth_timeout,
                "idle_timeout_s": self.idle_timeout,
            },
        }

    def parse_colorize(self, frame: P.Frame) -> ColorizeJob:
        """Validate a ``colorize`` frame and decode it into a :class:`ColorizeJob`.

        See :func:`tinct.bridge.request.parse_colorize`; this server's ``max_pixels``,
        ``max_hints``, ``max_mrf_iters`` and backend's models are the limits.

        Raises:
            RequestError: with code ``bad_request``, ``too_large`` or ``unknown_model``.
        """
        return parse_colorize(
            frame,
            max_pixels=self.max_pixels,
            backend=self.backend,
            max_hints=self.max_hints,
            max_mrf_iters=self.max_mrf_iters,
        )

    # -- state shared by the connections (tinct.bridge.connection), which also hold _engine_lock
    #    while they colorize (one colorization at a time) and stop when _stopping is set
    def _admit(self, conn: Connection) -> bool:
        """Count a new connection and track it as pending (not yet authenticated).

        Refused (False) when ``max_connections`` authenticated ones are open.
        When ``max_pending`` connections are already authenticating, one of them
        is evicted: the oldest that has not sent its ``auth`` frame yet, else the
        oldest. Strangers that stall cannot hold every slot, and a token holder,
        whose handshake takes two round trips, is never the oldest for long.
        """
        evicted = None
        with self._conn_lock:
            self.stats["connections"] += 1
            if len(self._conns) >= self.max_connections:
                return False
            if len(self._pending) >= self.max_pending:
                # the oldest that has not even sent its auth frame, else the oldest
                evicted = next((c for c in self._pending if not c.challenged), None)
                evicted = evicted or next(iter(self._pending))
                del self._pending[evicted]
                self.stats["evicted"] = self.stats.get("evicted", 0) + 1
            self._pending[conn] = None
        if evicted is not None:
            log.info("dropping pending connection %s for a newer one", evicted.peer)
            evicted.evict()
        return True

    def _promote(self, conn: Connection) -> bool:
        """Move an authenticated connection out of the pending budget (False: full)."""
        with self._conn_lock:
            self._pending.pop(conn, None)
            if len(self._conns) >= self.max_connections:
                return False
            self._conns.add(conn)
        return True

    def _release(self, conn: Connection) -> None:
        """Forget a connection that has ended."""
        with self._conn_lock:
            self._conns.discard(conn)
            self._pending.pop(conn, None)

    def _add_job(self, conn: Connection, job: ColorizeJob, worker: threading.Thread) -> None:
        """Register a running job (with its worker thread) so that any connection can cancel it.

        Jobs are kept per connection: two connections may use the same request id.
        """
        with self._conn_lock:
            self._jobs[(id(conn), job.request_id)] = job
            self._workers[worker] = job

    def _drop_job(self, conn: Connection, job: ColorizeJob) -> None:
        """Forget a job whose connection has stopped waiting for it.

        Its worker stays known until it ends: :meth:`shutdown` waits for it.
        """
        with self._conn_lock:
            if self._jobs.get((id(conn), job.request_id)) is job:
                del self._jobs[(id(conn), job.request_id)]
            for worker in [w for w in self._workers if w.ident and not w.is_alive()]:
                del self._workers[worker]

    def _cancel_job(self, request_id: str) -> bool:
        """Cancel every running or queued job with this id, on any connection.

        Returns:
            Whether there was one.
        """
        with self._conn_lock:
            jobs = [job for (_, rid), job in self._jobs.items() if rid == request_id]
        for job in jobs:
            job.cancel.set()
        return bool(jobs)


def is_loopback_host(host: str) -> bool:
    """Whether every address ``host`` stands for is a loopback address.

    An IP address is checked as it is; a name is resolved and every address it
    resolves to must be loopback (``127.attacker.example`` is a name, not an
    address). Names that do not resolve, and text with spaces, are not loopback.
    """
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if not host or host != host.strip():
        return False
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]).split("%")[0] for info in infos}
    try:
        return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)
    except ValueError:
        return False


# --------------------------------------------------------------------------- in-process API
