"""Reaching a running Dask scheduler quickly, or saying why not (``tinct batch --scheduler``).

:class:`distributed.Client` waits ``distributed.comm.timeouts.connect`` (30 s) for an address
that refuses connections, and for ever for one where something else listens and never
answers Dask's handshake (a typo in the port). :func:`check_scheduler` asks the address
who it is (Dask's ``identity`` call) under one overall deadline, in a thread of its own
(so it works whether or not the caller runs an event loop), and raises
:class:`SchedulerUnreachableError` with a one-line reason when no scheduler answers in time.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "SchedulerUnreachableError", "check_scheduler"]

#: Seconds a scheduler has to answer by default; a slow cluster may be given more.
DEFAULT_CONNECT_TIMEOUT = 5.0


class SchedulerUnreachableError(ConnectionError):
    """No Dask scheduler answered at an address within the connect timeout."""


async def _identity(address: str, timeout: float, box: dict[str, Any]) -> Any:
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout + 1.0)  # the caller's deadline comes first
    box["connected"] = True  # connect() bounds the TCP connection but not Dask's handshake
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_scheduler(address: str, timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
    """Make sure a Dask scheduler answers at ``address`` within ``timeout`` seconds.

    Args:
        address: The scheduler address, e.g. ``tcp://host:8786``.
        timeout: Seconds for connecting and the scheduler's answer together.

    Raises:
        SchedulerUnreachableError: Nothing listens there, the host is unknown, or
            what listens does not answer as a Dask scheduler in time.
    """
    box: dict[str, Any] = {}

    def probe() -> None:
        try:
            box["reply"] = asyncio.run(asyncio.wait_for(_identity(address, timeout, box), timeout))
        except BaseException as exc:  # told below, in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=probe, name="tinct-scheduler-probe", daemon=True)
    thread.start()
    thread.join(timeout + 2.0)  # the probe's own deadline is ``timeout``: this is a backstop
    within = f"within {timeout:g} s"
    error = box.get("error")
    if thread.is_alive() or isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        raise SchedulerUnreachableError(
            f"no Dask scheduler answered at {address} {within} (check the host and the port, "
            "and that the scheduler runs)"
        )
    if error is not None:
        stage = "no Dask scheduler at" if box.get("connected") else "cannot connect to"
        raise SchedulerUnreachableError(f"{stage} {address} ({_why(error)})")
    reply = box.get("reply")
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        kind = reply.get("type") if isinstance(reply, dict) else None
        what = f"a Dask {kind}" if isinstance(kind, str) else "something else"
        raise SchedulerUnreachableError(f"{address} is {what}, not a Dask scheduler")
