"""Socket helpers of the bridge server: waiting for input, closing without losing a reply."""

from __future__ import annotations

import contextlib
import select
import socket
import time

__all__ = []


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for input (or EOF) on ``sock``.

    ``poll`` where there is one: ``select`` fails for descriptors above 1023.
    """
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(max(0, int(timeout * 1000))))
    readable, _, _ = select.select([sock], [], [], timeout)
    return bool(readable)


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
