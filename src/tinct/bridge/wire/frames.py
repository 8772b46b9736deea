"""Encoding, sending, receiving and checking frames (prefix, JSON header, payload).

Standard library only: ``tinct gimp install`` copies this package next to the
GIMP plug-in (see :mod:`tinct.bridge.wire`).
"""

from __future__ import annotations

import contextlib
import json
import mmap
import select
import sys
import time

from .headerjson import (
    loads_header,
)
from .spec import (
    _CHUNK,
    _MAP_THRESHOLD,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADER_VALUES,
    E_BAD_FRAME,
    E_TOO_LARGE,
    MAGIC,
    MAX_RESULT_WARNINGS,
    MAX_WARNING_CHARS,
    PREFIX,
    PROTOCOL_VERSION,
    ConnectionClosed,
    Frame,
    ProtocolError,
    VersionMismatch,
    _SocketTimeout,
)

__all__ = [
    "bounded_warnings",
    "build_header",
    "decode_frame",
    "encode_frame",
    "error_header",
    "parse_header",
    "parse_prefix",
    "read_frame",
    "read_header",
    "read_payload",
    "send_frame",
]


def _byte_len(buf):
    return memoryview(buf).nbytes


def build_header(header, sections=None):
    """Return (header copy with "sections"/"payload_bytes" filled, list of buffers)."""
    header = dict(header)
    buffers = []
    offset = 0
    if sections:
        table = {}
        for item in sections:
            name, buf = item[0], item[1]
            extra = item[2] if len(item) > 2 and item[2] else {}
            size = _byte_len(buf)
            entry = dict(extra)
            entry["offset"] = offset
            entry["size"] = size
            table[name] = entry
            buffers.append(buf)
            offset += size
        header["sections"] = table
    header["payload_bytes"] = offset
    return header, buffers


def _encode_prefix_and_header(header):
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return PREFIX.pack(MAGIC, PROTOCOL_VERSION, len(raw)) + raw


def encode_frame(header, sections=None):
    """Encode a frame to bytes.

    Args:
        header: the JSON-able header dict (must contain "type").
        sections: optional list of (name, bytes-like[, extra dict]) payload sections.

    Returns:
        The complete frame as bytes.
    """
    header, buffers = build_header(header, sections)
    return b"".join([_encode_prefix_and_header(header)] + [bytes(b) for b in buffers])


def send_frame(sock, header, sections=None):
    """Send a frame on a socket without copying the payload buffers."""
    header, buffers = build_header(header, sections)
    sock.sendall(_encode_prefix_and_header(header))
    for buf in buffers:
        view = memoryview(buf)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        if view.nbytes:
            sock.sendall(view)


def _new_buffer(n):
    """A zeroed, writable buffer of n bytes whose memory is committed only as it is written.

    Small buffers are bytearrays; larger ones are anonymous memory maps, whose
    pages the OS provides (zeroed) on first write, so a peer that declares a
    large payload and sends little costs little memory, and nothing is zero-filled
    up front.
    """
    if n <= _MAP_THRESHOLD:
        return bytearray(n)
    try:
        return mmap.mmap(-1, n)
    except (OSError, ValueError, OverflowError) as exc:
        raise ProtocolError(E_TOO_LARGE, f"cannot reserve {n} bytes for a payload: {exc}") from None


def _recv_exact(sock, n, at_start=False, deadline=None):
    """Read exactly n bytes into a new buffer (raises ConnectionClosed on EOF).

    ``deadline`` (a ``time.monotonic()`` value) bounds the whole read, not each
    ``recv``; socket.timeout is raised when it passes.

    Returns:
        A bytearray, or for more than 1 MiB an anonymous ``mmap`` (bytes-like and
        writable as well, see :func:`_new_buffer`).
    """
    buf = _new_buffer(n)
    got = 0
    old_timeout = sock.gettimeout() if deadline is not None else None
    try:
        with memoryview(buf) as view:
            while got < n:
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise _SocketTimeout("frame not completed in time")
                    sock.settimeout(left)
                with view[got:] as part:
                    k = sock.recv_into(part, min(n - got, _CHUNK))
                if k == 0:
                    if at_start and got == 0:
                        raise ConnectionClosed("connection closed")
                    raise ConnectionClosed(
                        f"connection closed mid-frame ({got} of {n} bytes)", mid_frame=True
                    )
                got += k
    finally:
        if deadline is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(old_timeout)
    return buf


