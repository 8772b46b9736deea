"""One client connection of the bridge server: its requests, replies and errors.

The :class:`~tinct.server.BridgeServer` accepts connections and owns what they
share (limits, token, backend, the set of open connections, the running jobs,
the engine lock); a :class:`Connection` serves one socket in its own thread.
It reads frames (:mod:`tinct.protocol`) until the peer closes, idles out or
misbehaves: it authenticates each request, answers ``hello`` and ``cancel``,
runs ``colorize`` on the backend in a worker thread while it streams progress
frames and watches for a cancel, and turns every refusal or failure into an
``error`` frame. Nothing that goes wrong escapes the connection.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import socketserver
import threading
import time
from typing import TYPE_CHECKING, Any

from tinct import protocol as P
from tinct.backend import ColorizeJob, RequestError
from tinct.request import encode_result

if TYPE_CHECKING:
    from tinct.server import BridgeServer

__all__ = ["Connection", "Handler"]

log = logging.getLogger("tinct.server")


class Handler(socketserver.BaseRequestHandler):
    """socketserver's hook: serve an accepted socket as a :class:`Connection`."""

    def handle(self) -> None:
        """Serve the connection until it ends (runs in the connection's thread)."""
        bridge = self.server.bridge  # type: ignore[attr-defined]
        Connection(bridge, self.request, self.client_address).serve()


