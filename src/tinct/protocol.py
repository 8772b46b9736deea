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

Example:
    >>> with BridgeClient() as client:  # reads port and token from bridge.json
    ...     info = client.hello()
    ...     res = client.colorize(w, h, "rgba8", pixels)
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time
import uuid

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_PIXELS",
    "MAGIC",
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
    "VersionMismatch",
    "bridge_config_path",
    "config_dir",
    "decode_frame",
    "encode_frame",
    "error_header",
    "read_bridge_config",
    "read_frame",
    "read_header",
    "read_payload",
    "send_frame",
]

PROTOCOL_VERSION = 1
MAGIC = b"TNCT"
PREFIX = struct.Struct("<4sHI")  # magic, version, header length
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_HEADER_BYTES = 4 * 1024 * 1024
#: Fits an 8192x8192 rgba16 image (512 MiB) plus an rgba8 hint layer (256 MiB).
DEFAULT_MAX_FRAME_BYTES = 800 * 1024 * 1024
DEFAULT_MAX_PIXELS = 8192 * 8192
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
#: socket.timeout is only an alias of TimeoutError from Python 3.10 on.
_SocketTimeout = socket.timeout


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
    """Nothing listens on the port, or no bridge.json says where the server is."""

    def __init__(self, message):
        BridgeError.__init__(self, "not_running", message + ". " + START_HINT)


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


def _recv_exact(sock, n, at_start=False, deadline=None):
    """Read exactly n bytes into a bytearray (raises ConnectionClosed on EOF)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None and time.monotonic() > deadline:
            raise _SocketTimeout("frame not completed in time")
        k = sock.recv_into(view[got:], min(n - got, _CHUNK))
        if k == 0:
            if at_start and got == 0:
                raise ConnectionClosed("connection closed")
            raise ConnectionClosed(
                f"connection closed mid-frame ({got} of {n} bytes)", mid_frame=True
            )
        got += k
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


def parse_header(raw, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
    """Decode and validate the JSON header bytes (payload size, sections)."""
    try:
        header = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(E_BAD_FRAME, f"header is not valid UTF-8 JSON: {exc}") from None
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
            f"payload of {size} bytes exceeds the server limit of {max_frame_bytes} bytes "
            f"({max_frame_bytes // (1024 * 1024)} MiB)",
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

    Raises:
        ConnectionClosed: EOF (``mid_frame`` tells whether a frame had begun).
        VersionMismatch: the peer speaks another protocol version.
        ProtocolError: bad magic, oversize or malformed header.
    """
    prefix = _recv_exact(sock, PREFIX.size, at_start=True, deadline=deadline)
    hlen = parse_prefix(prefix, max_header_bytes)
    raw = _recv_exact(sock, hlen, deadline=deadline)
    if max_frame_bytes is None:
        max_frame_bytes = sys.maxsize
    return parse_header(raw, max_frame_bytes)


def read_payload(sock, header, deadline=None):
    """Read the payload announced by a header; returns a bytearray."""
    return _recv_exact(sock, header["payload_bytes"], deadline=deadline)


def read_frame(
    sock, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES, max_header_bytes=DEFAULT_MAX_HEADER_BYTES
):
    """Read one complete frame from a socket and return a Frame."""
    header = read_header(sock, max_header_bytes, max_frame_bytes)
    return Frame(header, read_payload(sock, header))


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


def read_bridge_config(path=None):
    """Read bridge.json; returns a dict with at least "port" and "token".

    Raises:
        ServerNotRunning: the file is missing or unreadable.
    """
    path = path or bridge_config_path()
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError:
        raise ServerNotRunning(f"no tinct server found ({path} does not exist)") from None
    except ValueError:
        raise ServerNotRunning(f"{path} is not valid JSON") from None
    if not isinstance(data, dict) or "port" not in data or "token" not in data:
        raise ServerNotRunning(f"{path} lacks a port or token")
    return data


