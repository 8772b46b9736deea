"""The tinct bridge wire protocol and its client (standard library only).

This one file is both ``tinct.protocol`` and, byte for byte, the GIMP plug-in's
``tinct_client.py``; it therefore uses only the standard library and runs on
Python 3.8 (GIMP's bundled interpreter on Windows and macOS). See
``docs/protocol.md`` for the full specification.

Frame layout (all integers little-endian)::

    magic  4 bytes   b"TNCT"
    version u16      PROTOCOL_VERSION
    hlen   u32       length of the JSON header in bytes
    header hlen      UTF-8 JSON object; "payload_bytes" gives the payload size
    payload          raw bytes, split into named "sections" {name: {offset, size, ...}}

A connection starts with a mutual authentication (``auth`` /
``auth_challenge`` / ``auth_response`` / ``auth_ok``): the server proves that
it holds the token in bridge.json before the client proves the same, and the
token itself never crosses the wire. Every later request carries an ``id``
that its replies echo.

Example:
    >>> with BridgeClient() as client:  # reads port and token from bridge.json
    ...     info = client.hello()
    ...     res = client.colorize(w, h, "rgba8", pixels)
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import mmap
import os
import socket
import struct
import sys
import time
import uuid

__all__ = [
    "AUTH_MAX_HEADER_BYTES",
    "DEFAULT_HOST",
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_HINTS",
    "DEFAULT_MAX_MRF_ITERS",
    "DEFAULT_MAX_PIXELS",
    "MAGIC",
    "MAX_JSON_DEPTH",
    "PIXEL_FORMATS",
    "PROTOCOL_VERSION",
    "RESULT_FORMATS",
    "START_HINT",
    "BridgeClient",
    "BridgeError",
    "ColorizeResult",
    "ConnectionClosed",
    "Frame",
    "ProtocolError",
    "ServerNotRunning",
    "ServerUnverified",
    "VersionMismatch",
    "auth_proof",
    "bridge_config_path",
    "client_handshake",
    "config_dir",
    "decode_frame",
    "encode_frame",
    "error_header",
    "is_nonce",
    "process_identity",
    "proof_matches",
    "read_bridge_config",
    "read_frame",
    "read_header",
    "read_payload",
    "send_frame",
]

PROTOCOL_VERSION = 2
MAGIC = b"TNCT"
PREFIX = struct.Struct("<4sHI")  # magic, version, header length
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_HEADER_BYTES = 4 * 1024 * 1024
#: Largest header of a frame sent before the connection is authenticated.
AUTH_MAX_HEADER_BYTES = 4096
#: Fits an 8192x8192 rgba16 image (512 MiB) plus an rgba8 hint layer (256 MiB).
DEFAULT_MAX_FRAME_BYTES = 800 * 1024 * 1024
DEFAULT_MAX_PIXELS = 8192 * 8192
#: Point hints plus hint-layer blobs per request (placing one costs ~2 ms).
DEFAULT_MAX_HINTS = 2048
#: MRF sweeps per request (one costs ~50 ms at the default network size).
DEFAULT_MAX_MRF_ITERS = 100
#: Deepest nesting of objects and arrays in a header.
MAX_JSON_DEPTH = 32
_MAX_INT_DIGITS = 40
START_HINT = "Start the server with: tinct serve"

#: Pixel formats a request may carry, with their bytes per pixel.
PIXEL_FORMATS = {
    "gray8": 1,
    "gray16": 2,
    "rgb8": 3,
    "rgba8": 4,
    "rgb16": 6,
    "rgba16": 8,
}
#: Pixel formats a result may carry.
RESULT_FORMATS = ("rgb8", "rgba8")

# Error codes (the "code" field of an error reply).
E_BAD_FRAME = "bad_frame"
E_VERSION = "version_mismatch"
E_UNAUTHORIZED = "unauthorized"
E_TOO_LARGE = "too_large"
E_BAD_REQUEST = "bad_request"
E_UNKNOWN_TYPE = "unknown_type"
E_UNKNOWN_MODEL = "unknown_model"
E_CANCELLED = "cancelled"
E_BUSY = "busy"
E_TIMEOUT = "timeout"
E_INTERNAL = "internal"

_CHUNK = 4 * 1024 * 1024
#: Payloads above this are read into anonymous memory maps (see _new_buffer).
_MAP_THRESHOLD = 1024 * 1024
#: socket.timeout is only an alias of TimeoutError from Python 3.10 on.
_SocketTimeout = socket.timeout
_NONCE_BYTES = 32
_PROOF_LABELS = {"server": b"tinct-bridge-2 server proof", "client": b"tinct-bridge-2 client proof"}


class ProtocolError(Exception):
    """A frame that does not follow the protocol.

    Attributes:
        code: one of the error codes (``bad_frame``, ``too_large``, ...).
    """

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


class VersionMismatch(ProtocolError):
    """The peer speaks another protocol version (names both versions)."""

    def __init__(self, remote, local=PROTOCOL_VERSION):
        ProtocolError.__init__(
            self,
            E_VERSION,
            f"protocol version mismatch: peer speaks version {remote}, "
            f"this side speaks version {local}",
        )
        self.remote = remote
        self.local = local


class ConnectionClosed(ProtocolError):
    """The peer closed the connection (cleanly between frames or mid-frame)."""

    def __init__(self, message="connection closed", mid_frame=False):
        ProtocolError.__init__(self, "closed", message)
        self.mid_frame = mid_frame


class BridgeError(Exception):
    """An error reply from the server (or a failure to reach it).

    Attributes:
        code: the error code sent by the server.
        message: its human-readable message.
    """

    def __init__(self, code, message):
        Exception.__init__(self, f"{code}: {message}")
        self.code = code
        self.message = message


class ServerNotRunning(BridgeError):
    """Nothing listens on the port, or no (live) bridge.json says where the server is."""

    def __init__(self, message):
        BridgeError.__init__(self, "not_running", message + ". " + START_HINT)


class ServerUnverified(BridgeError):
    """The peer could not prove that it holds the token: the client sent nothing secret.

    A bridge.json left by a dead server, another program on its port, or a
    wrong token all look the same from the client's side.
    """

    def __init__(self, message):
        BridgeError.__init__(self, E_UNAUTHORIZED, message + ". " + START_HINT)


class Frame:
    """One decoded frame: a header dict and its payload (bytes-like)."""

    __slots__ = ("header", "payload")

    def __init__(self, header, payload=b""):
        self.header = header
        self.payload = payload

    @property
    def type(self):
        """The message type (``header["type"]``)."""
        return self.header.get("type")

    def section(self, name):
        """Return the named payload section as a memoryview, or None if absent."""
        sec = (self.header.get("sections") or {}).get(name)
        if sec is None:
            return None
        off, size = sec["offset"], sec["size"]
        return memoryview(self.payload)[off : off + size]

    def __repr__(self):
        return f"Frame({self.header!r}, <{len(self.payload)} bytes>)"


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


def _json_int(text):
    if len(text) > _MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(text)} digits")
    return int(text)


def _json_float(text):
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _json_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _check_json_tree(obj, max_depth):
    """Bound the nesting and reject strings that cannot be UTF-8 (lone surrogates)."""
    stack = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, (dict, list)):
            if depth >= max_depth:
                raise ProtocolError(
                    E_BAD_FRAME, f"header nests objects/arrays deeper than {max_depth} levels"
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def _check_text(text):
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError(
                E_BAD_FRAME, "header holds a string with invalid unicode (a lone surrogate)"
            ) from None


def loads_header(raw, max_depth=MAX_JSON_DEPTH):
    """Decode header bytes as bounded JSON.

    Integers longer than 40 digits, NaN/Infinity and numbers that overflow a
    float, nesting deeper than ``max_depth`` and strings with lone surrogates
    are refused.

    Raises:
        ProtocolError: ``bad_frame`` with a message naming what was wrong.
    """
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(E_BAD_FRAME, f"header is not valid UTF-8: {exc}") from None
    try:
        obj = json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except RecursionError:
        raise ProtocolError(
            E_BAD_FRAME, f"header nests objects/arrays deeper than {max_depth} levels"
        ) from None
    except ValueError as exc:
        raise ProtocolError(E_BAD_FRAME, f"header is not valid JSON: {exc}") from None
    _check_json_tree(obj, max_depth)
    return obj


def parse_header(raw, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
    """Decode and validate the JSON header bytes (payload size, sections)."""
    header = loads_header(raw)
    if not isinstance(header, dict):
        raise ProtocolError(E_BAD_FRAME, "header must be a JSON object")
    if not isinstance(header.get("type"), str):
        raise ProtocolError(E_BAD_FRAME, 'header has no string "type"')
    size = header.get("payload_bytes", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ProtocolError(E_BAD_FRAME, '"payload_bytes" must be a non-negative integer')
    if size > max_frame_bytes:
        raise ProtocolError(
            E_TOO_LARGE,
            f"payload of {size} bytes exceeds the limit of {max_frame_bytes} bytes "
            f"({max_frame_bytes / (1024 * 1024):g} MiB)",
        )
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
    sock, max_header_bytes=DEFAULT_MAX_HEADER_BYTES, max_frame_bytes=None, deadline=None
):
    """Read a frame's prefix and header from a socket (not the payload).

    Args:
        sock: the socket.
        max_header_bytes: largest accepted header.
        max_frame_bytes: largest accepted payload (None: no limit).
        deadline: ``time.monotonic()`` by which the header must have arrived.

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
    return parse_header(raw, max_frame_bytes)


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


