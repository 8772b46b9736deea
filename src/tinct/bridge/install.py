"""Installing and checking the GIMP 3 plug-in (``tinct gimp install`` / ``doctor``).

The plug-in ships as package data (``tinct/bridge/gimp_plugin/tinct-colorize.py``).
:func:`install_plugin` copies it into GIMP's ``plug-ins/tinct-colorize/`` folder
and copies the wire-format package :mod:`tinct.bridge.wire` next to it as
``tinct_wire/``, so the plug-in always speaks the installed server's protocol
and there is no second copy of the protocol in the source tree.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinct.bridge import wire as protocol

__all__ = [
    "PLUGIN_NAME",
    "WIRE_PACKAGE",
    "doctor",
    "gimp_profile_dir",
    "install_plugin",
    "models_signature",
    "plugin_source",
    "refresh_registration",
]

PLUGIN_NAME = "tinct-colorize"
#: The folder name :mod:`tinct.bridge.wire` gets next to the plug-in (``import tinct_wire``).
WIRE_PACKAGE = "tinct_wire"
#: Modules the plug-in script imports, shipped next to it in ``bridge/gimp_plugin/``.
PLUGIN_MODULES = ("tinct_layers.py",)
#: Written by the plug-in when GIMP registers it: the server's model list at that time.
REGISTERED_FILE = "registered-models.json"


def _wire_files() -> dict[str, Path]:
    """The wire package's source files by name (what the plug-in gets)."""
    folder = Path(protocol.__file__).resolve().parent
    return {p.name: p for p in sorted(folder.glob("*.py"))}


def models_signature(models: list[dict[str, Any]]) -> list[list[str]]:
    """What the GIMP dialog shows of a model list (the plug-in computes the same)."""
    return sorted(
        [str(m.get("name")), str(m.get("display_name") or ""), str(m.get("weights") or "")]
        for m in models
    )


def refresh_registration(
    models: list[dict[str, Any]], gimp_dir: str | os.PathLike[str] | None = None
) -> bool:
    """Make GIMP re-register the plug-in when the server's model list changed.

    GIMP caches a plug-in's menu and dialog (here: the model list) until the
    plug-in file changes. The plug-in records the list it registered; when the
    running server's list differs, the plug-in file's time is updated, so GIMP
    queries it again at its next start.

    Args:
        models: The server's model list (``hello``/``models`` entries).
        gimp_dir: GIMP 3 profile folder (see :func:`gimp_profile_dir`).

    Returns:
        True when a re-registration was requested.
    """
    import json

    folder = _plugins_dir(gimp_dir) / PLUGIN_NAME
    script = folder / f"{PLUGIN_NAME}.py"
    if not script.is_file():
        return False
    try:
        registered = json.loads((folder / REGISTERED_FILE).read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError, TypeError):
        registered = None
    if registered == models_signature(models):
        return False
    try:
        os.utime(script, None)
    except OSError:
        return False
    return True


def gimp_profile_dir(gimp_dir: str | os.PathLike[str] | None = None) -> Path:
    r"""The GIMP 3 user profile folder.

    Args:
        gimp_dir: explicit folder; wins over ``$GIMP3_DIRECTORY`` and the default
            (Linux ``~/.config/GIMP/3.0``, macOS ``~/Library/Application Support/GIMP/3.0``,
            Windows ``%APPDATA%\GIMP\3.0``).
    """
    if gimp_dir:
        return Path(gimp_dir).expanduser()
    env = os.environ.get("GIMP3_DIRECTORY")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return base / "GIMP" / "3.0"


def _plugins_dir(gimp_dir: str | os.PathLike[str] | None) -> Path:
    profile = gimp_profile_dir(gimp_dir)
    return profile if profile.name == "plug-ins" else profile / "plug-ins"


def plugin_source() -> Path:
    """The plug-in script as shipped in the package (``bridge/gimp_plugin/``)."""
    return Path(__file__).resolve().parent / "gimp_plugin" / f"{PLUGIN_NAME}.py"


def install_plugin(gimp_dir: str | os.PathLike[str] | None = None) -> Path:
    """Copy the plug-in and the wire package into GIMP's plug-ins folder.

    The result is ``plug-ins/tinct-colorize/tinct-colorize.py`` (executable), the
    modules it imports (:data:`PLUGIN_MODULES`) next to it, and
    ``plug-ins/tinct-colorize/tinct_wire/`` (the files of :mod:`tinct.bridge.wire`,
    standard library only).

    Args:
        gimp_dir: GIMP 3 profile folder (see :func:`gimp_profile_dir`).

    Returns:
        The installed plug-in folder.
    """
    dest = _plugins_dir(gimp_dir) / PLUGIN_NAME
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / WIRE_PACKAGE).mkdir(parents=True)
    # plain copies, not copy2: fresh file times make GIMP query the plug-in again (it
    # caches each plug-in's registration by the file's time)
    script = dest / f"{PLUGIN_NAME}.py"
    shutil.copyfile(plugin_source(), script)
    for name in PLUGIN_MODULES:
        shutil.copyfile(plugin_source().parent / name, dest / name)
    for name, path in _wire_files().items():
        shutil.copyfile(path, dest / WIRE_PACKAGE / name)
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return dest


