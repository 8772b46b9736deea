"""The server-wide budget of request payloads held in memory at once.

Each frame's payload is bounded by ``max_frame_bytes``, but every connection may
send one: 32 connections uploading 800 MiB each would hold 25 GiB. A
:class:`PayloadBudget` bounds their sum. A connection reserves a large payload's
bytes once its header has arrived, before a byte of the payload is read, and
gives them back when the request is done (its result sent, or refused); a
payload that does not fit is refused with ``busy``
(:mod:`tinct.bridge.connection`). Small frames (at most :data:`EXEMPT_BYTES`:
``hello``, ``cancel``, small images) are never refused.
"""

from __future__ import annotations

import threading

from tinct.bridge import wire as P

__all__ = ["EXEMPT_BYTES", "PayloadBudget"]

#: Payloads up to this size need no reservation (4 MiB: what a frame sent while a job
#: runs may hold, and far more than any request without an image).
EXEMPT_BYTES = P.DEFAULT_MAX_HEADER_BYTES


class PayloadBudget:
    """Bytes of request payloads the connections may hold at once.

    Args:
        limit: the most bytes reserved at once; a single payload up to ``limit``
            always fits when nothing else is reserved.

    Attributes:
        limit: see Args.
    """

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Bytes reserved now."""
        return self._used

    def reserve(self, nbytes: int) -> int:
        """Reserve ``nbytes`` for a payload about to be read.

        Returns:
            The bytes reserved, to :meth:`release` later: 0 for a payload of at most
            :data:`EXEMPT_BYTES`, else ``nbytes``.

        Raises:
            ProtocolError: ``busy``: the other payloads held now leave too little room.
        """
        if nbytes <= EXEMPT_BYTES:
            return 0
        with self._lock:
            if self._used + nbytes > self.limit:
                used = self._used
            else:
                self._used += nbytes
                return nbytes
        mib = 1024 * 1024
        raise P.ProtocolError(
            P.E_BUSY,
            f"the server holds {used / mib:.4g} MiB of other requests, and this one "
            f"({nbytes / mib:.4g} MiB) would take it past its limit of "
            f"{self.limit / mib:.4g} MiB for all requests at once (max_held_bytes)",
        )

    def release(self, nbytes: int) -> None:
        """Give back bytes that :meth:`reserve` returned."""
        if nbytes:
            with self._lock:
                self._used = max(0, self._used - nbytes)