# --------------------------------------------------------------------------- authentication


def new_nonce():
    """A fresh random nonce (64 lowercase hex digits)."""
    return os.urandom(_NONCE_BYTES).hex()


def is_nonce(value):
    """Whether ``value`` is a well-formed nonce (64 lowercase hex digits)."""
    return (
        isinstance(value, str)
        and len(value) == 2 * _NONCE_BYTES
        and all(c in "0123456789abcdef" for c in value)
    )


def auth_proof(token, role, client_nonce, server_nonce):
    """HMAC-SHA256 proof that ``role`` ("server" or "client") holds the token.

    The two roles use different labels, so one side's proof is never valid for
    the other, and both nonces enter, so no proof can be replayed.
    """
    msg = b"\0".join(
        (_PROOF_LABELS[role], client_nonce.encode("ascii"), server_nonce.encode("ascii"))
    )
    return hmac.new(token.encode("utf-8"), msg, hashlib.sha256).hexdigest()


def proof_matches(received, expected):
    """Constant-time comparison of a received proof with the expected one."""
    if not isinstance(received, str) or len(received) != len(expected):
        return False
    return hmac.compare_digest(received.encode("utf-8", "replace"), expected.encode("ascii"))


def _read_small(sock, deadline):
    return read_frame(
        sock, max_frame_bytes=0, max_header_bytes=AUTH_MAX_HEADER_BYTES, deadline=deadline
    )


