"""``bridge.json``: where the running bridge server is, its token, and who wrote it.

The server (:mod:`tinct.bridge.server`) writes the file on start and removes it on
shutdown (only while it still holds its own token); clients read it with
:func:`tinct.bridge.wire.read_bridge_config`, which also recognises a file left
behind by a server that has died. :func:`live_server` tells a second server
that the file belongs to one that still runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import stat
from pathlib import Path
from typing import Any

from tinct.bridge import wire as P

__all__ = ["live_server", "remove_bridge_config", "write_bridge_config"]

log = logging.getLogger("tinct.bridge.server")


def write_bridge_config(path: str | os.PathLike[str], host: str, port: int, token: str) -> Path:
    """Atomically write bridge.json (port, token) readable by the user only (0600).

    It also records who wrote it (:func:`tinct.bridge.wire.process_identity`: pid,
    its start time and PID namespace), so that clients recognise a file left by
    a dead server as stale.

    Args:
        path: file to write; its folder is created with mode 0700, and the tinct
            config folder (:func:`tinct.bridge.wire.config_dir`) is tightened to
            0700 if it exists with a looser mode (another folder only gets a
            warning: it may be shared on purpose).
        host: address the server listens on.
        port: TCP port.
        token: authentication token.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _private_folder(path.parent)
    data = {
        "host": host,
        "port": int(port),
        "token": token,
        **P.process_identity(),
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


def _private_folder(folder: Path) -> None:
    """Make the tinct config folder user-only (0700); warn about another open folder."""
    if os.name != "posix":
        return
    try:
        info = folder.stat()
    except OSError:
        return
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return
    ours = info.st_uid == os.getuid()
    if ours and folder.resolve() == Path(P.config_dir()).resolve():
        with contextlib.suppress(OSError):
            os.chmod(folder, 0o700)
            log.info("tightened %s from mode %04o to 0700", folder, mode)
            return
    log.warning(
        "the folder of bridge.json, %s, can be read by other users (mode %04o); "
        "bridge.json itself is user-only (0600)",
        folder,
        mode,
    )


def live_server(path: str | os.PathLike[str], timeout: float = 1.0) -> dict[str, Any] | None:
    """What bridge.json says about the server that wrote it, if that server still runs.

    A server is live when the file's process has not exited (as far as
    :func:`tinct.bridge.wire.server_gone` can tell) and something accepts
    connections on its host and port.

    Args:
        path: the bridge.json to look at.
        timeout: seconds to wait for the port to answer.

    Returns:
        The file's contents, or None: no file, an unreadable one, or a stale one.
    """
    try:
        data = P.read_bridge_config(os.fspath(path))
        host, port = str(data.get("host") or P.DEFAULT_HOST), int(data["port"])
    except (P.BridgeError, TypeError, ValueError):
        return None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return data
    except OSError:
        return None


def remove_bridge_config(path: str | os.PathLike[str], token: str) -> None:
    """Delete bridge.json if it still belongs to the server holding ``token``.

    A file that another server has written since (a newer token) stays, and so does
    what is not a small regular file (read as :func:`tinct.bridge.wire.read_bridge_config`
    reads it: a FIFO is never waited on, a large file never read).
    """
    try:
        data = P.read_bridge_config(os.fspath(path), check_process=False)
        if data.get("token") == token:
            os.unlink(path)
    except (P.BridgeError, OSError):
        pass