class Connection:
    """One client's conversation with the bridge server.

    Args:
        server: the server that accepted the socket.
        sock: the connected socket.
        addr: the peer's address.
    """

    def __init__(self, server: BridgeServer, sock: socket.socket, addr: Any) -> None:
        self.server = server
        self.sock = sock
        self.peer = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)

    def serve(self) -> None:
        """Answer requests until the connection ends, then close it gracefully."""
        server, sock, peer = self.server, self.sock, self.peer
        admitted = server._admit(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not admitted:
                log.warning("refusing %s: %d connections open", peer, server.max_connections)
                self._send_error(P.E_BUSY, "too many connections")
                return
            log.debug("connection from %s", peer)
            while not server._stopping.is_set() and self._serve_one():
                pass
        except Exception:  # isolation: nothing escapes one connection
            server.stats["errors"] += 1
            log.exception("connection %s failed", peer)
        finally:
            server._release(sock)
            _graceful_close(sock)

    def _serve_one(self) -> bool:
        """Read and answer one request; returns False when the connection ends."""
        server, sock, peer = self.server, self.sock, self.peer
        readable, _, _ = select.select([sock], [], [], server.idle_timeout)
        if not readable:
            log.info("closing idle connection %s", peer)
            return False
        sock.settimeout(server.read_timeout)
        try:
            header = P.read_header(sock, max_frame_bytes=server.max_frame_bytes)
            if not server._authorized(header):
                log.warning("refused %s: bad token", peer)
                self._send_error(P.E_UNAUTHORIZED, "missing or wrong token")
                return False
            payload = P.read_payload(sock, header)
        except P.ConnectionClosed as exc:
            if exc.mid_frame:
                log.warning("%s closed the connection mid-frame", peer)
            return False
        except P.ProtocolError as exc:
            server.stats["errors"] += 1
            log.warning("bad frame from %s: %s", peer, exc.message)
            self._send_error(exc.code, exc.message)
            return False
        except TimeoutError:
            server.stats["errors"] += 1
            log.warning("read timeout (%gs) from %s", server.read_timeout, peer)
            self._send_error(P.E_TIMEOUT, f"frame not completed within {server.read_timeout}s")
            return False
        except OSError as exc:
            log.info("connection %s lost: %s", peer, exc)
            return False
        server.stats["requests"] += 1
        frame = P.Frame(header, payload)
        rid = header.get("id")
        try:
            return self._dispatch(frame)
        except RequestError as exc:
            server.stats["errors"] += 1
            log.info("request from %s refused: %s: %s", peer, exc.code, exc.message)
            return self._send_error(exc.code, exc.message, rid)
        except OSError as exc:
            log.info("connection %s lost while replying: %s", peer, exc)
            return False
        except Exception as exc:
            server.stats["errors"] += 1
            log.exception("request %s from %s failed", header.get("type"), peer)
            return self._send_error(P.E_INTERNAL, f"{type(exc).__name__}: {exc}", rid)

    def _send_error(self, code: str, message: str, request_id: Any = None) -> bool:
        try:
            self.sock.settimeout(self.server.read_timeout)
            P.send_frame(self.sock, P.error_header(code, message, request_id))
            return True
        except OSError:
            return False

    def _dispatch(self, frame: P.Frame) -> bool:
        kind = frame.type
        if kind == "hello":
            P.send_frame(self.sock, self.server.hello_reply())
            return True
        if kind == "models":  # the model list with each model's weight status
            backend = self.server.backend
            reply = {"type": "models", "default_model": backend.default_model}
            P.send_frame(self.sock, {**reply, "models": backend.models()})
            return True
        if kind == "colorize":
            return self._colorize(frame)
        if kind == "cancel":
            rid = frame.header.get("request_id")
            found = self.server._cancel_job(rid)
            P.send_frame(self.sock, {"type": "cancel_ack", "request_id": rid, "found": found})
            return True
        raise RequestError(P.E_UNKNOWN_TYPE, f"unknown request type {kind!r}")

    def _colorize(self, frame: P.Frame) -> bool:
        """Run one colorize request; progress frames go out while it waits for the engine."""
        server, sock, peer = self.server, self.sock, self.peer
        job = server.parse_colorize(frame)
        t0 = time.monotonic()
        server._add_job(job)
        state: dict[str, Any] = {"progress": (0.0, "queued"), "sent": None}
        done = threading.Event()

        def progress(fraction: float, message: str = "") -> None:
            state["progress"] = (float(fraction), str(message))

        def work() -> None:
            try:
                while not server._engine_lock.acquire(timeout=0.1):
                    if job.cancel.is_set():
                        return
                try:
                    if job.cancel.is_set():
                        return
                    progress(0.02, "colorizing")
                    t1 = time.monotonic()
                    out = server.backend.colorize(job, progress)
                    state["engine_s"] = time.monotonic() - t1
                    progress(0.97, "encoding result")
                    state["result"] = encode_result(job, out)
                finally:
                    server._engine_lock.release()
            except BaseException as exc:
                state["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=work, name=f"tinct-job-{job.request_id[:8]}", daemon=True)
        try:
            worker.start()
            last_send = 0.0
            while not done.wait(0.05):
                now = time.monotonic()
                if state["progress"] != state["sent"] or now - last_send >= server.heartbeat:
                    fraction, message = state["progress"]
                    P.send_frame(
                        sock,
                        {
                            "type": "progress",
                            "id": job.request_id,
                            "fraction": fraction,
                            "message": message,
                        },
                    )
                    state["sent"] = state["progress"]
                    last_send = now
                readable, _, _ = select.select([sock], [], [], 0)
                if readable and not self._read_during_job(job):
                    return False
                if job.cancel.is_set():
                    log.info("request %s from %s cancelled", job.request_id, peer)
                    return self._send_error(P.E_CANCELLED, "cancelled", job.request_id)
        finally:
            if not done.is_set():
                job.cancel.set()
            server._drop_job(job.request_id)
        if job.cancel.is_set():
            return self._send_error(P.E_CANCELLED, "cancelled", job.request_id)
        if "error" in state:
            raise state["error"]
        pixels = state["result"]
        header = {
            "type": "result",
            "id": job.request_id,
            "width": job.image.shape[1],
            "height": job.image.shape[0],
            "format": job.result_format,
            "engine_s": round(state.get("engine_s", 0.0), 4),
            "elapsed_s": round(time.monotonic() - t0, 4),
        }
        P.send_frame(sock, header, [("image", pixels)])
        log.info(
            "colorized %dx%d for %s in %.2fs",
            job.image.shape[1],
            job.image.shape[0],
            peer,
            time.monotonic() - t0,
        )
        return True

    def _read_during_job(self, job: ColorizeJob) -> bool:
        """Handle a frame that arrives while a job runs (only ``cancel`` is allowed)."""
        sock = self.sock
        try:
            sock.settimeout(self.server.read_timeout)
            header = P.read_header(sock, max_frame_bytes=P.DEFAULT_MAX_HEADER_BYTES)
            if not self.server._authorized(header):
                job.cancel.set()
                self._send_error(P.E_UNAUTHORIZED, "missing or wrong token")
                return False
            P.read_payload(sock, header)
        except (P.ProtocolError, OSError) as exc:
            log.info("%s went away during a job: %s", self.peer, exc)
            job.cancel.set()
            return False
        if header.get("type") == "cancel":
            job.cancel.set()
            return True
        self._send_error(P.E_BUSY, "only cancel is allowed while a request runs")
        return True


def _graceful_close(sock: socket.socket, linger: float = 0.25, limit: int = 1 << 20) -> None:
    """Close after letting the peer read our last frame.

    Closing a socket with unread input sends a TCP reset, which can destroy the
    error frame we just sent; so shut down our side and drain a little first.
    """
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(linger)
        deadline = time.monotonic() + linger
        drained = 0
        while drained < limit and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            drained += len(chunk)
    with contextlib.suppress(OSError):
        sock.close()
