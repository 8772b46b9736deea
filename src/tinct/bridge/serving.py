"""Accepting and serving: the listener and what a server's connections share.

:class:`Listener` is the listening TCP socket; it hands every accepted socket to
a :class:`~tinct.bridge.connection.Connection` in a thread of its own.
:class:`ServingState` is what those connections share and ask of the server:
the limits and the token, the backend, the admission of new connections
(authenticated ones are capped by ``max_connections``; pending ones have a
budget of their own, and the oldest gives way), the registry of running jobs
that any connection can cancel, the engine lock (one colorization at a time,
first come first served: a :class:`FifoLock`), the stop flag, and the answers
that need the server (``hello``, the decoding of ``colorize``).
:class:`~tinct.bridge.server.BridgeServer` adds the life cycle on top: binding,
bridge.json, starting and stopping.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

from tinct.bridge import wire as P
from tinct.bridge.backend import Backend, ColorizeJob
from tinct.bridge.connection import Handler
from tinct.bridge.payload_budget import PayloadBudget
from tinct.bridge.request import parse_colorize

if TYPE_CHECKING:
    from tinct.bridge.connection import Connection

__all__ = [
    "FifoLock",
    "Listener",
    "ServingState",
]

log = logging.getLogger("tinct.bridge.server")


class Listener(socketserver.ThreadingTCPServer):
    """The listening socket: every accepted connection is served in a daemon thread.

    Args:
        addr: ``(host, port)`` to bind (an IPv6 host when it contains ``:``).
        bridge: the server whose connections these are (``Handler`` finds it here).
    """

    daemon_threads = True
    allow_reuse_address = os.name != "nt"
    block_on_close = False
    request_queue_size = 128  # listen backlog: bursts of simultaneous clients

    def __init__(self, addr: tuple[str, int], bridge: ServingState) -> None:
        self.bridge = bridge
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = family
        super().__init__(addr, Handler, bind_and_activate=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log an error that escaped a connection (they are caught there)."""
        log.exception("unhandled error on connection from %s", client_address)