def _wire_problem(folder: Path) -> str | None:
    """What is wrong with the installed ``tinct_wire/`` and plug-in modules, or None."""
    for name in PLUGIN_MODULES:
        installed = folder / name
        if (
            not installed.is_file()
            or installed.read_bytes() != (plugin_source().parent / name).read_bytes()
        ):
            return f"{name} missing next to the plug-in or from another tinct (an old install?)"
    wire = folder / WIRE_PACKAGE
    if not wire.is_dir():
        return f"{WIRE_PACKAGE}/ missing next to the plug-in"
    for name, path in _wire_files().items():
        installed = wire / name
        if not installed.is_file() or installed.read_bytes() != path.read_bytes():
            return f"{WIRE_PACKAGE}/{name} differs from this tinct's protocol (an old install?)"
    return None


def doctor(
    gimp_dir: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    out: Callable[[str], Any] = print,
) -> int:
    """Check the GIMP bridge set-up and print what is wrong and how to fix it.

    Args:
        gimp_dir: GIMP 3 profile folder.
        config: bridge.json path (default: the user's).
        out: where lines go.

    Returns:
        0 if every check passed, else 1.
    """
    problems = 0

    def ok(msg: str) -> None:
        out(f"[ ok ] {msg}")

    def bad(msg: str, fix: str) -> None:
        nonlocal problems
        problems += 1
        out(f"[FAIL] {msg}\n       fix: {fix}")

    plugins = _plugins_dir(gimp_dir)
    folder = plugins / PLUGIN_NAME
    script = folder / f"{PLUGIN_NAME}.py"
    if not folder.is_dir():
        bad(f"plug-in not installed ({folder} missing)", "run `tinct gimp install`")
    elif not script.is_file():
        stray = [p.name for p in folder.glob("*.py")]
        bad(
            f"{folder} has no {script.name} (found {stray or 'nothing'}); GIMP only loads "
            "a script named like its folder",
            "run `tinct gimp install`",
        )
    else:
        ok(f"plug-in installed: {script}")
        if os.name != "nt" and not os.access(script, os.X_OK):
            bad(f"{script.name} is not executable (GIMP skips it silently)", f"chmod +x {script}")
        elif os.name != "nt":
            ok("plug-in is executable")
        first = script.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
        if first != ["#!/usr/bin/env python3"]:
            bad(f"{script.name} lacks the python3 shebang", "run `tinct gimp install`")
        elif script.read_bytes() != plugin_source().read_bytes():  # as its modules, below
            bad(
                f"{script.name} is from another tinct (an old install?)",
                "run `tinct gimp install` again",
            )
        problem = _wire_problem(folder)
        if problem:
            bad(problem, "run `tinct gimp install` again")
        else:
            ok(f"{WIRE_PACKAGE} matches protocol version {protocol.PROTOCOL_VERSION}")
    if (plugins / f"{PLUGIN_NAME}.py").exists():
        bad(
            f"a stray {PLUGIN_NAME}.py sits directly in {plugins}; GIMP 3 wants sub-folders",
            f"delete {plugins / (PLUGIN_NAME + '.py')}",
        )

    cfg_path = Path(config) if config else Path(protocol.bridge_config_path())
    cfg = None
    if not cfg_path.is_file():
        bad(f"no server config at {cfg_path}", protocol.START_HINT)
    else:
        mode = stat.S_IMODE(cfg_path.stat().st_mode)
        if os.name != "nt" and mode & 0o077:
            bad(f"{cfg_path} is readable by others (mode {mode:o})", f"chmod 600 {cfg_path}")
        else:
            ok(f"server config {cfg_path} (mode {mode:o})")
        try:
            cfg = protocol.read_bridge_config(str(cfg_path))
        except protocol.BridgeError as exc:  # its message ends in START_HINT: said as the fix
            bad(exc.message.removesuffix(". " + protocol.START_HINT), protocol.START_HINT)
    if cfg is not None:
        host = cfg.get("host") or protocol.DEFAULT_HOST
        try:
            with protocol.BridgeClient(
                host=host, port=int(cfg["port"]), token=cfg["token"], timeout=5.0
            ) as client:
                info = client.hello()
        except protocol.ServerNotRunning:
            bad(
                f"no server answers on {host}:{cfg['port']} (stale {cfg_path.name}?)",
                protocol.START_HINT,
            )
        except protocol.BridgeError as exc:
            if exc.code == "unauthorized":
                bad("the server refused the token", "restart `tinct serve`")
            else:
                bad(f"the server answered with an error: {exc}", "restart `tinct serve`")
        else:
            names = ", ".join(m.get("name", "?") for m in info.get("models", []))
            ok(
                f"server {info.get('server_version')} on {host}:{cfg['port']} accepted the "
                f"token (protocol {info.get('protocol_version')}; models: {names})"
            )
    out("all checks passed" if not problems else f"{problems} problem(s) found")
    return 0 if not problems else 1
