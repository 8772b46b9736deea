"""A frame read a piece at a time, for a connection that must not block while a job runs.

While a ``colorize`` job runs, its connection keeps sending progress frames and
so cannot wait for the missing bytes of a frame the client is sending
(:mod:`tinct.bridge.running_job`); a :class:`PartialFrame` keeps what has arrived,
under the same header and payload deadlines as a frame read in one go, and
:func:`named_limit` makes the payload limit's error name the limit that applies: the
server's ``max_frame_bytes`` (``tinct serve --max-frame-mb``) between requests,
:data:`JOB_FRAME_BYTES` for a frame sent while a job runs (only ``cancel`` is then
accepted, and no flag changes that).
"""

from __future__ import annotations

import math
import socket
import time
from typing import TYPE_CHECKING, Any

from tinct.bridge import wire as P
from tinct.bridge.sockio import _readable

if TYPE_CHECKING:
    from tinct.bridge.serving import ServingState

__all__ = [
    "JOB_FRAME_BYTES",
    "JOB_FRAME_LIMIT",
    "SERVER_FRAME_LIMIT",
    "PartialFrame",
    "named_limit",
]

#: Largest payload of a frame sent while a job runs (only ``cancel`` is then accepted).
JOB_FRAME_BYTES = P.DEFAULT_MAX_HEADER_BYTES
#: What a payload over the server's ``max_frame_bytes`` is told.
SERVER_FRAME_LIMIT = "(max_frame_bytes; tinct serve --max-frame-mb)"
#: What a payload over :data:`JOB_FRAME_BYTES` is told.
JOB_FRAME_LIMIT = "(the limit for a frame sent while a request runs, when only cancel is accepted)"


class PartialFrame:
    """A frame read a piece at a time, as its bytes arrive, never past its own end.

    While a job runs, the connection must not wait for a frame's missing bytes
    (progress frames would stop); what has arrived is kept here, and the frame
    is finished by the next read when the job ends first.

    Args:
        server: the server (``read_timeout``, ``min_transfer_rate``).
        max_frame_bytes: largest payload accepted.
        limit: what the error for a larger payload says of the limit (its name, its flag).
    """

    def __init__(
        self, server: ServingState, max_frame_bytes: int, limit: str = SERVER_FRAME_LIMIT
    ) -> None:
        self.server = server
        self.max_frame_bytes = max_frame_bytes
        self.limit = limit
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
                    header = P.parse_header(
                        self.buf, self.max_frame_bytes, self.server.max_header_values
                    )
                except P.ProtocolError as exc:
                    raise named_limit(exc, self.limit) from None
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


def named_limit(exc: P.ProtocolError, limit: str = SERVER_FRAME_LIMIT) -> P.ProtocolError:
    """``exc``, its message naming the limit when it is the payload limit.

    Args:
        exc: the error reading a frame's header raised.
        limit: the limit that applied, in words (:data:`SERVER_FRAME_LIMIT`, the
            server's ``--max-frame-mb``, or :data:`JOB_FRAME_LIMIT` during a job).

    Returns:
        ``exc``, or for a payload over the limit the same error with ``limit`` appended;
        over the server's limit, it is worded for whoever reads it (a GIMP user) as the
        megapixel limit is: "the request is 45.8 MiB, more than this server's limit of
        20 MiB: scale the image down or crop it, or whoever runs the server can raise
        the limit (tinct serve --max-frame-mb 46)".
    """
    if exc.code != P.E_TOO_LARGE or not exc.message.startswith("payload"):
        return exc
    size, most = getattr(exc, "payload_bytes", None), getattr(exc, "limit_bytes", None)
    if limit == SERVER_FRAME_LIMIT and size and most:
        mib = 1024 * 1024
        return P.ProtocolError(
            exc.code,
            f"the request is {size / mib:.3g} MiB, more than this server's limit of "
            f"{most / mib:.3g} MiB: scale the image down or crop it, or whoever runs the "
            f"server can raise the limit (tinct serve --max-frame-mb {math.ceil(size / mib)})",
        )
    return P.ProtocolError(exc.code, f"{exc.message} {limit}")
