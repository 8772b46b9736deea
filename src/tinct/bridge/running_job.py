"""A ``colorize`` request while it runs on a connection: progress out, frames in.

:func:`run_colorize` runs the job on the backend in a worker thread (its
``prepare`` first, outside the engine lock, then the colorization under it)
while the connection's thread sends a progress frame whenever the progress
changes and at least every ``heartbeat`` seconds, and reads what the client
sends meanwhile without ever waiting for it (:func:`read_during_job`, with
:class:`~tinct.bridge.partial_frame.PartialFrame`): a ``cancel`` is answered
with ``cancel_ack`` and stops the job, any other request is ``busy``, a broken or
stalled frame or a vanished client ends the connection and cancels the job.
The ``result`` frame carries the warnings the engine raised about the input
(:mod:`tinct.bridge.job_warnings`). The connection itself (handshake, requests,
error frames) is :mod:`tinct.bridge.connection`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from tinct.bridge import wire as P
from tinct.bridge.backend import ColorizeJob, RequestError
from tinct.bridge.job_warnings import caught_warnings, for_client
from tinct.bridge.partial_frame import JOB_FRAME_BYTES, JOB_FRAME_LIMIT, PartialFrame
from tinct.bridge.request import check_request_id, encode_result, show
from tinct.bridge.sockio import _readable

if TYPE_CHECKING:
    from tinct.bridge.connection import Connection

__all__ = [
    "read_during_job",
    "run_colorize",
]

log = logging.getLogger("tinct.bridge.server")


def run_colorize(conn: Connection, frame: P.Frame) -> bool:
    """Run one colorize request; progress frames go out while it waits for the engine.

    Args:
        conn: the connection the request came on.
        frame: the ``colorize`` frame.

    Returns:
        False when the connection ends.

    Raises:
        RequestError: the request is refused (before or while it runs).
    """
    server, sock, peer = conn.server, conn.sock, conn.peer
    job = server.parse_colorize(frame)
    t0 = time.monotonic()
    state: dict[str, Any] = {"progress": (0.0, "queued"), "sent": None}
    done = threading.Event()

    def progress(fraction: float, message: str = "") -> None:
        state["progress"] = (float(fraction), str(message))

    def work() -> None:
        try:
            prepare = getattr(server.backend, "prepare", None)
            if prepare is not None:  # e.g. a download: never under the engine lock
                prepare(job)
            place = server._engine_lock.join()  # first come, first served
            try:
                while not place.wait(timeout=0.1):
                    if job.cancel.is_set():
                        return
            finally:
                place.leave()  # a cancelled job's place (no-op once it has the lock)
            try:
                if job.cancel.is_set():
                    return
                progress(0.02, "colorizing")
                t1 = time.monotonic()
                with caught_warnings() as told:  # e.g. a nearly black input
                    out = server.backend.colorize(job, progress)
                state["engine_s"] = time.monotonic() - t1
                state["warnings"] = told
                progress(0.97, "encoding result")
                state["result"] = encode_result(job, out)
            finally:
                server._engine_lock.release()
        except BaseException as exc:
            state["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=work, name="tinct-job", daemon=True)
    server._add_job(conn, job, worker)
    try:
        worker.start()
        last_send = 0.0
        while not done.wait(0.05):
            now = time.monotonic()
            if state["progress"] != state["sent"] or now - last_send >= server.heartbeat:
                fraction, message = state["progress"]
                P.send_frame(
                    sock,
                    {
                        "type": "progress",
                        "id": job.request_id,
                        "fraction": fraction,
                        "message": message,
                    },
                )
                state["sent"] = state["progress"]
                last_send = now
            if not read_during_job(conn, job):
                return False
            if job.cancel.is_set():
                return _send_cancelled(conn, job)
    finally:
        if not done.is_set():
            job.cancel.set()  # the client is gone or the reply failed: stop the work
        server._drop_job(conn, job)
    if job.cancel.is_set():
        return _send_cancelled(conn, job)
    if "error" in state:
        raise state["error"]
    pixels = state["result"]
    header = {
        "type": "result",
        "id": job.request_id,
        "width": job.image.shape[1],
        "height": job.image.shape[0],
        "format": job.result_format,
        "engine_s": round(state.get("engine_s", 0.0), 4),
        "elapsed_s": round(time.monotonic() - t0, 4),
    }
    for text in dict.fromkeys(state.get("warnings", ())):  # the server's log keeps each one
        log.warning("request %s from %s: warning: %s", show(job.request_id), peer, text)
    told = for_client(state.get("warnings", ()), job.precision)
    if told:  # optional: a client that predates the field ignores it
        header["warnings"] = told
    P.send_frame(sock, header, [("image", pixels)])
    log.info(
        "colorized %dx%d for %s in %.2fs",
        job.image.shape[1],
        job.image.shape[0],
        peer,
        time.monotonic() - t0,
    )
    return True


def _send_cancelled(conn: Connection, job: ColorizeJob) -> bool:
    """End a cancelled job with its ``cancelled`` error (it says so when the server stops)."""
    if conn.server._stopping.is_set():
        log.info("request %s from %s cancelled: shutting down", show(job.request_id), conn.peer)
        message = "cancelled: the server is shutting down"
    else:
        log.info("request %s from %s cancelled", show(job.request_id), conn.peer)
        message = "cancelled"
    return conn._send_error(P.E_CANCELLED, message, job.request_id)


def read_during_job(conn: Connection, job: ColorizeJob) -> bool:
    """Take what has arrived while a job runs, without waiting (only ``cancel`` is allowed).

    Bytes are read as they come, so progress frames keep going while a frame
    is still arriving; a frame begun is kept in ``conn.partial`` (the
    connection's next read finishes it when the job ends first). A complete
    ``cancel`` naming this job (or none) cancels it; one naming another id
    cancels those jobs. Each is answered with ``cancel_ack``, any other request
    with ``busy``; a payload may be at most
    :data:`~tinct.bridge.partial_frame.JOB_FRAME_BYTES` (4 MiB). A frame that breaks
    the protocol or misses its deadline gets the error frame it gets between
    requests; that, and a closed connection, end the connection and cancel the job.

    Args:
        conn: the connection the job runs on.
        job: the running job.

    Returns:
        False when the connection ends.
    """
    if conn.partial is None:
        if not _readable(conn.sock, 0.0):
            return True
        conn.partial = PartialFrame(conn.server, JOB_FRAME_BYTES, JOB_FRAME_LIMIT)
    partial = conn.partial
    try:
        frame = partial.receive(conn.sock) if _readable(conn.sock, 0.0) else None
        if frame is None:
            partial.check_deadline()
            return True
    except (P.ProtocolError, TimeoutError) as exc:
        conn.partial = None
        job.cancel.set()
        if isinstance(exc, P.ConnectionClosed):
            log.info("%s went away during a job: %s", conn.peer, exc.message)
            return False
        return conn._frame_failed(exc)
    except OSError as exc:
        conn.partial = None
        log.info("%s went away during a job: %s", conn.peer, exc)
        job.cancel.set()
        return False
    conn.partial = None
    try:
        rid = check_request_id(frame.header)
    except RequestError:
        rid = None  # a malformed id is not echoed
    if frame.type != "cancel":
        conn._send_error(P.E_BUSY, "only cancel is allowed while a request runs", rid)
        return True
    try:
        target = check_request_id(frame.header, "request_id")
    except RequestError as exc:
        conn._send_error(exc.code, exc.message, rid)
        return True
    found = target is None or target == job.request_id
    if found:
        job.cancel.set()
    if target is not None:
        found = conn.server._cancel_job(target) or found
    conn._reply({"type": "cancel_ack", "request_id": target, "found": found}, rid)
    return True