def client_handshake(sock, token, deadline=None, client="tinct-protocol"):
    """Authenticate a fresh connection both ways (the client's side).

    1. send ``auth`` with a client nonce (nothing secret);
    2. check the server's ``auth_challenge``: its proof, an HMAC of both
       nonces keyed with the token, shows that the peer holds the token;
    3. only then send ``auth_response`` with the client's own proof, and wait
       for ``auth_ok``.

    Args:
        sock: a connected socket.
        token: the token from bridge.json.
        deadline: ``time.monotonic()`` by which the handshake must be done.
        client: a name for the server's log.

    Returns:
        The ``auth_ok`` header.

    Raises:
        ServerUnverified: the peer does not hold the token (nothing secret was sent).
        BridgeError: the server refused (``unauthorized``, ``busy``, ...).
        ProtocolError: a malformed or oversized frame.
        socket.timeout: the deadline passed.
    """
    client_nonce = new_nonce()
    send_frame(
        sock,
        {
            "type": "auth",
            "client_nonce": client_nonce,
            "protocol": PROTOCOL_VERSION,
            "client": client,
        },
    )
    frame = _read_small(sock, deadline)
    if frame.type == "error":
        raise BridgeError(frame.header.get("code", E_INTERNAL), frame.header.get("message", ""))
    server_nonce = frame.header.get("server_nonce")
    if frame.type != "auth_challenge" or not is_nonce(server_nonce):
        raise ServerUnverified(
            f"the peer on this port answered {str(frame.type)[:40]!r}, not a tinct "
            "auth_challenge (bridge.json is stale or another program uses the port); nothing "
            "secret was sent to it"
        )
    expected = auth_proof(token, "server", client_nonce, server_nonce)
    if not proof_matches(frame.header.get("server_proof"), expected):
        raise ServerUnverified(
            "the process on this port could not prove that it holds the token in bridge.json "
            "(bridge.json is stale or belongs to another server, or the token is wrong); "
            "nothing secret was sent to it"
        )
    proof = auth_proof(token, "client", client_nonce, server_nonce)
    send_frame(sock, {"type": "auth_response", "client_proof": proof})
    frame = _read_small(sock, deadline)
    if frame.type == "error":
        raise BridgeError(frame.header.get("code", E_INTERNAL), frame.header.get("message", ""))
    if frame.type != "auth_ok":
        raise ProtocolError(E_BAD_FRAME, f"expected auth_ok, got {frame.type!r}")
    return frame.header


