"""``bridge.json``: where the running bridge server is, its token, and who wrote it.

The server (:mod:`tinct.bridge.server`) writes the file on start and removes it on
shutdown (only while it still holds its own token); clients read it with
:func:`tinct.bridge.wire.read_bridge_config`, which also recognises a file left
behind by a server that has died. :func:`live_server` tells a second server
that the file belongs to one that still runs (its port proves the token), and
:func:`claim_bridge_config` makes a starting server's check and write one step.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the check and the write are not serialized
    fcntl = None  # type: ignore[assignment]

from tinct.bridge import wire as P

__all__ = ["claim_bridge_config", "live_server", "remove_bridge_config", "write_bridge_config"]

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


#: Seconds :func:`claim_bridge_config` waits for another server's check-and-write.
CLAIM_WAIT_S = 10.0


@contextlib.contextmanager
def claim_bridge_config(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Hold bridge.json's folder while a starting server checks and writes the file (POSIX).

    Two servers started at once both found no live server in the file, and both wrote
    it: the first one's clients were lost. Under this claim, an exclusive ``flock`` on
    the folder, the second waits until the first has written the file, then finds it
    live. The claim is given up after :data:`CLAIM_WAIT_S` seconds of waiting (a
    process stopped while it held it), and where the folder cannot be made or locked
    the server goes on without it (writing the file then fails with its own error).

    Args:
        path: the bridge.json (None: nothing to claim).
    """
    fd = None
    if path is not None and fcntl is not None:
        try:
            folder = Path(path).parent
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(folder, os.O_RDONLY)
            deadline = time.monotonic() + CLAIM_WAIT_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        log.warning("%s is claimed by another process; going on", folder)
                        break
                    time.sleep(0.05)
        except OSError:
            if fd is not None:
                os.close(fd)
            fd = None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # and with it the lock


def live_server(path: str | os.PathLike[str], timeout: float = 1.0) -> dict[str, Any] | None:
    """What bridge.json says about the server that wrote it, if that server still runs.

    A server is live when the file's process has not exited (as far as
    :func:`tinct.bridge.wire.server_gone` can tell) and what listens on its host and
    port proves that it holds the file's token: it is sent an ``auth`` frame, and
    then the end of the stream (nothing more is needed to check the server's proof),
    and its ``auth_challenge`` must carry the proof. A peer that answers anything
    else, or closes without a word, is another program that took the port. One that
    stays silent for ``timeout`` seconds, or says it is busy, counts as live: a
    ``tinct serve`` still loading its model accepts connections before it answers them.

    Args:
        path: the bridge.json to look at.
        timeout: seconds to wait for the port to answer, and then for its challenge.

    Returns:
        The file's contents, or None: no file, an unreadable or malformed one, or a
        stale one.
    """
    try:
        data = P.read_bridge_config(os.fspath(path))
    except P.BridgeError:
        return None
    host, port = data.get("host") or P.DEFAULT_HOST, data["port"]
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    with sock:
        try:
            proven = _proves_token(sock, data["token"], time.monotonic() + timeout)
        except TimeoutError:  # accepted, not answered yet: still loading its model
            return data
        except P.VersionMismatch:  # a tinct server of another protocol version
            return data
        except (P.ProtocolError, OSError, UnicodeError):  # closed, reset, not the protocol
            proven = False
    if proven:
        return data
    log.info("%s is stale: what answers on %s:%s is not its server", path, host, port)
    return None


def _proves_token(sock: socket.socket, token: str, deadline: float) -> bool:
    """Whether the server on ``sock`` proves that it holds ``token``: the handshake's first step.

    The connection is half-closed after the ``auth`` frame, so a program that waits
    for more input answers, or closes, instead of waiting out the deadline. A
    server's refusal (an ``error`` frame: ``busy``) counts as proof: only a tinct
    server speaks the protocol, and a full one still runs.

    Raises:
        TimeoutError: no answer by ``deadline``.
        ProtocolError: the answer is not a frame of this protocol, or the peer closed.
        OSError: the connection failed.
    """
    client_nonce = P.new_nonce()
    P.send_frame(sock, {"type": "auth", "client_nonce": client_nonce, "client": "tinct-serve"})
    sock.shutdown(socket.SHUT_WR)
    frame = P.read_frame(
        sock, max_frame_bytes=0, max_header_bytes=P.AUTH_MAX_HEADER_BYTES, deadline=deadline
    )
    if frame.type == "error":
        return True
    server_nonce = frame.header.get("server_nonce")
    if frame.type != "auth_challenge" or not P.is_nonce(server_nonce):
        return False
    expected = P.auth_proof(token, "server", client_nonce, server_nonce)
    return P.proof_matches(frame.header.get("server_proof"), expected)


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
