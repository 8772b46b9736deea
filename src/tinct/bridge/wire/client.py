""":class:`BridgeClient`, the blocking client GIMP and the tests use, and :class:`ColorizeResult`.

Standard library only: ``tinct gimp install`` copies this package next to the
GIMP plug-in (see :mod:`tinct.bridge.wire`).
"""

from __future__ import annotations

import socket
import sys
import time
import uuid

from .config import read_bridge_config
from .frames import _last_error_frame, _readable_now, bounded_warnings, read_frame, send_frame
from .handshake import client_handshake
from .spec import (
    DEFAULT_HOST,
    E_BAD_FRAME,
    E_BUSY,
    E_CANCELLED,
    E_INTERNAL,
    E_TIMEOUT,
    E_VERSION,
    PIXEL_FORMATS,
    PROTOCOL_VERSION,
    BridgeError,
    ProtocolError,
    ServerNotRunning,
    VersionMismatch,
    _SocketTimeout,
)

__all__ = ["BridgeClient", "ColorizeResult"]


class ColorizeResult:
    """The pixels a colorize request returned.

    Attributes:
        width, height: size in pixels.
        format: "rgb8", "rgba8", "rgb16" or "rgba16" (16-bit: little-endian).
        pixels: row-major pixel bytes (a writable bytes-like buffer).
        header: the full result header.
        warnings: what the server said about the input, e.g. that it maps to nearly
            black (so the result is nearly black too): the header's ``"warnings"``
            within the protocol's bounds (:func:`~.frames.bounded_warnings`); empty
            when there are none, or the server predates the field.
    """

    __slots__ = ("format", "header", "height", "pixels", "warnings", "width")

    def __init__(self, width, height, fmt, pixels, header):
        self.width = width
        self.height = height
        self.format = fmt
        self.pixels = pixels
        self.header = header
        self.warnings = bounded_warnings(header.get("warnings"))


class BridgeClient:
    """A blocking client for the tinct server (one connection, reused).

    Every connection starts with the mutual authentication of
    :func:`client_handshake`; every request has an ``id`` and only replies
    with that id are taken as its answer (late replies to cancelled requests
    are dropped). After any error the client stays usable: a broken
    connection is reopened by the next request, and so is one the server has
    closed in the meantime (after its idle timeout, say): before a request goes
    out on a reused connection the client looks for the server's closing frame
    or end of stream, and then connects anew.

    Args:
        host: server address (loopback by default).
        port: TCP port; None or 0 reads it from bridge.json.
        token: auth token; None reads it from bridge.json.
        config_path: bridge.json to read (default: ``bridge_config_path()``).
        timeout: seconds to wait for connect, the handshake and each reply frame.
    """

    _STALE_KEEP = 64

    def __init__(self, host=None, port=None, token=None, config_path=None, timeout=60.0):
        self._token_source = None  # where the token came from, named if the peer lacks it
        if not port or token is None:
            cfg = read_bridge_config(config_path)
            port = port or int(cfg["port"])
            if token is None:
                token, self._token_source = cfg["token"], str(config_path or "bridge.json")
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
        except ConnectionRefusedError:  # what a stopped server looks like
            message = f"the tinct server is not running (nothing answers on {where})"
            raise ServerNotRunning(message) from None
        except OSError as exc:  # the reason without Python's "[Errno 113]"
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise ServerNotRunning(f"cannot reach the tinct server on {where} ({reason})") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client_handshake(
                sock, self.token, time.monotonic() + self.timeout, source=self._token_source
            )
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

    def _drop_if_closed(self):
        """Close a reused connection that the server has closed or is closing.

        Only frames that need no answer can be waiting between requests: late
        replies to forgotten requests (skipped) and a connection-level error
        without an id, such as the idle timeout's, after which the server closes.
        """
        sock = self._sock
        if sock is None:
            return
        try:
            while _readable_now(sock):
                frame = read_frame(sock, max_frame_bytes=sys.maxsize)
                fid = frame.header.get("id")
                if fid is None or fid not in self._stale:
                    break  # the server's closing error, or a frame nobody waits for
            else:
                return  # nothing waiting: the connection is fine
        except (ProtocolError, OSError):  # end of stream, reset
            pass
        self.close()

    def _send(self, header, sections=None, new_request=True):
        if new_request:
            self._drop_if_closed()
        sock = self.connect()
        try:
            send_frame(sock, header, sections)
        except OSError as exc:
            last = _last_error_frame(sock, self.timeout)
            self.close()
            if last is not None:  # why the server closed: shutting down, a limit, ...
                raise BridgeError(last.get("code", E_INTERNAL), last.get("message", "")) from None
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
        local_hints=None,
        normalize=None,
        precision=None,
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
            result_format: "rgb8", "rgba8", "rgb16" or "rgba16" (default: rgba8 if the
                input has alpha, else rgb8).
            progress: callback(fraction, message); returning False cancels. If it
                raises, the connection is closed and the exception propagates.
            request_id: optional id (used by cancel from another connection).
            local_hints: True keeps each hint's colour in its region (None = the default, off).
            normalize: how intensities map to gray ("dtype" = 0..65535 is black..white for
                16-bit pixels; None = the server's "auto", which stretches 16-bit data).
            precision: how the user knows the data ("16-bit integer"), named in the warnings.

        Returns:
            ColorizeResult; its ``warnings`` are the server's notes about the input
            (show them to the user: they explain a poor result).

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
            "local_hints": local_hints,
            "normalize": normalize,
            "precision": precision,
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
                self._send(
                    {"type": "cancel", "id": cancel_id, "request_id": rid}, new_request=False
                )

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
