"""The mutual token handshake: nonces, proofs and the client side of ``auth``.

Standard library only: ``tinct gimp install`` copies this package next to the
GIMP plug-in (see :mod:`tinct.bridge.wire`).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from .frames import (
    read_frame,
    send_frame,
)
from .spec import (
    _NONCE_BYTES,
    _PROOF_LABELS,
    AUTH_MAX_HEADER_BYTES,
    E_BAD_FRAME,
    E_INTERNAL,
    PROTOCOL_VERSION,
    BridgeError,
    ProtocolError,
    ServerUnverified,
)

__all__ = [
    "auth_proof",
    "client_handshake",
    "is_nonce",
    "new_nonce",
    "proof_matches",
]


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


def client_handshake(sock, token, deadline=None, client="tinct-protocol", source="bridge.json"):
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
        source: the file the token was read from, named if the peer cannot prove it
            holds the token; ``None`` for a token the caller gave.

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
        what = f"the token in {source}" if source else "the token given"
        why = (
            f"{source} is stale or belongs to another server" if source else "it is another server"
        )
        raise ServerUnverified(
            f"the process on this port could not prove that it holds {what} "
            f"({why}, or the token is wrong); nothing secret was sent to it"
        )
    proof = auth_proof(token, "client", client_nonce, server_nonce)
    send_frame(sock, {"type": "auth_response", "client_proof": proof})
    frame = _read_small(sock, deadline)
    if frame.type == "error":
        raise BridgeError(frame.header.get("code", E_INTERNAL), frame.header.get("message", ""))
    if frame.type != "auth_ok":
        raise ProtocolError(E_BAD_FRAME, f"expected auth_ok, got {frame.type!r}")
    return frame.header