class FifoLock:
    """A lock granted in the order it was asked for (a ``threading.Lock`` is not).

    ``acquire(blocking=True, timeout=-1)``, ``release()`` and ``locked()`` work as
    a ``threading.Lock``'s. A waiter that must look at something else meanwhile (a
    cancel flag) takes a place in line with :meth:`join` and waits on it a little
    at a time: its place is kept between the waits, so a poller is served in turn
    too. A released lock goes to the first in line; newcomers wait behind.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._line: deque[FifoPlace] = deque()  # the waiters, first come first
        self._held = False

    def join(self) -> FifoPlace:
        """Take a place at the end of the line (see :class:`FifoPlace`)."""
        place = FifoPlace(self)
        with self._cond:
            self._line.append(place)
        return place

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Wait for the lock in turn, at most ``timeout`` seconds (-1: no limit).

        Returns:
            Whether the lock is now held; if not, the caller has left the line.
        """
        place = self.join()
        try:
            got = place.wait((None if timeout < 0 else timeout) if blocking else 0)
        finally:
            place.leave()  # no-op once granted
        return got

    def release(self) -> None:
        """Hand the lock to the first in line.

        Raises:
            RuntimeError: the lock is not held.
        """
        with self._cond:
            if not self._held:
                raise RuntimeError("release of an unlocked FifoLock")
            self._held = False
            self._cond.notify_all()

    def locked(self) -> bool:
        """Whether the lock is held."""
        return self._held

    @property
    def waiting(self) -> int:
        """How many are in line for the lock."""
        with self._cond:
            return len(self._line)

    def __enter__(self) -> FifoLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class FifoPlace:
    """A place in the line of a :class:`FifoLock` (from :meth:`FifoLock.join`).

    Args:
        lock: the lock whose line it is in.

    Attributes:
        granted: the lock is this place's (the holder releases it with
            :meth:`FifoLock.release`).
    """

    def __init__(self, lock: FifoLock) -> None:
        self._lock = lock
        self.granted = False

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: no limit) for the lock; the place stays.

        Returns:
            Whether the lock is now this place's.
        """
        lock = self._lock
        with lock._cond:
            if not self.granted and lock._cond.wait_for(self._first, timeout):
                lock._line.popleft()
                lock._held = self.granted = True
            return self.granted

    def leave(self) -> None:
        """Give up the place if the lock has not been granted to it (else nothing)."""
        lock = self._lock
        with lock._cond:
            if not self.granted and self in lock._line:
                lock._line.remove(self)
                lock._cond.notify_all()  # the next one may be first now

    def _first(self) -> bool:
        line = self._lock._line
        return not self._lock._held and bool(line) and line[0] is self


class ServingState:
    """The state a server's connections share, and the answers that need it.

    The arguments are those of :class:`~tinct.bridge.server.BridgeServer` of the
    same names.

    Args:
        backend: what runs the jobs.
        token: the auth token.
        max_frame_bytes: largest accepted payload.
        max_held_bytes: most payload bytes held by all connections at once (at
            least ``max_frame_bytes``).
        max_pixels: largest accepted image (width x height).
        max_hints: most hints per request.
        max_mrf_iters: most MRF sweeps per request.
        read_timeout: seconds from a frame's first byte to the end of its header.
        min_transfer_rate: bytes per second a payload must at least arrive at.
        auth_timeout: seconds from the accept to the end of the handshake.
        idle_timeout: seconds an idle authenticated connection is kept open.
        max_connections: concurrent authenticated connections.
        max_pending: concurrent connections still authenticating.
        heartbeat: seconds between progress frames while colorizing.

    Attributes:
        payload_budget: the :class:`~tinct.bridge.payload_budget.PayloadBudget` of
            ``max_held_bytes``.
        stats: counts of ``connections``, ``requests``, ``errors`` (and
            ``evicted``, once a pending connection has been dropped).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        token: str,
        max_frame_bytes: int,
        max_held_bytes: int,
        max_pixels: int,
        max_hints: int,
        max_mrf_iters: int,
        read_timeout: float,
        min_transfer_rate: float,
        auth_timeout: float,
        idle_timeout: float,
        max_connections: int,
        max_pending: int,
        heartbeat: float,
    ) -> None:
        self.backend: Backend = backend
        self.token = token
        self.max_frame_bytes = int(max_frame_bytes)
        self.payload_budget = PayloadBudget(max(int(max_held_bytes), self.max_frame_bytes))
        self.max_pixels = int(max_pixels)
        self.max_hints = int(max_hints)
        # a header may hold the hints: the values they take, and room for the rest
        self.max_header_values = max(P.DEFAULT_MAX_HEADER_VALUES, 16 * self.max_hints + 4096)
        self.max_mrf_iters = int(max_mrf_iters)
        self.read_timeout = float(read_timeout)
        self.min_transfer_rate = float(min_transfer_rate)
        self.auth_timeout = float(auth_timeout)
        self.idle_timeout = float(idle_timeout)
        self.max_connections = int(max_connections)
        self.max_pending = max(1, int(max_pending))
        self.heartbeat = float(heartbeat)
        # the connections (tinct.bridge.connection) hold _engine_lock while they colorize
        # (one colorization at a time, in the order they asked) and stop when _stopping is set
        self._engine_lock = FifoLock()
        self._conn_lock = threading.Lock()
        self._conns: set[Connection] = set()  # authenticated
        self._pending: OrderedDict[Connection, None] = OrderedDict()  # oldest first
        self._jobs: dict[tuple[int, str], ColorizeJob] = {}  # (id(connection), request id)
        self._workers: dict[threading.Thread, ColorizeJob] = {}  # the threads running jobs
        self._stopping = threading.Event()
        self.stats = {"connections": 0, "requests": 0, "errors": 0}

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
                "max_held_bytes": self.payload_budget.limit,
                "max_header_bytes": P.DEFAULT_MAX_HEADER_BYTES,
                "max_header_values": self.max_header_values,
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

    # -- admission
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

    # -- running jobs
    def _add_job(self, conn: Connection, job: ColorizeJob, worker: threading.Thread) -> None:
        """Register a running job (with its worker thread) so that any connection can cancel it.

        Jobs are kept per connection: two connections may use the same request id.
        """
        with self._conn_lock:
            self._jobs[(id(conn), job.request_id)] = job
            self._workers[worker] = job

    def _drop_job(self, conn: Connection, job: ColorizeJob) -> None:
        """Forget a job whose connection has stopped waiting for it.

        Its worker stays known until it ends: the server's shutdown waits for it.
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

    def _running_workers(self) -> list[threading.Thread]:
        """The job threads still running (:meth:`_drop_job` forgets them only once ended)."""
        with self._conn_lock:
            return [w for w in self._workers if w.is_alive()]