def parse_prefix(prefix, max_header_bytes=DEFAULT_MAX_HEADER_BYTES):
    """Validate a 10-byte frame prefix and return the header length."""
    magic, version, hlen = PREFIX.unpack(bytes(prefix))
    if magic != MAGIC:
        raise ProtocolError(E_BAD_FRAME, f"bad magic {magic!r} (expected {MAGIC!r})")
    if version != PROTOCOL_VERSION:
        raise VersionMismatch(version)
    if hlen > max_header_bytes:
        raise ProtocolError(
            E_TOO_LARGE, f"header of {hlen} bytes exceeds the limit of {max_header_bytes}"
        )
    return hlen


def parse_header(
    raw, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES, max_values=DEFAULT_MAX_HEADER_VALUES
):
    """Decode and validate the JSON header bytes (payload size, sections)."""
    header = loads_header(raw, max_values=max_values)
    if not isinstance(header, dict):
        raise ProtocolError(E_BAD_FRAME, "header must be a JSON object")
    if not isinstance(header.get("type"), str):
        raise ProtocolError(E_BAD_FRAME, 'header has no string "type"')
    size = header.get("payload_bytes", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ProtocolError(E_BAD_FRAME, '"payload_bytes" must be a non-negative integer')
    if size > max_frame_bytes:
        error = ProtocolError(
            E_TOO_LARGE,
            f"payload of {size} bytes exceeds the limit of {max_frame_bytes} bytes "
            f"({max_frame_bytes / (1024 * 1024):g} MiB)",
        )
        error.payload_bytes, error.limit_bytes = size, max_frame_bytes  # to reword it
        raise error
    sections = header.get("sections")
    if sections is not None:
        if not isinstance(sections, dict):
            raise ProtocolError(E_BAD_FRAME, '"sections" must be an object')
        for name, sec in sections.items():
            if not isinstance(sec, dict):
                raise ProtocolError(E_BAD_FRAME, f"section {name!r} must be an object")
            off, n = sec.get("offset"), sec.get("size")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (off, n)):
                raise ProtocolError(E_BAD_FRAME, f"section {name!r} needs integer offset/size")
            if off < 0 or n < 0 or off + n > size:
                raise ProtocolError(E_BAD_FRAME, f"section {name!r} lies outside the payload")
    header["payload_bytes"] = size
    return header


def read_header(
    sock,
    max_header_bytes=DEFAULT_MAX_HEADER_BYTES,
    max_frame_bytes=None,
    deadline=None,
    max_values=DEFAULT_MAX_HEADER_VALUES,
):
    """Read a frame's prefix and header from a socket (not the payload).

    Args:
        sock: the socket.
        max_header_bytes: largest accepted header.
        max_frame_bytes: largest accepted payload (None: no limit).
        deadline: ``time.monotonic()`` by which the header must have arrived.
        max_values: most values in the header (see :func:`loads_header`).

    Raises:
        ConnectionClosed: EOF (``mid_frame`` tells whether a frame had begun).
        VersionMismatch: the peer speaks another protocol version.
        ProtocolError: bad magic, oversize or malformed header.
        socket.timeout: the deadline passed.
    """
    prefix = _recv_exact(sock, PREFIX.size, at_start=True, deadline=deadline)
    hlen = parse_prefix(prefix, max_header_bytes)
    raw = _recv_exact(sock, hlen, deadline=deadline)
    if max_frame_bytes is None:
        max_frame_bytes = sys.maxsize
    return parse_header(raw, max_frame_bytes, max_values)


