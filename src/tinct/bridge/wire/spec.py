"""Protocol constants, size limits, error codes, exceptions and :class:`Frame`.

Standard library only: ``tinct gimp install`` copies this package next to the
GIMP plug-in (see :mod:`tinct.bridge.wire`).
"""

from __future__ import annotations

import socket
import struct

__all__ = [
    "AUTH_MAX_HEADER_BYTES",
    "DEFAULT_HOST",
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_HEADER_VALUES",
    "DEFAULT_MAX_HINTS",
    "DEFAULT_MAX_MRF_ITERS",
    "DEFAULT_MAX_PIXELS",
    "E_BAD_FRAME",
    "E_BAD_REQUEST",
    "E_BUSY",
    "E_CANCELLED",
    "E_INTERNAL",
    "E_SHUTTING_DOWN",
    "E_TIMEOUT",
    "E_TOO_LARGE",
    "E_UNAUTHORIZED",
    "E_UNKNOWN_MODEL",
    "E_UNKNOWN_TYPE",
    "E_VERSION",
    "MAGIC",
    "MAX_JSON_DEPTH",
    "MAX_RESULT_WARNINGS",
    "MAX_WARNING_CHARS",
    "PIXEL_FORMATS",
    "PREFIX",
    "PROTOCOL_VERSION",
    "RESULT_FORMATS",
    "START_HINT",
    "BridgeError",
    "ConnectionClosed",
    "Frame",
    "ProtocolError",
    "ServerNotRunning",
    "ServerUnverified",
    "VersionMismatch",
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
#: Most values in a header, counted as its ``[``, ``{`` and ``,`` outside strings
#: (each costs ~50 bytes to ~200 bytes once parsed): a header with ``DEFAULT_MAX_HINTS``
#: point hints has about 14,400. A server allows ``16 * max_hints + 4096`` when more.
DEFAULT_MAX_HEADER_VALUES = 16 * DEFAULT_MAX_HINTS + 4096
_MAX_INT_DIGITS = 40
START_HINT = "Start the server with: tinct serve"
#: Most warnings a ``result`` frame carries, and the most characters in each.
MAX_RESULT_WARNINGS = 8
MAX_WARNING_CHARS = 500

#: Pixel formats a request may carry, with their bytes per pixel.
PIXEL_FORMATS = {
    "gray8": 1,
    "gray16": 2,
    "rgb8": 3,
    "rgba8": 4,
    "rgb16": 6,
    "rgba16": 8,
}
#: Pixel formats a result may carry (16-bit: little-endian, as in requests).
RESULT_FORMATS = ("rgb8", "rgba8", "rgb16", "rgba16")

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
E_SHUTTING_DOWN = "shutting_down"

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
    """Nothing listens on the port, or no (live) bridge.json says where the server is.

    ``advice`` ends the message: :data:`START_HINT` unless the fault is the path the
    client was given (a folder, a file that cannot be bridge.json), which a started
    server would not mend.
    """

    def __init__(self, message, advice=START_HINT):
        BridgeError.__init__(self, "not_running", message + ". " + advice)


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