# --------------------------------------------------------------------------- client


class ColorizeResult:
    """The pixels a colorize request returned.

    Attributes:
        width, height: size in pixels.
        format: "rgb8" or "rgba8".
        pixels: row-major pixel bytes (bytearray).
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

    Args:
        host: server address (loopback by default).
        port: TCP port; None or 0 reads it from bridge.json.
        token: auth token; None reads it from bridge.json.
        config_path: bridge.json to read (default: ``bridge_config_path()``).
        timeout: seconds to wait for connect and for each reply frame.
    """

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

    # -- connection
    def connect(self):
        """Open the connection (done lazily by every request)."""
        if self._sock is None:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            except (ConnectionRefusedError, _SocketTimeout) as exc:
                raise ServerNotRunning(
                    f"cannot reach the tinct server on {self.host}:{self.port} ({exc})"
                ) from None
            except OSError as exc:
                raise ServerNotRunning(
                    f"cannot reach the tinct server on {self.host}:{self.port} ({exc})"
                ) from None
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
        return self._sock

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
        header = dict(header)
        header["token"] = self.token
        sock = self.connect()
        try:
            send_frame(sock, header, sections)
        except OSError as exc:
            self.close()
            raise BridgeError("closed", f"connection lost while sending: {exc}") from None

    def _recv(self):
        try:
            frame = read_frame(self._sock, max_frame_bytes=sys.maxsize)
        except ProtocolError as exc:
            self.close()
            raise BridgeError(exc.code, exc.message) from None
        except _SocketTimeout:
            self.close()
            raise BridgeError(E_TIMEOUT, f"no reply from the server in {self.timeout:g}s") from None
        except OSError as exc:
            self.close()
            raise BridgeError("closed", f"connection lost: {exc}") from None
        if frame.type == "error":
            code = frame.header.get("code", E_INTERNAL)
            if code in (E_UNAUTHORIZED, E_VERSION, E_BAD_FRAME, E_TOO_LARGE):
                self.close()  # the server closes these connections
            raise BridgeError(code, frame.header.get("message", ""))
        return frame

    # -- requests
    def hello(self):
        """Ask the server who it is; returns the hello reply header (a dict)."""
        self._send({"type": "hello", "client": "tinct-protocol", "protocol": PROTOCOL_VERSION})
        frame = self._recv()
        if frame.header.get("protocol_version") != PROTOCOL_VERSION:
            raise BridgeError(E_VERSION, str(VersionMismatch(frame.header.get("protocol_version"))))
        return frame.header

    def models(self):
        """The server's models with their weight status (list of dicts, default first)."""
        self._send({"type": "models"})
        return self._recv().header.get("models") or []

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
            progress: callback(fraction, message); returning False cancels.
            request_id: optional id (used by cancel from another connection).

        Returns:
            ColorizeResult.

        Raises:
            BridgeError: the server replied with an error (code "cancelled" if cancelled).
        """
        if fmt not in PIXEL_FORMATS:
            raise ValueError(f"unknown pixel format {fmt!r}")
        header = {
            "type": "colorize",
            "id": request_id or uuid.uuid4().hex,
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
        cancelled = False
        while True:
            frame = self._recv()
            if frame.type == "progress":
                if progress is not None and not cancelled:
                    keep = progress(
                        float(frame.header.get("fraction", 0.0)), frame.header.get("message", "")
                    )
                    if keep is False:
                        cancelled = True
                        self._send({"type": "cancel", "request_id": header["id"]})
                continue
            if frame.type != "result":
                raise BridgeError(E_BAD_FRAME, f"unexpected reply {frame.type!r}")
            h = frame.header
            return ColorizeResult(h["width"], h["height"], h["format"], frame.payload, h)

    def cancel(self, request_id):
        """Cancel a running request (from another connection); returns True if found."""
        self._send({"type": "cancel", "request_id": request_id})
        return bool(self._recv().header.get("found"))
