"""``tinct serve``: run the bridge server that the GIMP plug-in talks to."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from tinct.bridge import wire as protocol

__all__ = ["register", "run"]

#: Upper bounds of the limit flags: the engine refuses images above 2^31 pixels, and a
#: timeout beyond a day (or inf) is a typo, not a setting.
MAX_MEGAPIXELS = 2**31 / 1e6
MAX_FRAME_MB = 16384
MAX_TIMEOUT_S = 86400.0


def register(subparsers: Any) -> None:
    """Add the ``serve`` sub-command."""
    p = subparsers.add_parser(
        "serve",
        help="run the local colorization server for GIMP and other hosts",
        description=(
            "Serve colorization on a local TCP port. The port and a fresh auth token are "
            "written to bridge.json in the tinct config folder (readable by you only); the "
            "GIMP plug-in reads them from there."
        ),
    )
    p.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    p.add_argument("--host", default=protocol.DEFAULT_HOST, help="address (default: 127.0.0.1)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (anyone with the token can use the server)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="default model: a registry name or a .safetensors file from `tinct train`, which "
        "is then listed to clients too (default: tinct-base)",
    )
    p.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)"
    )
    p.add_argument(
        "--untrained",
        action="store_true",
        help="use randomly initialised weights (to test the set-up before training)",
    )
    p.add_argument(
        "--max-frame-mb",
        type=int,
        default=protocol.DEFAULT_MAX_FRAME_BYTES // (1024 * 1024),
        help="largest request payload in MiB (default: %(default)s)",
    )
    p.add_argument(
        "--read-timeout",
        type=float,
        default=30.0,
        help="seconds a stalled request may wait (default: 30)",
    )
    p.add_argument(
        "--max-megapixels",
        type=float,
        default=protocol.DEFAULT_MAX_PIXELS / 1e6,
        help="largest image a request may send: width x height, in millions "
        "(default: %(default).0f)",
    )
    p.add_argument(
        "--max-hints",
        type=int,
        default=protocol.DEFAULT_MAX_HINTS,
        help="most point hints plus hint-layer blobs per request (default: %(default)s)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=32,
        help="concurrent clients; one more is told the server is busy (default: %(default)s)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=300.0,
        help="seconds an idle client connection is kept open (default: %(default)s)",
    )
    p.add_argument(
        "--config",
        default=None,
        help=f"bridge.json to write (default: {protocol.bridge_config_path()})",
    )
    p.add_argument("--log", default=None, metavar="FILE", help="also write the log to FILE")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=run)


def _setup_logging(path: str | None, verbose: bool) -> None:
    """Log to stderr and, with ``--log FILE``, to FILE (created user-only, 0600).

    The log names clients, models and files, so it is kept as private as bridge.json.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )


