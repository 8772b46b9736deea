"""One client connection of the bridge server: its handshake, requests, replies and errors.

The :class:`~tinct.bridge.server.BridgeServer` accepts connections and owns what they
share (limits, token, backend, the open connections, the running jobs, the
engine lock); a :class:`Connection` serves one socket in its own thread.

A connection first authenticates (:meth:`Connection.authenticate`, see
docs/protocol.md): it proves that it holds the token, then checks the
client's proof, all within ``auth_timeout`` seconds of the accept. Until then
it is *pending*: pending connections have a budget of their own, and when it
is full the oldest pending one is dropped (one that has not even sent its
``auth`` frame first), so stalled or idle strangers can never keep a token
holder out. Afterwards it reads frames until the peer
closes, idles out or misbehaves; each frame's header must arrive within
``read_timeout`` of its first byte and its payload within a deadline that
grows with its size. It answers ``hello`` and ``cancel``, runs ``colorize``
on the backend in a worker thread while it streams progress frames and
watches for a cancel or a vanished client, and turns every refusal or failure
into an ``error`` frame. Nothing that goes wrong escapes the connection.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
import time
from typing import TYPE_CHECKING, Any

from tinct.bridge import wire as P
from tinct.bridge.backend import ColorizeJob, RequestError
from tinct.bridge.request import check_request_id, encode_result, show
from tinct.bridge.sockio import _graceful_close, _readable

if TYPE_CHECKING:
    from tinct.bridge.server import BridgeServer

__all__ = [
    "Connection",
    "Handler",
]

log = logging.getLogger("tinct.bridge.server")


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

    Attributes:
        accepted: ``time.monotonic()`` of the accept.
        challenged: the client's ``auth`` arrived and the challenge went out (a
            pending connection that has shown it speaks the protocol).
        authenticated: the handshake has succeeded.
    """

    def __init__(self, server: BridgeServer, sock: socket.socket, addr: Any) -> None:
        self.server = server
        self.sock = sock
        self.peer = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
        self.accepted = time.monotonic()
        self.challenged = False
        self.authenticated = False
        self._evicted = False
        self._partial: _PartialFrame | None = None  # a frame begun while a job ran
        self.thread: threading.Thread | None = None

    def serve(self) -> None:
        """Authenticate, answer requests until the connection ends, then close it gracefully."""
        server, sock, peer = self.server, self.sock, self.peer
        self.thread = threading.current_thread()
        admitted = server._admit(self)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(server.read_timeout)  # bounds every send as well
            if not admitted:
                log.warning("refusing %s: %d connections open", peer, server.max_connections)
                self._send_error(P.E_BUSY, "too many connections")
                return
            if not self.authenticate():
                return
            if not server._promote(self):
                log.warning("refusing %s: %d connections open", peer, server.max_connections)
                self._send_error(P.E_BUSY, "too many connections")
                return
            log.debug("connection from %s authenticated", peer)
            while not server._stopping.is_set() and self._serve_one():
                pass
        except Exception:  # isolation: nothing escapes one connection
            server.stats["errors"] += 1
            log.exception("connection %s failed", peer)
        finally:
            server._release(self)
            _graceful_close(sock)

    def evict(self) -> None:
        """Drop this pending connection (its thread sends ``busy`` and closes)."""
        self._evicted = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RD)

    # ------------------------------------------------------------------ handshake

    def authenticate(self) -> bool:
        """Run the server's side of the mutual authentication; False ends the connection."""
        server = self.server
        deadline = self.accepted + server.auth_timeout
        try:
            frame = self._read_auth_frame(deadline)
            client_nonce = frame.header.get("client_nonce")
            if frame.type != "auth":
                return self._refuse(
                    f"authenticate first: send an 'auth' frame, not {frame.type!r} "
                    f"(protocol version {P.PROTOCOL_VERSION})"
                )
            if not P.is_nonce(client_nonce):
                return self._refuse('"client_nonce" must be 64 lowercase hex digits')
            server_nonce = P.new_nonce()
            proof = P.auth_proof(server.token, "server", client_nonce, server_nonce)
            P.send_frame(
                self.sock,
                {
                    "type": "auth_challenge",
                    "server_nonce": server_nonce,
                    "server_proof": proof,
                    "protocol_version": P.PROTOCOL_VERSION,
                },
            )
            self.challenged = True
            frame = self._read_auth_frame(deadline)
            expected = P.auth_proof(server.token, "client", client_nonce, server_nonce)
            if frame.type != "auth_response" or not P.proof_matches(
                frame.header.get("client_proof"), expected
            ):
                return self._refuse("missing or wrong token")
            P.send_frame(self.sock, {"type": "auth_ok"})
        except P.ConnectionClosed:
            if self._evicted:
                self._send_error(P.E_BUSY, "too many unauthenticated connections")
            return False
        except P.ProtocolError as exc:
            server.stats["errors"] += 1
            log.info("bad handshake frame from %s: %s", self.peer, exc.message)
            self._send_error(exc.code, exc.message)
            return False
        except TimeoutError:
            server.stats["errors"] += 1
            log.info("%s did not authenticate within %gs", self.peer, server.auth_timeout)
            self._send_error(
                P.E_TIMEOUT, f"authentication not completed within {server.auth_timeout:g}s"
            )
            return False
        except OSError as exc:
            log.info("connection %s lost during the handshake: %s", self.peer, exc)
            return False
        self.authenticated = True
        return True

    def _read_auth_frame(self, deadline: float) -> P.Frame:
        # an empty payload only: before authentication nothing else is read
        return P.read_frame(
            self.sock,
            max_frame_bytes=0,
            max_header_bytes=P.AUTH_MAX_HEADER_BYTES,
            deadline=deadline,
        )

    def _refuse(self, message: str) -> bool:
        self.server.stats["errors"] += 1
        log.warning("refused %s: %s", self.peer, message)
        self._send_error(P.E_UNAUTHORIZED, message)
        return False

    # ------------------------------------------------------------------ requests

    def _read_frame(self, max_frame_bytes: int) -> P.Frame:
        """Read one frame under the header and payload deadlines.

        A frame begun while a job ran (:meth:`_read_during_job`) is finished first.
        """
        server = self.server
        if self._partial is not None:
            partial, self._partial = self._partial, None
            return partial.finish(self.sock)
        try:
            header = P.read_header(
                self.sock,
                max_frame_bytes=max_frame_bytes,
                deadline=time.monotonic() + server.read_timeout,
            )
        except P.ProtocolError as exc:
            raise _named_limit(exc) from None
        size = header["payload_bytes"]
        deadline = time.monotonic() + server.read_timeout + size / server.min_transfer_rate
        return P.Frame(header, P.read_payload(self.sock, header, deadline=deadline))

    def _serve_one(self) -> bool:
        """Read and answer one request; returns False when the connection ends."""
        server, sock, peer = self.server, self.sock, self.peer
        if self._partial is None and not _readable(sock, server.idle_timeout):
            if server._stopping.is_set():
                return False
            log.info("closing idle connection %s", peer)
            self._send_error(
                P.E_TIMEOUT,
                f"closing the connection: idle for {server.idle_timeout:g}s "
                "(tinct serve --idle-timeout)",
            )
            return False
        try:
            frame = self._read_frame(server.max_frame_bytes)
        except P.ProtocolError as exc:
            return self._frame_failed(exc)
        except TimeoutError as exc:
            return self._frame_failed(exc)
        except OSError as exc:
            log.info("connection %s lost: %s", peer, exc)
            return False
        server.stats["requests"] += 1
        try:
            rid = check_request_id(frame.header)
        except RequestError as exc:
            server.stats["errors"] += 1
            return self._send_error(exc.code, exc.message)
        try:
            return self._dispatch(frame, rid)
        except RequestError as exc:
            server.stats["errors"] += 1
            log.info("request from %s refused: %s: %s", peer, exc.code, show(exc.message, 400))
            return self._send_error(exc.code, exc.message, rid)
        except OSError as exc:
            log.info("connection %s lost while replying: %s", peer, exc)
            return False
        except Exception as exc:
            server.stats["errors"] += 1
            log.exception("request %s from %s failed", show(frame.type), peer)
            return self._send_error(P.E_INTERNAL, f"{type(exc).__name__}: {exc}", rid)

    def _frame_failed(self, exc: Exception) -> bool:
        """Answer a frame that could not be read (its error frame ends the connection).

        Returns:
            False: the connection ends.
        """
        server, peer = self.server, self.peer
        if isinstance(exc, P.ConnectionClosed):
            if exc.mid_frame:
                log.warning("%s closed the connection mid-frame", peer)
            return False
        server.stats["errors"] += 1
        if isinstance(exc, P.ProtocolError):
            log.warning("bad frame from %s: %s", peer, show(exc.message, 400))
            self._send_error(exc.code, exc.message)
        else:
            log.warning("frame from %s not completed in time", peer)
            self._send_error(P.E_TIMEOUT, "frame not completed in time (see docs/protocol.md)")
        return False

    def _send_error(self, code: str, message: str, request_id: Any = None) -> bool:
        try:
            P.send_frame(self.sock, P.error_header(code, message, request_id))
            return True
        except OSError:
            return False

    def _reply(self, header: dict[str, Any], rid: str | None) -> None:
        if rid is not None:
            header["id"] = rid
        P.send_frame(self.sock, header)

    def _dispatch(self, frame: P.Frame, rid: str | None) -> bool:
        kind = frame.type
        if kind == "hello":
            self._reply(self.server.hello_reply(), rid)
            return True
        if kind == "models":  # the model list with each model's weight status
            backend = self.server.backend
            reply = {"type": "models", "default_model": backend.default_model}
            self._reply({**reply, "models": backend.models()}, rid)
            return True
        if kind == "colorize":
            return self._colorize(frame)
        if kind == "cancel":
            target = check_request_id(frame.header, "request_id")
            found = target is not None and self.server._cancel_job(target)
            self._reply({"type": "cancel_ack", "request_id": target, "found": found}, rid)
            return True
        raise RequestError(P.E_UNKNOWN_TYPE, f"unknown request type {show(kind)}")

    def _colorize(self, frame: P.Frame) -> bool:
        """Run one colorize request; progress frames go out while it waits for the engine."""
        server, sock, peer = self.server, self.sock, self.peer
        job = server.parse_colorize(frame)
        t0 = time.monotonic()
        state: dict[str, Any] = {"progress": (0.0, "queued"), "sent": None}
        done = threading.Event()

        def progress(fraction: float, message: str = "") -> None:
            state["progress"] = (float(fraction), str(message))

        def work() -> None:
            try:
                prepare = getattr(server.backend, "prepare", None)
                if prepare is not None:  # e.g. a download: never under the engine lock
                    prepare(job)
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

        worker = threading.Thread(target=work, name="tinct-job", daemon=True)
        server._add_job(self, job, worker)
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
                if not self._read_during_job(job):
                    return False
                if job.cancel.is_set():
                    return self._send_cancelled(job)
        finally:
            if not done.is_set():
                job.cancel.set()  # the client is gone or the reply failed: stop the work
            server._drop_job(self, job)
        if job.cancel.is_set():
            return self._send_cancelled(job)
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

    def _send_cancelled(self, job: ColorizeJob) -> bool:
        """End a cancelled job with its ``cancelled`` error (it says so when the server stops)."""
        if self.server._stopping.is_set():
            log.info("request %s from %s cancelled: shutting down", show(job.request_id), self.peer)
            message = "cancelled: the server is shutting down"
        else:
            log.info("request %s from %s cancelled", show(job.request_id), self.peer)
            message = "cancelled"
        return self._send_error(P.E_CANCELLED, message, job.request_id)

    def _read_during_job(self, job: ColorizeJob) -> bool:
        """Take what has arrived while a job runs, without waiting (only ``cancel`` is allowed).

        Bytes are read as they come, so progress frames keep going while a frame
        is still arriving. A complete ``cancel`` naming this job (or none) cancels
        it; one naming another id cancels those jobs. Each is answered with
        ``cancel_ack``, any other request with ``busy``. A frame that breaks the
        protocol or misses its deadline gets the error frame it gets between
        requests; that, and a closed connection, end the connection and cancel
        the job.

        Returns:
            False when the connection ends.
        """
        if self._partial is None:
            if not _readable(self.sock, 0.0):
                return True
            self._partial = _PartialFrame(self.server, P.DEFAULT_MAX_HEADER_BYTES)
        partial = self._partial
        try:
            frame = partial.receive(self.sock) if _readable(self.sock, 0.0) else None
            if frame is None:
                partial.check_deadline()
                return True
        except (P.ProtocolError, TimeoutError) as exc:
            self._partial = None
            job.cancel.set()
            if isinstance(exc, P.ConnectionClosed):
                log.info("%s went away during a job: %s", self.peer, exc.message)
                return False
            return self._frame_failed(exc)
        except OSError as exc:
            self._partial = None
            log.info("%s went away during a job: %s", self.peer, exc)
            job.cancel.set()
            return False
        self._partial = None
        try:
            rid = check_request_id(frame.header)
        except RequestError:
            rid = None  # a malformed id is not echoed
        if frame.type != "cancel":
            self._send_error(P.E_BUSY, "only cancel is allowed while a request runs", rid)
            return True
        try:
            target = check_request_id(frame.header, "request_id")
        except RequestError as exc:
            self._send_error(exc.code, exc.message, rid)
            return True
        found = target is None or target == job.request_id
        if found:
            job.cancel.set()
        if target is not None:
            found = self.server._cancel_job(target) or found
        self._reply({"type": "cancel_ack", "request_id": target, "found": found}, rid)
        return True


