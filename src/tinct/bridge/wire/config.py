"""Reading ``bridge.json``: where the running server is, its token, and whether it is alive.

Standard library only: ``tinct gimp install`` copies this package next to the
GIMP plug-in (see :mod:`tinct.bridge.wire`).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import time

from .spec import (
    ServerNotRunning,
)

__all__ = [
    "MAX_CONFIG_BYTES",
    "bridge_config_path",
    "config_dir",
    "process_identity",
    "read_bridge_config",
    "server_gone",
]


def config_dir():
    r"""The user's tinct config folder (``$TINCT_CONFIG_DIR`` overrides it).

    Linux: ``$XDG_CONFIG_HOME/tinct`` (``~/.config/tinct``); macOS:
    ``~/Library/Application Support/tinct``; Windows: ``%APPDATA%\tinct``.
    """
    override = os.environ.get("TINCT_CONFIG_DIR")
    if override:
        return os.path.abspath(os.path.expanduser(override))
    home = os.path.expanduser("~")
    if sys.platform.startswith("win"):
        base = os.environ.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
    elif sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return os.path.join(base, "tinct")


def bridge_config_path():
    """Path of ``bridge.json`` (port and token of the running server)."""
    return os.path.join(config_dir(), "bridge.json")


def _pid_namespace():
    """Linux: this process's PID namespace (``pid:[...]``); None elsewhere or without /proc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _process_start(pid):
    """Linux: the start time of a process in clock ticks since boot (a string), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
        return stat[stat.rindex(")") + 2 :].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def process_identity():
    """What bridge.json records about the server process to recognise it later.

    Returns:
        ``{"pid", "pid_start", "pid_ns", "started"}``: the pid, its start time
        and PID namespace (Linux; None elsewhere) and the wall-clock start.
    """
    pid = os.getpid()
    return {
        "pid": pid,
        "pid_start": _process_start(pid),
        "pid_ns": _pid_namespace(),
        "started": round(time.time(), 3),
    }


def server_gone(cfg):
    """Whether bridge.json's server process has certainly exited (False if unsure).

    Only checked on POSIX, and on Linux only when the reader shares the
    server's PID namespace (a Flatpak GIMP does not, for instance). A pid that
    now belongs to a process started at another time counts as gone. Whatever
    this says, the handshake still keeps the token from an impostor.
    """
    pid = cfg.get("pid")
    if os.name != "posix" or not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if sys.platform.startswith("linux"):
        mine = _pid_namespace()
        if mine is None or cfg.get("pid_ns") != mine:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: it exists but is not ours
        return False
    start = cfg.get("pid_start")
    now = _process_start(pid)
    return start is not None and now is not None and now != start


def read_bridge_config(path=None, check_process=True):
    """Read bridge.json; returns a dict with at least "port" and "token".

    Args:
        path: the file (default: ``bridge_config_path()``); a leading ``~`` is the home
            folder and surrounding blanks are dropped (typed in GIMP's *Token file* box).
        check_process: refuse a file whose server process has exited.

    Returns:
        The file's contents: ``port`` is an integer in 1-65535, ``token`` a string
        and ``host``, when present, a string.

    Raises:
        ServerNotRunning: the file is missing, unreadable, malformed (no port or
            token, a port out of range, a host that is no string) or stale.
    """
    path = os.path.expanduser(str(path or "").strip()) or bridge_config_path()
    try:
        data = json.loads(_read_small_file(path).decode("utf-8"))
    except FileNotFoundError:  # removed when the server stopped, or never written
        message = f"the tinct server is not running (there is no {path}, which it writes)"
        raise ServerNotRunning(message) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ServerNotRunning(f"cannot read {path} ({reason})", _path_advice(path)) from None
    except _Untrusted as exc:
        raise ServerNotRunning(f"{path} is not to be trusted: {exc}", _path_advice(path)) from None
    except _NotBridgeFile as exc:
        raise ServerNotRunning(f"cannot read {path} ({exc})", _path_advice(path)) from None
    except (ValueError, RecursionError):  # also UnicodeDecodeError
        raise ServerNotRunning(f"{path} is not valid JSON") from None
    if not isinstance(data, dict) or "port" not in data or not isinstance(data.get("token"), str):
        raise ServerNotRunning(f"{path} lacks a port or token")
    port, host = data["port"], data.get("host")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port <= 65535:
        raise ServerNotRunning(f"{path} names no valid port ({str(port)[:20]!r}, not 1-65535)")
    if host is not None and not isinstance(host, str):
        raise ServerNotRunning(f"{path} names no valid host (not a string)")
    if check_process and server_gone(data):
        raise ServerNotRunning(
            f"{path} is stale: the server that wrote it (pid {data['pid']}) is no longer running"
        )
    return data


def _path_advice(path):
    """What to do when ``path`` itself cannot be read: a folder, a device, no permission."""
    default = bridge_config_path()
    if os.path.abspath(path) == os.path.abspath(default):
        return "Remove it, then start the server with: tinct serve"
    return f"Check the path: it should be the bridge.json file that tinct serve writes ({default})"


#: The most bytes bridge.json may hold (the server writes some 200).
MAX_CONFIG_BYTES = 1 << 16


class _NotBridgeFile(Exception):
    """What is at the path cannot be bridge.json: not a regular file, or too large."""


class _Untrusted(_NotBridgeFile):
    """bridge.json that another user could have written: its port and token could be anyone's."""


def _untrusted(st):
    """Why a file with this ``fstat`` could be another user's writing (POSIX), or None.

    A client that trusted such a file would prove itself to, and send its pixels to,
    whatever server its writer names (the handshake proves only that the peer holds
    the file's token). The file must be the user's own (or root's) and writable by
    nobody else: not by others, nor by a group other than the user's own.
    """
    if os.name != "posix" or not hasattr(os, "getuid"):
        return None
    if st.st_uid not in (os.getuid(), 0):
        return f"it belongs to another user (uid {st.st_uid})"
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o002 or (mode & 0o020 and st.st_gid != os.getgid()):
        return f"other users can write it (mode {mode:04o}; tinct serve writes it with 0600)"
    return None


def _read_small_file(path):
    """The bytes of a regular file of at most :data:`MAX_CONFIG_BYTES`, from one descriptor.

    Opened without blocking (a FIFO never waits for a writer) and checked with
    ``fstat`` before a byte is read, so a FIFO, a device or a folder is refused at
    once and a large file is never read.

    Raises:
        FileNotFoundError: Nothing is there.
        OSError: It cannot be opened.
        _NotBridgeFile: Not a regular file, or over the limit.
        _Untrusted: Another user could have written it (see :func:`_untrusted`).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError as exc:
        raise _NotBridgeFile(exc.strerror) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _NotBridgeFile(os.strerror(errno.EISDIR))
        if not stat.S_ISREG(st.st_mode):
            raise _NotBridgeFile("not a regular file")
        if st.st_size > MAX_CONFIG_BYTES:
            raise _NotBridgeFile(f"{st.st_size} bytes, more than {MAX_CONFIG_BYTES}")
        untrusted = _untrusted(st)
        if untrusted:
            raise _Untrusted(untrusted)
        data = os.read(fd, MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:  # it grew since the fstat
            raise _NotBridgeFile(f"more than {MAX_CONFIG_BYTES} bytes")
        return data
    finally:
        os.close(fd)
