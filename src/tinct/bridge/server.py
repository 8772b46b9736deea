"""The tinct bridge server: colorization over a local, authenticated TCP socket.

Hosts (the GIMP plug-in, scripts) send frames defined in :mod:`tinct.bridge.wire`
to a long-running process that holds the model. The server binds loopback only,
authenticates every connection both ways with a random token stored in a
user-only ``bridge.json`` (the token never crosses the wire), bounds what
strangers can hold (pending connections have their own budget, the oldest
gives way, deadlines per handshake and per frame), isolates connections from
each other (a thread each, errors never escape a connection) and runs one
colorization at a time on the shared engine while streaming progress frames.

This module is the server's life cycle: the loopback check, the refusal to
start a second server on a live bridge.json, binding, publishing bridge.json
(written by :mod:`tinct.bridge.config`), starting and stopping. Accepting
connections and the state they share, including who is admitted and the
running jobs, are :mod:`tinct.bridge.serving`; one connection's requests and
replies are :mod:`tinct.bridge.connection` and a running ``colorize`` job's
progress and cancels :mod:`tinct.bridge.running_job`; the ``colorize`` request's
decoding and the result's encoding are :mod:`tinct.bridge.request`; what runs
the engine is :mod:`tinct.bridge.backend`, and its models
:mod:`tinct.bridge.served_models`.

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
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinct.bridge import wire as P
from tinct.bridge.backend import Backend, EngineBackend
from tinct.bridge.config import (
    claim_bridge_config,
    live_server,
    remove_bridge_config,
    write_bridge_config,
)
from tinct.bridge.serving import Listener, ServingState

__all__ = [
    "BridgeServer",
    "ConfigUnwritable",
    "ServerAlreadyRunning",
    "is_loopback_host",
]

log = logging.getLogger("tinct.bridge.server")

#: Seconds :meth:`BridgeServer.shutdown` gives the open connections to send
#: ``shutting_down`` and close, all together, before it cuts them off.
FAREWELL_WAIT_S = 1.0


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


class ConfigUnwritable(OSError):
    """bridge.json cannot be written: clients would never find the server.

    An ``OSError`` (a caller that catches those still does), whose message names the
    file, not the address: the server was listening already, and stops again.

    Attributes:
        path: the bridge.json.
    """

    def __init__(self, path: Path, exc: OSError) -> None:
        self.path = path
        super().__init__(
            f"cannot write {path} ({exc.strerror or exc}), where clients find the server; "
            "give it another bridge.json (tinct serve --config FILE)"
        )


class BridgeServer(ServingState):
    """The bridge server.

    What its connections share (limits, admission, running jobs) is
    :class:`~tinct.bridge.serving.ServingState`.

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
        max_held_bytes: most payload bytes that all connections together may hold
            at once (uploading, queued or running; default: twice
            ``max_frame_bytes``); a large request beyond it is refused with ``busy``.
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
        ConfigUnwritable: ``config_path`` cannot be written (the socket is closed again).
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
        max_held_bytes: int | None = None,
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
        super().__init__(
            backend
            or EngineBackend(
                colorizer=colorizer, colorizer_factory=colorizer_factory, model=model, device=device
            ),
            token=token or secrets.token_urlsafe(32),
            max_frame_bytes=max_frame_bytes,
            max_held_bytes=2 * max_frame_bytes if max_held_bytes is None else max_held_bytes,
            max_pixels=max_pixels,
            max_hints=max_hints,
            max_mrf_iters=max_mrf_iters,
            read_timeout=read_timeout,
            min_transfer_rate=min_transfer_rate,
            auth_timeout=auth_timeout,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
            max_pending=max_pending,
            heartbeat=heartbeat,
        )
        if config_path is None or config_path is True:
            self.config_path: Path | None = Path(P.bridge_config_path())
        elif config_path is False:
            self.config_path = None
        else:
            self.config_path = Path(config_path)
        self.host = host
        self.stop_timeout = float(stop_timeout)
        self._thread: threading.Thread | None = None
        self._started = False
        with claim_bridge_config(self.config_path):  # one check-and-write at a time
            self._listen_and_publish(host, int(port), allow_remote)

    def _listen_and_publish(self, host: str, port: int, allow_remote: bool) -> None:
        """Check bridge.json for a live server, bind, check the address, write bridge.json."""
        if self.config_path is not None:
            running = live_server(self.config_path)
            if running is not None:
                raise ServerAlreadyRunning(self.config_path, running)
        self._tcp = Listener((host, port), self)
        bound = str(self._tcp.server_address[0])
        if not allow_remote and not is_loopback_host(bound):
            self._tcp.server_close()
            raise ValueError(
                f"refusing to listen on {host!r}: it bound {bound}, which is not loopback"
            )
        if self.config_path is not None:
            try:
                write_bridge_config(self.config_path, host, self.port, self.token)
            except OSError as exc:
                self._tcp.server_close()
                raise ConfigUnwritable(self.config_path, exc) from None
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
        every authenticated connection, idle, mid-frame or done with its job,
        sends ``shutting_down`` and closes (within ``FAREWELL_WAIT_S`` in all;
        what is left is cut off), the others are closed, and bridge.json is
        removed if it is still this server's. Idempotent; must not be called
        from the thread running :meth:`serve_forever`.

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
        for conn in conns:  # wake every read: an authenticated one says shutting_down
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RD if conn.authenticated else socket.SHUT_RDWR)
        until = time.monotonic() + FAREWELL_WAIT_S
        for conn in conns:
            if conn.thread is not None and conn.thread is not threading.current_thread():
                conn.thread.join(max(0.0, until - time.monotonic()))
        for conn in conns:  # what is still open (a reader too slow, say) is cut off
            if conn.thread is None or conn.thread.is_alive():
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

    close = shutdown

    def __enter__(self) -> BridgeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


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