class _PartialFrame:
    """A frame read a piece at a time, as its bytes arrive, never past its own end.

    While a job runs, the connection must not wait for a frame's missing bytes
    (progress frames would stop); what has arrived is kept here, and the frame
    is finished by the next read when the job ends first.

    Args:
        server: the server (``read_timeout``, ``min_transfer_rate``).
        max_frame_bytes: largest payload accepted.
    """

    def __init__(self, server: BridgeServer, max_frame_bytes: int) -> None:
        self.server = server
        self.max_frame_bytes = max_frame_bytes
        self.header: dict[str, Any] | None = None
        self.buf = bytearray()
        self.want = P.PREFIX.size
        self.prefix_done = False
        self.deadline = time.monotonic() + server.read_timeout

    def receive(self, sock: socket.socket) -> P.Frame | None:
        """Take the bytes that have arrived (call when ``sock`` is readable).

        Returns:
            The frame once it is complete, else None.

        Raises:
            ConnectionClosed: EOF (``mid_frame`` when bytes of this frame had come).
            ProtocolError: a malformed or oversized frame.
        """
        chunk = sock.recv(min(self.want - len(self.buf), 1 << 20)) if self.want else b""
        if self.want and not chunk:
            began = self.prefix_done or bool(self.buf)
            raise P.ConnectionClosed(
                "connection closed mid-frame" if began else "connection closed", mid_frame=began
            )
        self.buf += chunk
        while len(self.buf) == self.want:
            if not self.prefix_done:
                self.want = P.parse_prefix(self.buf, P.DEFAULT_MAX_HEADER_BYTES)
                self.prefix_done, self.buf = True, bytearray()
            elif self.header is None:
                try:
                    header = P.parse_header(bytes(self.buf), self.max_frame_bytes)
                except P.ProtocolError as exc:
                    raise _named_limit(exc) from None
                self.header, self.buf = header, bytearray()
                self.want = header["payload_bytes"]
                rate = self.server.min_transfer_rate
                self.deadline = time.monotonic() + self.server.read_timeout + self.want / rate
            else:
                return P.Frame(self.header, bytes(self.buf))
        return None

    def check_deadline(self) -> None:
        """Raise ``TimeoutError`` when the frame has missed its deadline."""
        if time.monotonic() > self.deadline:
            raise TimeoutError("frame not completed in time")

    def finish(self, sock: socket.socket) -> P.Frame:
        """Wait for the rest of the frame (under its deadline) and return it."""
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0 or not _readable(sock, remaining):
                raise TimeoutError("frame not completed in time")
            frame = self.receive(sock)
            if frame is not None:
                return frame


def _named_limit(exc: P.ProtocolError) -> P.ProtocolError:
    """``exc``, its message naming the flag when it is the payload limit (``--max-frame-mb``)."""
    if exc.code == P.E_TOO_LARGE and exc.message.startswith("payload"):
        flag = "(max_frame_bytes; tinct serve --max-frame-mb)"
        return P.ProtocolError(exc.code, f"{exc.message} {flag}")
    return exc