# --------------------------------------------------------------------------- config file


def config_dir():
    r"""The user's tinct config folder (``$TINCT_CONFIG_DIR`` overrides it).

    Linux: ``$XDG_CONFIG_HOME/tinct`` (``~/.config/tinct``); macOS:
    ``~/Library/Application Support/tinct``; Windows: ``%APPDATA%\tinct``.
    """
    override = os.environ.get("TINCT_CONFIG_DIR")
    if override:
        return os.path.abspath(os.path.expanduser(override))
    home = os.path.expanduser("~")
    if sys.platform.startswith("win"):
        base = os.environ.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
    elif sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return os.path.join(base, "tinct")


def bridge_config_path():
    """Path of ``bridge.json`` (port and token of the running server)."""
    return os.path.join(config_dir(), "bridge.json")


def _pid_namespace():
    """Linux: this process's PID namespace (``pid:[...]``); None elsewhere or without /proc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _process_start(pid):
    """Linux: the start time of a process in clock ticks since boot (a string), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
        return stat[stat.rindex(")") + 2 :].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def process_identity():
    """What bridge.json records about the server process to recognise it later.

    Returns:
        ``{"pid", "pid_start", "pid_ns", "started"}``: the pid, its start time
        and PID namespace (Linux; None elsewhere) and the wall-clock start.
    """
    pid = os.getpid()
    return {
        "pid": pid,
        "pid_start": _process_start(pid),
        "pid_ns": _pid_namespace(),
        "started": round(time.time(), 3),
    }


def server_gone(cfg):
    """Whether bridge.json's server process has certainly exited (False if unsure).

    Only checked on POSIX, and on Linux only when the reader shares the
    server's PID namespace (a Flatpak GIMP does not, for instance). A pid that
    now belongs to a process started at another time counts as gone. Whatever
    this says, the handshake still keeps the token from an impostor.
    """
    pid = cfg.get("pid")
    if os.name != "posix" or not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if sys.platform.startswith("linux"):
        mine = _pid_namespace()
        if mine is None or cfg.get("pid_ns") != mine:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: it exists but is not ours
        return False
    start = cfg.get("pid_start")
    now = _process_start(pid)
    return start is not None and now is not None and now != start


def read_bridge_config(path=None, check_process=True):
    """Read bridge.json; returns a dict with at least "port" and "token".

    Args:
        path: the file (default: ``bridge_config_path()``).
        check_process: refuse a file whose server process has exited.

    Raises:
        ServerNotRunning: the file is missing, unreadable, malformed or stale.
    """
    path = path or bridge_config_path()
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.loads(fh.read(1 << 16))
    except OSError:
        raise ServerNotRunning(f"no tinct server found ({path} does not exist)") from None
    except (ValueError, RecursionError):
        raise ServerNotRunning(f"{path} is not valid JSON") from None
    if not isinstance(data, dict) or "port" not in data or not isinstance(data.get("token"), str):
        raise ServerNotRunning(f"{path} lacks a port or token")
    if check_process and server_gone(data):
        raise ServerNotRunning(
            f"{path} is stale: the server that wrote it (pid {data['pid']}) is no longer running"
        )
    return data


# --------------------------------------------------------------------------- client


class ColorizeResult:
    """The pixels a colorize request returned.

    Attributes:
        width, height: size in pixels.
        format: "rgb8" or "rgba8".
        pixels: row-major pixel bytes (a writable bytes-like buffer).
        header: the full result header.
    """

    __slots__ = ("format", "header", "height", "pixels", "width")

    def __init__(self, width, height, fmt, pixels, header):
        self.width = width
        self.height = height
        self.format = fmt
        self.pixels = pixels
        self.header = header


