"""One client connection of the bridge server: its handshake, requests, replies and errors.

The server (:class:`~tinct.bridge.serving.ServingState`, the state a
:class:`~tinct.bridge.server.BridgeServer` shares with its connections) owns
what connections share (limits, token, backend, the open connections, the
running jobs, the engine lock); a :class:`Connection` serves one socket in its
own thread.

A connection first authenticates (:meth:`Connection.authenticate`, see
docs/protocol.md): it proves that it holds the token, then checks the
client's proof, all within ``auth_timeout`` seconds of the accept. Until then
it is *pending*: pending connections have a budget of their own, and when it
is full the oldest pending one is dropped (one that has not even sent its
``auth`` frame first), so stalled or idle strangers can never keep a token
holder out. Afterwards it reads frames until the peer closes, idles out or
misbehaves, or the server stops (its last frame is then ``shutting_down``,
sent without waiting long for a slow reader); each frame's header must arrive
within ``read_timeout`` of its first byte and its payload within a deadline
that grows with its size, and a large payload must fit the server's budget of
payloads held at once (:mod:`tinct.bridge.payload_budget`; ``busy`` otherwise).
It answers ``hello``, ``models`` and ``cancel``, hands ``colorize`` to
:func:`tinct.bridge.running_job.run_colorize` (which streams progress frames
and watches for a cancel or a vanished client while the job runs) and turns
every refusal or failure into an ``error`` frame. Nothing that goes wrong
escapes the connection.
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
from tinct.bridge.backend import RequestError
from tinct.bridge.partial_frame import PartialFrame, named_limit
from tinct.bridge.request import check_request_id, show
from tinct.bridge.running_job import run_colorize
from tinct.bridge.sockio import _graceful_close, _readable

if TYPE_CHECKING:
    from tinct.bridge.serving import ServingState

__all__ = [
    "Connection",
    "Handler",
    "internal_message",
]

log = logging.getLogger("tinct.bridge.server")

#: Seconds the last frame of a connection closed by a shutdown may take to send.
FAREWELL_SEND_S = 0.5


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
        partial: a frame begun while a job ran
            (:func:`~tinct.bridge.running_job.read_during_job`), finished by the
            next read.
        reserved: bytes of the server's payload budget the frame just read holds.
    """

    def __init__(self, server: ServingState, sock: socket.socket, addr: Any) -> None:
        self.server = server
        self.sock = sock
        self.peer = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
        self.accepted = time.monotonic()
        self.challenged = False
        self.authenticated = False
        self._evicted = False
        self.partial: PartialFrame | None = None
        self.reserved = 0
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
            while self._serve_one():
                pass
        except Exception:  # isolation: nothing escapes one connection
            server.stats["errors"] += 1
            log.exception("connection %s failed", peer)
        finally:
            if self.authenticated and server._stopping.is_set():
                self._say_shutting_down()
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

        A frame begun while a job ran (:attr:`partial`) is finished first. A large
        payload's bytes are reserved in the server's
        :class:`~tinct.bridge.payload_budget.PayloadBudget` (:attr:`reserved`) before
        it is read; the caller releases them once the request is answered.

        Raises:
            ProtocolError: also ``busy`` when the budget has no room for the payload.
        """
        server = self.server
        if self.partial is not None:
            partial, self.partial = self.partial, None
            return partial.finish(self.sock)
        try:
            header = P.read_header(
                self.sock,
                max_frame_bytes=max_frame_bytes,
                deadline=time.monotonic() + server.read_timeout,
                max_values=server.max_header_values,
            )
        except P.ProtocolError as exc:
            raise named_limit(exc) from None
        size = header["payload_bytes"]
        self.reserved = server.payload_budget.reserve(size)  # busy: too much held already
        deadline = time.monotonic() + server.read_timeout + size / server.min_transfer_rate
        try:
            return P.Frame(header, P.read_payload(self.sock, header, deadline=deadline))
        except BaseException:
            server.payload_budget.release(self.reserved)
            self.reserved = 0
            raise

    def _serve_one(self) -> bool:
        """Read and answer one request; returns False when the connection ends.

        Once the server is stopping nothing more is read or answered: the
        connection ends, and :meth:`serve` says why (``shutting_down``).
        """
        server, sock, peer = self.server, self.sock, self.peer
        stopping = server._stopping
        if stopping.is_set():
            return False
        if self.partial is None and not _readable(sock, server.idle_timeout):
            if stopping.is_set():
                return False
            log.info("closing idle connection %s", peer)
            self._send_error(
                P.E_TIMEOUT,
                f"closing the connection: idle for {server.idle_timeout:g}s "
                "(tinct serve --idle-timeout)",
            )
            return False
        if stopping.is_set():  # shutdown() woke the wait
            return False
        try:
            frame = self._read_frame(server.max_frame_bytes)
        except (P.ProtocolError, TimeoutError) as exc:
            return False if stopping.is_set() else self._frame_failed(exc)
        except OSError as exc:
            log.info("connection %s lost: %s", peer, exc)
            return False
        reserved, self.reserved = self.reserved, 0
        try:
            return self._answer(frame)
        finally:  # the request is done with its payload
            server.payload_budget.release(reserved)

    def _answer(self, frame: P.Frame) -> bool:
        """Answer one request frame; returns False when the connection ends."""
        server, peer = self.server, self.peer
        if server._stopping.is_set():  # arrived as the server stopped: not served
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
            return self._send_error(P.E_INTERNAL, internal_message(exc), rid)

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
            what = "request refused" if exc.code == P.E_BUSY else "bad frame"
            log.warning("%s from %s: %s", what, peer, show(exc.message, 400))
            self._send_error(exc.code, exc.message)
        else:
            log.warning("frame from %s not completed in time", peer)
            self._send_error(P.E_TIMEOUT, "frame not completed in time (see docs/protocol.md)")
        return False

    def _say_shutting_down(self) -> None:
        """Send ``shutting_down`` as the last frame, best effort: a slow reader is not awaited."""
        with contextlib.suppress(OSError):
            self.sock.settimeout(min(self.server.read_timeout, FAREWELL_SEND_S))
        if self._send_error(P.E_SHUTTING_DOWN, "the server is shutting down"):
            log.debug("told %s that the server is shutting down", self.peer)

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
            return run_colorize(self, frame)
        if kind == "cancel":
            target = check_request_id(frame.header, "request_id")
            found = target is not None and self.server._cancel_job(target)
            self._reply({"type": "cancel_ack", "request_id": target, "found": found}, rid)
            return True
        raise RequestError(P.E_UNKNOWN_TYPE, f"unknown request type {show(kind)}")


def internal_message(exc: BaseException, limit: int = 500) -> str:
    """What a client is told of a server failure: the error's name and first line.

    The log has the traceback; the client (a GIMP user) gets one line of at most
    ``limit`` characters, never the rest of a many-line message (PyTorch's can hold
    a C++ backtrace).
    """
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0].strip()}" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
