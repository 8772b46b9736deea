"""The tinct bridge server: colorization over a local, authenticated TCP socket.

Hosts (the GIMP plug-in, scripts) send frames defined in :mod:`tinct.protocol`
to a long-running process that holds the model. The server binds loopback only,
authenticates every request with a random token stored in a user-only
``bridge.json``, isolates connections from each other (a thread each, errors
never escape a connection) and runs one colorization at a time on the shared
engine while streaming progress frames.

The colorizer is injected, so the server can be tested with a fake and the
napari plugin can serve its already loaded model::

    handle = start_server_in_thread(colorizer, port=0)
    ...  # GIMP now finds the server through bridge.json
    handle.stop()
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinct import protocol as P
from tinct.backend import (  # re-exported: part of this module's API
    Backend,
    ColorizeJob,
    EngineBackend,
    PointHint,
    RequestError,
)

__all__ = [
    "Backend",
    "BridgeServer",
    "ColorizeJob",
    "EngineBackend",
    "PointHint",
    "RequestError",
    "ServerHandle",
    "remove_bridge_config",
    "start_server_in_thread",
    "write_bridge_config",
]

log = logging.getLogger("tinct.server")


# --------------------------------------------------------------------------- config file


def write_bridge_config(path: str | os.PathLike[str], host: str, port: int, token: str) -> Path:
    """Atomically write bridge.json (port, token) readable by the user only (0600).

    Args:
        path: file to write; its folder is created with mode 0700.
        host: address the server listens on.
        port: TCP port.
        token: authentication token.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {
        "host": host,
        "port": int(port),
        "token": token,
        "pid": os.getpid(),
        "protocol_version": P.PROTOCOL_VERSION,
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def remove_bridge_config(path: str | os.PathLike[str], token: str) -> None:
    """Delete bridge.json if it still belongs to the server holding ``token``."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("token") == token:
            os.unlink(path)
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------- the server


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = os.name != "nt"
    block_on_close = False

    def __init__(self, addr: tuple[str, int], bridge: BridgeServer) -> None:
        self.bridge = bridge
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = family
        super().__init__(addr, _Handler, bind_and_activate=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("unhandled error on connection from %s", client_address)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.bridge._serve_connection(self.request, self.client_address)  # type: ignore[attr-defined]


class BridgeServer:
    """The bridge server.

    Args:
        backend: a :class:`Backend`; default: an :class:`EngineBackend` built from
            ``colorizer`` / ``colorizer_factory`` / ``model`` / ``device``.
        colorizer: a loaded colorizer (``.colorize(image, hints=..., ...)``).
        colorizer_factory: ``factory(model_name) -> colorizer``.
        model: default model name.
        device: engine device when the server builds the colorizer itself.
        host: address to bind (loopback unless ``allow_remote``).
        port: TCP port (0 = pick a free one).
        allow_remote: allow a non-loopback ``host``.
        token: auth token (default: a fresh ``secrets.token_urlsafe(32)``).
        config_path: where to write bridge.json; None = the user default,
            False = do not write one.
        max_frame_bytes: largest accepted payload.
        max_pixels: largest accepted image (width x height).
        read_timeout: seconds a started frame may stall before the connection drops.
        idle_timeout: seconds an idle connection is kept open.
        max_connections: concurrent connections; more are refused with ``busy``.
        heartbeat: seconds between progress frames while colorizing.

    Raises:
        ValueError: a non-loopback host without ``allow_remote``.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        colorizer: Any = None,
        colorizer_factory: Callable[[str], Any] | None = None,
        model: str | None = None,
        device: str = "auto",
        host: str = P.DEFAULT_HOST,
        port: int = 0,
        allow_remote: bool = False,
        token: str | None = None,
        config_path: str | os.PathLike[str] | bool | None = None,
        max_frame_bytes: int = P.DEFAULT_MAX_FRAME_BYTES,
        max_pixels: int = P.DEFAULT_MAX_PIXELS,
        read_timeout: float = 30.0,
        idle_timeout: float = 300.0,
        max_connections: int = 32,
        heartbeat: float = 1.0,
    ) -> None:
        if not _is_loopback(host) and not allow_remote:
            raise ValueError(
                f"refusing to listen on {host!r}: only loopback is allowed without allow_remote"
            )
        self.backend: Backend = backend or EngineBackend(
            colorizer=colorizer, colorizer_factory=colorizer_factory, model=model, device=device
        )
        self.token = token or secrets.token_urlsafe(32)
        self.max_frame_bytes = int(max_frame_bytes)
        self.max_pixels = int(max_pixels)
        self.read_timeout = float(read_timeout)
        self.idle_timeout = float(idle_timeout)
        self.max_connections = int(max_connections)
        self.heartbeat = float(heartbeat)
        if config_path is None or config_path is True:
            self.config_path: Path | None = Path(P.bridge_config_path())
        elif config_path is False:
            self.config_path = None
        else:
            self.config_path = Path(config_path)
        self._tcp = _TCPServer((host, int(port)), self)
        self.host = host
        self._engine_lock = threading.Lock()
        self._conn_lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._jobs: dict[str, ColorizeJob] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self.stats = {"connections": 0, "requests": 0, "errors": 0}
        if self.config_path is not None:
            write_bridge_config(self.config_path, host, self.port, self.token)
        log.info("tinct bridge listening on %s:%d", host, self.port)

    # -- lifecycle
    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._tcp.server_address[1])

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` is called (blocks)."""
        self._started = True
        self._tcp.serve_forever(poll_interval=0.2)

    def start(self) -> BridgeServer:
        """Serve in a daemon thread; returns self."""
        self._started = True
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"tinct-bridge-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop accepting, drop open connections, remove bridge.json (idempotent).

        Must not be called from the thread running :meth:`serve_forever`.
        """
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._started:  # socketserver's shutdown() waits for serve_forever()
            self._tcp.shutdown()
        self._tcp.server_close()
        with self._conn_lock:
            conns = list(self._conns)
            for job in self._jobs.values():
                job.cancel.set()
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.config_path is not None:
            remove_bridge_config(self.config_path, self.token)
        log.info("tinct bridge on port %d stopped", self.port)

    close = shutdown

    def __enter__(self) -> BridgeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- one connection
    def _serve_connection(self, sock: socket.socket, addr: Any) -> None:
        peer = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
        with self._conn_lock:
            self.stats["connections"] += 1
            too_many = len(self._conns) >= self.max_connections
            if not too_many:
                self._conns.add(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if too_many:
                log.warning("refusing %s: %d connections open", peer, self.max_connections)
                self._send_error(sock, P.E_BUSY, "too many connections")
                return
            log.debug("connection from %s", peer)
            while not self._stopping.is_set() and self._serve_one(sock, peer):
                pass
        except Exception:  # isolation: nothing escapes one connection
            self.stats["errors"] += 1
            log.exception("connection %s failed", peer)
        finally:
            with self._conn_lock:
                self._conns.discard(sock)
            _graceful_close(sock)

    def _serve_one(self, sock: socket.socket, peer: str) -> bool:
        """Read and answer one request; returns False when the connection ends."""
        readable, _, _ = select.select([sock], [], [], self.idle_timeout)
        if not readable:
            log.info("closing idle connection %s", peer)
            return False
        sock.settimeout(self.read_timeout)
        try:
            header = P.read_header(sock, max_frame_bytes=self.max_frame_bytes)
            if not self._authorized(header):
                log.warning("refused %s: bad token", peer)
                self._send_error(sock, P.E_UNAUTHORIZED, "missing or wrong token")
                return False
            payload = P.read_payload(sock, header)
        except P.ConnectionClosed as exc:
            if exc.mid_frame:
                log.warning("%s closed the connection mid-frame", peer)
            return False
        except P.ProtocolError as exc:
            self.stats["errors"] += 1
            log.warning("bad frame from %s: %s", peer, exc.message)
            self._send_error(sock, exc.code, exc.message)
            return False
        except TimeoutError:
            self.stats["errors"] += 1
            log.warning("read timeout (%gs) from %s", self.read_timeout, peer)
            self._send_error(sock, P.E_TIMEOUT, f"frame not completed within {self.read_timeout}s")
            return False
        except OSError as exc:
            log.info("connection %s lost: %s", peer, exc)
            return False
        self.stats["requests"] += 1
        frame = P.Frame(header, payload)
        rid = header.get("id")
        try:
            return self._dispatch(sock, frame, peer)
        except RequestError as exc:
            self.stats["errors"] += 1
            log.info("request from %s refused: %s: %s", peer, exc.code, exc.message)
            return self._send_error(sock, exc.code, exc.message, rid)
        except OSError as exc:
            log.info("connection %s lost while replying: %s", peer, exc)
            return False
        except Exception as exc:
            self.stats["errors"] += 1
            log.exception("request %s from %s failed", header.get("type"), peer)
            return self._send_error(sock, P.E_INTERNAL, f"{type(exc).__name__}: {exc}", rid)

    def _authorized(self, header: dict[str, Any]) -> bool:
        token = header.get("token")
        if not isinstance(token, str):
            return False
        return hmac.compare_digest(token.encode("utf-8"), self.token.encode("utf-8"))

    def _send_error(
        self, sock: socket.socket, code: str, message: str, request_id: Any = None
    ) -> bool:
        try:
            sock.settimeout(self.read_timeout)
            P.send_frame(sock, P.error_header(code, message, request_id))
            return True
        except OSError:
            return False

    def _dispatch(self, sock: socket.socket, frame: P.Frame, peer: str) -> bool:
        kind = frame.type
        if kind == "hello":
            P.send_frame(sock, self.hello_reply())
            return True
        if kind == "colorize":
            return self._colorize(sock, frame, peer)
        if kind == "cancel":
            rid = frame.header.get("request_id")
            with self._conn_lock:
                job = self._jobs.get(rid) if isinstance(rid, str) else None
            if job is not None:
                job.cancel.set()
            P.send_frame(sock, {"type": "cancel_ack", "request_id": rid, "found": job is not None})
            return True
        raise RequestError(P.E_UNKNOWN_TYPE, f"unknown request type {kind!r}")

    def hello_reply(self) -> dict[str, Any]:
        """The header of the reply to ``hello``."""
        from tinct import __version__

        return {
            "type": "hello",
            "server": "tinct",
            "server_version": __version__,
            "protocol_version": P.PROTOCOL_VERSION,
            "default_model": self.backend.default_model,
            "models": self.backend.models(),
            "pixel_formats": sorted(P.PIXEL_FORMATS),
            "result_formats": list(P.RESULT_FORMATS),
            "limits": {
                "max_frame_bytes": self.max_frame_bytes,
                "max_header_bytes": P.DEFAULT_MAX_HEADER_BYTES,
                "max_pixels": self.max_pixels,
            },
        }

    # -- colorize
    def _colorize(self, sock: socket.socket, frame: P.Frame, peer: str) -> bool:
        job = self.parse_colorize(frame)
        t0 = time.monotonic()
        with self._conn_lock:
            self._jobs[job.request_id] = job
        state: dict[str, Any] = {"progress": (0.0, "queued"), "sent": None}
        done = threading.Event()

        def progress(fraction: float, message: str = "") -> None:
            state["progress"] = (float(fraction), str(message))

        def work() -> None:
            try:
                while not self._engine_lock.acquire(timeout=0.1):
                    if job.cancel.is_set():
                        return
                try:
                    if job.cancel.is_set():
                        return
                    progress(0.02, "colorizing")
                    t1 = time.monotonic()
                    out = self.backend.colorize(job, progress)
                    state["engine_s"] = time.monotonic() - t1
                    progress(0.97, "encoding result")
                    state["result"] = self._encode_result(job, out)
                finally:
                    self._engine_lock.release()
            except BaseException as exc:
                state["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=work, name=f"tinct-job-{job.request_id[:8]}", daemon=True)
        try:
            worker.start()
            last_send = 0.0
            while not done.wait(0.05):
                now = time.monotonic()
                if state["progress"] != state["sent"] or now - last_send >= self.heartbeat:
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
                readable, _, _ = select.select([sock], [], [], 0)
                if readable and not self._read_during_job(sock, job, peer):
                    return False
                if job.cancel.is_set():
                    log.info("request %s from %s cancelled", job.request_id, peer)
                    return self._send_error(sock, P.E_CANCELLED, "cancelled", job.request_id)
        finally:
            if not done.is_set():
                job.cancel.set()
            with self._conn_lock:
                self._jobs.pop(job.request_id, None)
        if job.cancel.is_set():
            return self._send_error(sock, P.E_CANCELLED, "cancelled", job.request_id)
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
        P.send_frame(sock, header, [("image", pixels)])
        log.info(
            "colorized %dx%d for %s in %.2fs",
            job.image.shape[1],
            job.image.shape[0],
            peer,
            time.monotonic() - t0,
        )
        return True

    def _read_during_job(self, sock: socket.socket, job: ColorizeJob, peer: str) -> bool:
        """Handle a frame that arrives while a job runs (only ``cancel`` is allowed)."""
        try:
            sock.settimeout(self.read_timeout)
            header = P.read_header(sock, max_frame_bytes=P.DEFAULT_MAX_HEADER_BYTES)
            if not self._authorized(header):
                job.cancel.set()
                self._send_error(sock, P.E_UNAUTHORIZED, "missing or wrong token")
                return False
            P.read_payload(sock, header)
        except (P.ProtocolError, OSError) as exc:
            log.info("%s went away during a job: %s", peer, exc)
            job.cancel.set()
            return False
        if header.get("type") == "cancel":
            job.cancel.set()
            return True
        self._send_error(sock, P.E_BUSY, "only cancel is allowed while a request runs")
        return True

    def parse_colorize(self, frame: P.Frame) -> ColorizeJob:
        """Validate a ``colorize`` frame and decode it into a :class:`ColorizeJob`.

        Raises:
            RequestError: with code ``bad_request``, ``too_large`` or ``unknown_model``.
        """
        h = frame.header
        width = _int_field(h, "width", 1, 1 << 20)
        height = _int_field(h, "height", 1, 1 << 20)
        if width * height > self.max_pixels:
            raise RequestError(
                P.E_TOO_LARGE,
                f"{width}x{height} exceeds the server limit of {self.max_pixels} pixels",
            )
        fmt = h.get("format")
        if fmt not in P.PIXEL_FORMATS:
            raise RequestError(
                P.E_BAD_REQUEST,
                f"unknown pixel format {fmt!r}; use one of {sorted(P.PIXEL_FORMATS)}",
            )
        pixels = _decode_pixels(frame, "image", width, height, fmt)
        alpha = None
        if fmt in ("rgba8", "rgba16"):
            alpha = pixels[..., 3]
            pixels = pixels[..., :3]
        rid = h.get("id")
        rid = rid if isinstance(rid, str) and rid else secrets.token_hex(8)
        model = h.get("model")
        if model is not None and not isinstance(model, str):
            raise RequestError(P.E_BAD_REQUEST, '"model" must be a string')
        if model:
            names = [m.get("name") for m in self.backend.models()]
            if names and model not in names:
                raise RequestError(
                    P.E_UNKNOWN_MODEL, f"unknown model {model!r}; available: {', '.join(names)}"
                )
        decoder = h.get("decoder")
        if decoder is not None and not isinstance(decoder, str):
            raise RequestError(P.E_BAD_REQUEST, '"decoder" must be a string')
        result_format = h.get("result_format") or ("rgba8" if alpha is not None else "rgb8")
        if result_format not in P.RESULT_FORMATS:
            raise RequestError(
                P.E_BAD_REQUEST, f"result_format must be one of {list(P.RESULT_FORMATS)}"
            )
        hint_layer = None
        sections = h.get("sections") or {}
        if "hint_layer" in sections:
            sec = sections["hint_layer"]
            if (sec.get("width"), sec.get("height")) != (width, height):
                raise RequestError(P.E_BAD_REQUEST, "the hint layer must have the image's size")
            if sec.get("format", "rgba8") != "rgba8":
                raise RequestError(P.E_BAD_REQUEST, "the hint layer must be rgba8")
            hint_layer = _decode_pixels(frame, "hint_layer", width, height, "rgba8")
        reference = None
        if "reference" in sections:
            sec = sections["reference"]
            rw = _int_field(sec, "width", 1, 1 << 20)
            rh = _int_field(sec, "height", 1, 1 << 20)
            rfmt = sec.get("format")
            if rfmt not in P.PIXEL_FORMATS or rw * rh > self.max_pixels:
                raise RequestError(P.E_BAD_REQUEST, "bad reference format or size")
            reference = _decode_pixels(frame, "reference", rw, rh, rfmt)
            if rfmt in ("rgba8", "rgba16"):
                reference = reference[..., :3]
        return ColorizeJob(
            image=pixels,
            alpha=alpha,
            model=model or None,
            temperature=_float_field(h, "temperature", 1e-6, 100.0),
            decoder=decoder or None,
            mrf_weight=_float_field(h, "mrf_weight", 0.0, 1e6) or 0.0,
            mrf_iters=_int_field(h, "mrf_iters", 0, 10_000, required=False),
            tile=_int_field(h, "tile", 16, 1 << 16, required=False),
            hints=_parse_hints(h.get("hints"), width, height),
            hint_layer=hint_layer,
            hint_size=_int_field(h, "hint_size", 1, 256, required=False),
            reference=reference,
            result_format=result_format,
            request_id=rid,
        )

    def _encode_result(self, job: ColorizeJob, out: Any) -> np.ndarray:
        """Convert the engine output to the requested 8-bit layout."""
        rgb = _to_rgb8(np.asarray(out))
        if rgb.shape[:2] != job.image.shape[:2]:
            raise RuntimeError(
                f"the colorizer returned {rgb.shape[:2]}, expected {job.image.shape[:2]}"
            )
        if job.result_format == "rgb8":
            return np.ascontiguousarray(rgb)
        res = np.empty((*rgb.shape[:2], 4), np.uint8)
        res[..., :3] = rgb
        if job.alpha is None:
            res[..., 3] = 255
        elif job.alpha.dtype == np.uint8:
            res[..., 3] = job.alpha
        else:
            res[..., 3] = (job.alpha.astype(np.uint32) * 255 + 32767) // 65535
        return res


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


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def _int_field(h: dict[str, Any], key: str, lo: int, hi: int, required: bool = True) -> int | None:
    value = h.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise RequestError(P.E_BAD_REQUEST, f'"{key}" must be an integer in [{lo}, {hi}]')
    return value


def _float_field(h: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    value = h.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
        raise RequestError(P.E_BAD_REQUEST, f'"{key}" must be a number in [{lo}, {hi}]')
    return float(value)


def _parse_hints(raw: Any, width: int, height: int) -> tuple[PointHint, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 100_000:
        raise RequestError(P.E_BAD_REQUEST, '"hints" must be a list (at most 100000)')
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise RequestError(P.E_BAD_REQUEST, f"hint {i} must be an object")
        try:
            row = _int_field(item, "row", 0, height - 1)
            col = _int_field(item, "col", 0, width - 1)
            rgb = tuple(_int_field(item, c, 0, 255) for c in "rgb")
            size = _int_field(item, "size", 1, 256, required=False)
        except RequestError as exc:
            raise RequestError(P.E_BAD_REQUEST, f"hint {i}: {exc.message}") from None
        out.append(PointHint(row, col, rgb, size))  # type: ignore[arg-type]
    return tuple(out)


def _decode_pixels(frame: P.Frame, name: str, width: int, height: int, fmt: str) -> np.ndarray:
    view = frame.section(name)
    if view is None:
        raise RequestError(P.E_BAD_REQUEST, f"missing payload section {name!r}")
    bpp = P.PIXEL_FORMATS[fmt]
    if view.nbytes != width * height * bpp:
        raise RequestError(
            P.E_BAD_REQUEST,
            f"section {name!r} has {view.nbytes} bytes; {width}x{height} {fmt} needs "
            f"{width * height * bpp}",
        )
    dtype = np.dtype("<u2") if fmt.endswith("16") else np.dtype(np.uint8)
    arr = np.frombuffer(view, dtype=dtype)
    channels = bpp // dtype.itemsize
    return arr.reshape(height, width) if channels == 1 else arr.reshape(height, width, channels)


def _to_rgb8(out: np.ndarray) -> np.ndarray:
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    if out.ndim != 3 or out.shape[2] not in (3, 4):
        raise RuntimeError(f"the colorizer returned an array of shape {out.shape}")
    out = out[..., :3]
    if out.dtype == np.uint8:
        return out
    if out.dtype == np.uint16:
        return ((out.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------- in-process API


class ServerHandle:
    """A server running in a background thread (see :func:`start_server_in_thread`).

    Attributes:
        server: the :class:`BridgeServer`.
    """

    def __init__(self, server: BridgeServer) -> None:
        self.server = server

    @property
    def port(self) -> int:
        """The TCP port."""
        return self.server.port

    @property
    def token(self) -> str:
        """The auth token."""
        return self.server.token

    def stop(self) -> None:
        """Stop the server and remove its bridge.json."""
        self.server.shutdown()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server_in_thread(colorizer: Any, port: int = 0, **kwargs: Any) -> ServerHandle:
    """Serve an already loaded colorizer (or a :class:`Backend`) from a daemon thread.

    Used by the napari plugin so GIMP can share the model napari has loaded.

    Args:
        colorizer: a colorizer object (``.colorize(image, ...)``) or a Backend
            (``.colorize(job, progress)`` plus ``.models()``).
        port: TCP port (0 = any free port).
        **kwargs: further :class:`BridgeServer` arguments (``config_path``, ``host``...).

    Returns:
        A handle with ``.port``, ``.token`` and ``.stop()``.
    """
    if hasattr(colorizer, "models") and hasattr(colorizer, "default_model"):
        server = BridgeServer(colorizer, port=port, **kwargs)
    else:
        server = BridgeServer(colorizer=colorizer, port=port, **kwargs)
    return ServerHandle(server.start())