class BridgeClient:
    """A blocking client for the tinct server (one connection, reused).

    Every connection starts with the mutual authentication of
    :func:`client_handshake`; every request has an ``id`` and only replies
    with that id are taken as its answer (late replies to cancelled requests
    are dropped). After any error the client stays usable: a broken
    connection is reopened by the next request.

    Args:
        host: server address (loopback by default).
        port: TCP port; None or 0 reads it from bridge.json.
        token: auth token; None reads it from bridge.json.
        config_path: bridge.json to read (default: ``bridge_config_path()``).
        timeout: seconds to wait for connect, the handshake and each reply frame.
    """

    _STALE_KEEP = 64

    def __init__(self, host=None, port=None, token=None, config_path=None, timeout=60.0):
        if not port or token is None:
            cfg = read_bridge_config(config_path)
            port = port or int(cfg["port"])
            token = cfg["token"] if token is None else token
            host = host or cfg.get("host") or DEFAULT_HOST
        self.host = host or DEFAULT_HOST
        self.port = int(port)
        self.token = token
        self.timeout = timeout
        self._sock = None
        self._stale = []  # ids whose late replies are dropped

    # -- connection
    def connect(self):
        """Open and authenticate the connection (done lazily by every request).

        A server that is full answers ``busy``; the client tries twice more, after
        0.1 and 0.3 s, before it gives up.
        """
        if self._sock is not None:
            return self._sock
        for delay in (0.1, 0.3, None):
            try:
                self._sock = self._open()
                break
            except BridgeError as exc:
                if exc.code != E_BUSY or delay is None:
                    raise
                time.sleep(delay)
        self._stale = []
        return self._sock

    def _open(self):
        where = f"{self.host}:{self.port}"
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise ServerNotRunning(f"cannot reach the tinct server on {where} ({exc})") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client_handshake(sock, self.token, time.monotonic() + self.timeout)
        except ProtocolError as exc:
            sock.close()
            raise BridgeError(exc.code, f"{exc.message} (from {where})") from None
        except _SocketTimeout:
            sock.close()
            message = f"no handshake from {where} in {self.timeout:g}s"
            raise BridgeError(E_TIMEOUT, message) from None
        except OSError as exc:
            sock.close()
            raise BridgeError("closed", f"connection to {where} lost: {exc}") from None
        except BaseException:
            sock.close()
            raise
        return sock

    def close(self):
        """Close the connection."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, header, sections=None):
        sock = self.connect()
        try:
            send_frame(sock, header, sections)
        except OSError as exc:
            self.close()
            raise BridgeError("closed", f"connection lost while sending: {exc}") from None

    def _next(self):
        if self._sock is None:
            raise BridgeError("closed", "the connection was closed")
        try:
            return read_frame(self._sock, max_frame_bytes=sys.maxsize)
        except ProtocolError as exc:
            self.close()
            raise BridgeError(exc.code, exc.message) from None
        except _SocketTimeout:
            self.close()
            raise BridgeError(E_TIMEOUT, f"no reply from the server in {self.timeout:g}s") from None
        except OSError as exc:
            self.close()
            raise BridgeError("closed", f"connection lost: {exc}") from None

    def _forget(self, request_id):
        """Drop any later reply to ``request_id``."""
        self._stale.append(request_id)
        del self._stale[: -self._STALE_KEEP]

    def _reply(self, request_id, on_progress=None):
        """The next reply to ``request_id`` (progress frames go to ``on_progress``).

        Replies to forgotten requests are skipped; an error without an id ends
        the connection (the server closes it too); a reply to an unknown id is
        a protocol error.
        """
        while True:
            frame = self._next()
            fid = frame.header.get("id")
            if fid != request_id and fid is not None and fid in self._stale:
                continue
            if frame.type == "error":
                code = frame.header.get("code", E_INTERNAL)
                if fid is None:
                    self.close()
                raise BridgeError(code, frame.header.get("message", ""))
            if fid != request_id:
                self.close()
                raise BridgeError(
                    E_BAD_FRAME, f"reply {frame.type!r} for request {fid!r}, not {request_id!r}"
                )
            if frame.type == "progress":
                if on_progress is not None:
                    on_progress(frame.header)
                continue
            return frame

    # -- requests
    def hello(self):
        """Ask the server who it is; returns the hello reply header (a dict)."""
        rid = uuid.uuid4().hex
        self._send(
            {"type": "hello", "id": rid, "client": "tinct-protocol", "protocol": PROTOCOL_VERSION}
        )
        frame = self._reply(rid)
        if frame.type != "hello":
            raise BridgeError(E_BAD_FRAME, f"unexpected reply {frame.type!r} to hello")
        if frame.header.get("protocol_version") != PROTOCOL_VERSION:
            raise BridgeError(E_VERSION, str(VersionMismatch(frame.header.get("protocol_version"))))
        return frame.header

    def models(self):
        """The server's models with their weight status (list of dicts, default first)."""
        rid = uuid.uuid4().hex
        self._send({"type": "models", "id": rid})
        frame = self._reply(rid)
        if frame.type != "models":
            raise BridgeError(E_BAD_FRAME, f"unexpected reply {frame.type!r} to models")
        return frame.header.get("models") or []

    def colorize(
        self,
        width,
        height,
        fmt,
        pixels,
        model=None,
        temperature=None,
        decoder=None,
        mrf_weight=None,
        mrf_iters=None,
        hints=None,
        hint_layer=None,
        hint_size=None,
        reference=None,
        result_format=None,
        progress=None,
        request_id=None,
    ):
        """Colorize pixels on the server.

        Args:
            width: image width in pixels.
            height: image height in pixels.
            fmt: one of PIXEL_FORMATS ("gray8", "rgba8", ...); 16-bit is little-endian.
            pixels: row-major pixel bytes (len = width * height * bytes per pixel).
            model: model name (None = the server's default).
            temperature: annealed-mean temperature (None = model default).
            decoder: decoder name (None = model default).
            mrf_weight: MRF smoothing weight (None = off).
            mrf_iters: MRF sweeps (None = default).
            hints: list of dicts {row, col, r, g, b, size?}.
            hint_layer: rgba8 bytes of a width x height hint layer (opaque pixels are hints).
            hint_size: patch size for hint-layer hints (None = engine default).
            reference: optional (width, height, fmt, bytes) global-hint image.
            result_format: "rgb8" or "rgba8" (default: rgba8 if the input has alpha).
            progress: callback(fraction, message); returning False cancels. If it
                raises, the connection is closed and the exception propagates.
            request_id: optional id (used by cancel from another connection).

        Returns:
            ColorizeResult.

        Raises:
            BridgeError: the server replied with an error (code "cancelled" if
                cancelled: also when the result raced the cancel, it is dropped).
        """
        if fmt not in PIXEL_FORMATS:
            raise ValueError(f"unknown pixel format {fmt!r}")
        rid = request_id or uuid.uuid4().hex
        header = {
            "type": "colorize",
            "id": rid,
            "width": int(width),
            "height": int(height),
            "format": fmt,
        }
        options = {
            "model": model,
            "temperature": temperature,
            "decoder": decoder,
            "mrf_weight": mrf_weight,
            "mrf_iters": mrf_iters,
            "hint_size": hint_size,
            "result_format": result_format,
        }
        for key, value in options.items():
            if value is not None:
                header[key] = value
        if hints:
            header["hints"] = [dict(h) for h in hints]
        sections = [("image", pixels)]
        if hint_layer is not None:
            sections.append(
                ("hint_layer", hint_layer, {"width": width, "height": height, "format": "rgba8"})
            )
        if reference is not None:
            rw, rh, rfmt, rpix = reference
            sections.append(("reference", rpix, {"width": rw, "height": rh, "format": rfmt}))
        self._send(header, sections)
        cancelled = []

        def on_progress(h):
            if progress is None or cancelled:
                return
            try:
                keep = progress(float(h.get("fraction", 0.0)), str(h.get("message", "")))
            except BaseException:
                self.close()  # the request is abandoned mid-stream
                raise
            if keep is False and self._sock is not None:
                cancelled.append(True)
                cancel_id = rid + ":cancel"
                self._forget(cancel_id)  # its cancel_ack is not waited for
                self._send({"type": "cancel", "id": cancel_id, "request_id": rid})

        try:
            frame = self._reply(rid, on_progress)
        finally:
            if cancelled:
                self._forget(rid)
        if cancelled:
            raise BridgeError(E_CANCELLED, "cancelled (the result came too late and was dropped)")
        if frame.type != "result":
            raise BridgeError(E_BAD_FRAME, f"unexpected reply {frame.type!r} to colorize")
        h = frame.header
        return ColorizeResult(h["width"], h["height"], h["format"], frame.payload, h)

    def cancel(self, request_id):
        """Cancel a running request (from another connection); returns True if found."""
        rid = uuid.uuid4().hex
        self._send({"type": "cancel", "id": rid, "request_id": request_id})
        frame = self._reply(rid)
        if frame.type != "cancel_ack":
            raise BridgeError(E_BAD_FRAME, f"unexpected reply {frame.type!r} to cancel")
        return bool(frame.header.get("found"))