def run(args: argparse.Namespace) -> int:
    """Start the server and block until SIGINT/SIGTERM.

    A signal cancels the running jobs, waits for them (a few seconds at most),
    tells their clients (``cancelled``: "the server is shutting down"), removes
    bridge.json and returns 0. A bridge.json that names a server that still
    runs is refused (exit 1): the second server would make the first one
    undiscoverable.
    """
    from tinct.bridge.backend import EngineBackend
    from tinct.bridge.server import (
        BridgeServer,
        ConfigUnwritable,
        ServerAlreadyRunning,
        is_loopback_host,
    )
    from tinct.cli._options import UsageError, check_device, check_model
    from tinct.engine.options import ColorizeOptions
    from tinct.engine.optionspec import OptionError

    if not 0 <= args.port <= 65535:
        raise UsageError("--port", f"must be 0-65535 (0 = any free port), got {args.port}")
    if not 1 <= args.max_frame_mb <= MAX_FRAME_MB:
        raise UsageError("--max-frame-mb", f"must be 1-{MAX_FRAME_MB}, got {args.max_frame_mb}")
    if not 0 < args.read_timeout <= MAX_TIMEOUT_S:
        why = f"must be > 0 and at most {MAX_TIMEOUT_S:g} s, got {args.read_timeout}"
        raise UsageError("--read-timeout", why)
    if not 0 < args.max_megapixels <= MAX_MEGAPIXELS:
        raise UsageError(
            "--max-megapixels",
            f"must be > 0 and at most {MAX_MEGAPIXELS:g} (the engine's limit), "
            f"got {args.max_megapixels}",
        )
    if args.max_hints < 1:
        raise UsageError("--max-hints", f"must be >= 1, got {args.max_hints}")
    if args.max_connections < 1:
        raise UsageError("--max-connections", f"must be >= 1, got {args.max_connections}")
    if not 0 < args.idle_timeout <= MAX_TIMEOUT_S:
        why = f"must be > 0 and at most {MAX_TIMEOUT_S:g} s, got {args.idle_timeout}"
        raise UsageError("--idle-timeout", why)
    if not args.allow_remote and not is_loopback_host(args.host):
        raise UsageError(
            "--host",
            f"{args.host!r} is not a loopback address: only 127.0.0.1, ::1 or a name that "
            "resolves to them, unless --allow-remote is given (traffic is not encrypted)",
        )
    if args.config is not None:  # a folder there failed as "cannot listen on ...: Is a directory"
        _check_config_path(args.config)
    try:
        ColorizeOptions(device=args.device)
    except OptionError as exc:
        raise UsageError("--device", exc.detail) from None
    check_device(args.device)  # before listening: a server that can never colorize is no use
    if args.model is not None and not args.untrained:
        check_model(ColorizeOptions(model=args.model))
    try:
        _setup_logging(args.log, args.verbose)
    except OSError as exc:
        raise UsageError("--log", f"cannot write {args.log}: {exc.strerror or exc}") from None
    log = logging.getLogger("tinct.serve")
    if args.allow_remote and not is_loopback_host(args.host):
        log.warning(
            "listening on %s: other machines can reach this server; anyone who has the "
            "token can use it, and traffic is not encrypted",
            args.host,
        )
    try:
        backend = EngineBackend(model=args.model, device=args.device, pretrained=not args.untrained)
        server = BridgeServer(
            backend,
            host=args.host,
            port=args.port,
            allow_remote=args.allow_remote,
            config_path=args.config,
            max_frame_bytes=args.max_frame_mb * 1024 * 1024,
            read_timeout=args.read_timeout,
            max_pixels=max(1, int(args.max_megapixels * 1e6)),
            max_hints=args.max_hints,
            max_connections=args.max_connections,
            idle_timeout=args.idle_timeout,
        )
    except (ServerAlreadyRunning, ConfigUnwritable) as exc:
        print(f"tinct serve: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"tinct serve: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"tinct serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    serving = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received signal %d, shutting down", signum)
        stop.set()
        if not serving.is_set():
            raise KeyboardInterrupt  # still loading the model: stop that now

    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, on_signal)
    preload = getattr(server.backend, "colorizer", None)
    try:
        if preload is not None:
            try:
                preload(None)  # load the default model now: fail here, not in GIMP
            except Exception as exc:
                server.shutdown()
                print(f"tinct serve: cannot load the model: {exc}", file=sys.stderr)
                return 1
        serving.set()
    except KeyboardInterrupt:
        server.shutdown()
        print("tinct serve: stopped while loading the model", file=sys.stderr)
        return 130
    server.start()
    _refresh_gimp(server.backend, log)
    print(
        f"tinct server listening on {args.host}:{server.port} "
        f"(token in {server.config_path}); press Ctrl+C to stop",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        stopped = server.shutdown()  # cancels the jobs and waits for them
    if not stopped:
        # a job is still inside the engine: exit now rather than tear the
        # interpreter down under its native threads (which aborts the process)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _check_config_path(config: str) -> None:
    """A usage error naming ``--config`` unless it can name the bridge.json file to write."""
    from pathlib import Path

    from tinct.cli._options import UsageError, check_folder_path

    path = Path(config)
    if not config.strip() or path.is_dir():
        raise UsageError("--config", f"{config!r} is a folder; name the bridge.json file to write")
    check_folder_path(path.parent, "--config")


def _refresh_gimp(backend: Any, log: logging.Logger) -> None:
    """Ask GIMP to re-register the plug-in when this server's model list is new to it."""
    from tinct.bridge.install import refresh_registration

    try:
        if refresh_registration(backend.models()):
            log.info("the model list changed: GIMP shows it after its next start")
    except Exception:  # never stop the server for this
        log.debug("cannot refresh the GIMP plug-in registration", exc_info=True)
