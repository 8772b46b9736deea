"""The tinct bridge wire protocol and its client (standard library only).

This package is both ``tinct.bridge.wire`` and the GIMP plug-in's ``tinct_wire``
(``tinct gimp install`` copies it next to the plug-in, so there is one copy of
the protocol); it therefore uses only the standard library, imports its own
modules relatively, and runs on Python 3.8 (GIMP's bundled interpreter on
Windows and macOS). Its modules: :mod:`.spec` (constants, limits, errors),
:mod:`.frames` (framing), :mod:`.headerjson` (decoding headers within bounds),
:mod:`.handshake` (authentication), :mod:`.config` (``bridge.json``) and
:mod:`.client` (:class:`BridgeClient`). See ``docs/protocol.md`` for the full
specification.

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

from .client import (
    BridgeClient,
    ColorizeResult,
)
from .config import (
    bridge_config_path,
    config_dir,
    process_identity,
    read_bridge_config,
    server_gone,
)
from .frames import (
    bounded_warnings,
    build_header,
    decode_frame,
    encode_frame,
    error_header,
    parse_header,
    parse_prefix,
    read_frame,
    read_header,
    read_payload,
    send_frame,
)
from .handshake import (
    auth_proof,
    client_handshake,
    is_nonce,
    new_nonce,
    proof_matches,
)
from .headerjson import (
    loads_header,
)
from .spec import (
    AUTH_MAX_HEADER_BYTES,
    DEFAULT_HOST,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADER_VALUES,
    DEFAULT_MAX_HINTS,
    DEFAULT_MAX_MRF_ITERS,
    DEFAULT_MAX_PIXELS,
    E_BAD_FRAME,
    E_BAD_REQUEST,
    E_BUSY,
    E_CANCELLED,
    E_INTERNAL,
    E_SHUTTING_DOWN,
    E_TIMEOUT,
    E_TOO_LARGE,
    E_UNAUTHORIZED,
    E_UNKNOWN_MODEL,
    E_UNKNOWN_TYPE,
    E_VERSION,
    MAGIC,
    MAX_JSON_DEPTH,
    MAX_RESULT_WARNINGS,
    MAX_WARNING_CHARS,
    PIXEL_FORMATS,
    PREFIX,
    PROTOCOL_VERSION,
    RESULT_FORMATS,
    START_HINT,
    BridgeError,
    ConnectionClosed,
    Frame,
    ProtocolError,
    ServerNotRunning,
    ServerUnverified,
    VersionMismatch,
)

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
    "bounded_warnings",
    "bridge_config_path",
    "build_header",
    "client_handshake",
    "config_dir",
    "decode_frame",
    "encode_frame",
    "error_header",
    "is_nonce",
    "loads_header",
    "new_nonce",
    "parse_header",
    "parse_prefix",
    "process_identity",
    "proof_matches",
    "read_bridge_config",
    "read_frame",
    "read_header",
    "read_payload",
    "send_frame",
    "server_gone",
]