def read_payload(sock, header, deadline=None):
    """Read the payload announced by a header; returns a writable bytes-like buffer."""
    return _recv_exact(sock, header["payload_bytes"], deadline=deadline)


def read_frame(
    sock,
    max_frame_bytes=DEFAULT_MAX_FRAME_BYTES,
    max_header_bytes=DEFAULT_MAX_HEADER_BYTES,
    deadline=None,
):
    """Read one complete frame from a socket and return a Frame."""
    header = read_header(sock, max_header_bytes, max_frame_bytes, deadline=deadline)
    return Frame(header, read_payload(sock, header, deadline=deadline))


def decode_frame(
    data, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES, max_header_bytes=DEFAULT_MAX_HEADER_BYTES
):
    """Decode one frame from bytes (the inverse of encode_frame).

    Raises:
        ProtocolError: bad magic, wrong version, oversize or malformed frame; a
            truncated frame raises ConnectionClosed with ``mid_frame=True``.
    """
    data = memoryview(data)
    if len(data) < PREFIX.size:
        raise ConnectionClosed("truncated frame prefix", mid_frame=True)
    hlen = parse_prefix(data[: PREFIX.size], max_header_bytes)
    end = PREFIX.size + hlen
    if len(data) < end:
        raise ConnectionClosed("truncated frame header", mid_frame=True)
    header = parse_header(data[PREFIX.size : end], max_frame_bytes)
    total = end + header["payload_bytes"]
    if len(data) < total:
        raise ConnectionClosed("truncated frame payload", mid_frame=True)
    if len(data) > total:
        raise ProtocolError(E_BAD_FRAME, f"{len(data) - total} trailing bytes after the frame")
    return Frame(header, bytes(data[end:total]))


def error_header(code, message, request_id=None):
    """Build an ``error`` reply header."""
    header = {"type": "error", "code": code, "message": message}
    if request_id is not None:
        header["id"] = request_id
    return header


def bounded_warnings(
    values: object, max_count: int = MAX_RESULT_WARNINGS, max_chars: int = MAX_WARNING_CHARS
) -> list[str]:
    """The warnings of a ``result`` frame, within the protocol's bounds.

    The server builds its ``"warnings"`` field with it, and the client reads the
    field through it, so neither side shows more than the bounds allow, whatever
    the other sent.

    Args:
        values: the warnings (an iterable of strings); anything else, such as a
            missing field (None) or a number, gives no warnings.
        max_count: the most warnings kept (the first ones).
        max_chars: the most characters of each; a longer one is cut and ends with "...".

    Returns:
        A list of distinct, non-empty strings without surrounding white space.
    """
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        return []
    out: list[str] = []
    for value in values:
        if len(out) >= max_count:
            break
        if not isinstance(value, str) or not value.strip():
            continue
        text = value.strip()
        if len(text) > max_chars:
            text = text[: max_chars - 3].rstrip() + "..."
        if text not in out:
            out.append(text)
    return out


def _readable_now(sock):
    """Whether input (or end of stream) is waiting on ``sock``; ``poll`` where there is one."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _last_error_frame(sock, timeout, max_frames=8):
    """The error frame a server sent before it closed a connection we were sending on.

    A server that stops, or refuses a frame over its limits, says why in one error
    frame and closes, often while a large upload is still under way; the frame
    then waits, unread, behind any late replies. Returns its header, or None.
    """
    try:
        sock.settimeout(min(timeout, 2.0))
        for _ in range(max_frames):
            frame = read_frame(sock, max_frame_bytes=sys.maxsize)
            if frame.type == "error":
                return frame.header
    except (ProtocolError, OSError):  # end of stream, reset, nothing said in time
        pass
    return None
