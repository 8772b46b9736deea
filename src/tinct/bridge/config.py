"""``bridge.json``: where the running bridge server is, its token, and who wrote it.

The server (:mod:`tinct.bridge.server`) writes the file on start and removes it on
shutdown; clients read it with :func:`tinct.bridge.wire.read_bridge_config`, which
also recognises a file left behind by a server that has died.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from tinct.bridge import wire as P

__all__ = ["remove_bridge_config", "write_bridge_config"]


def write_bridge_config(path: str | os.PathLike[str], host: str, port: int, token: str) -> Path:
    """Atomically write bridge.json (port, token) readable by the user only (0600).

    It also records who wrote it (:func:`tinct.bridge.wire.process_identity`: pid,
    its start time and PID namespace), so that clients recognise a file left by
    a dead server as stale.

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


def remove_bridge_config(path: str | os.PathLike[str], token: str) -> None:
    """Delete bridge.json if it still belongs to the server holding ``token``."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("token") == token:
            os.unlink(path)
    except (OSError, ValueError):
        pass
