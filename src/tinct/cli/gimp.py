"""``tinct gimp install`` and ``tinct gimp doctor`` (the work is :mod:`tinct.bridge.install`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tinct.bridge.install import doctor, install_plugin

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``gimp`` sub-command with ``install`` and ``doctor``."""
    p = subparsers.add_parser("gimp", help="install and check the GIMP 3 plug-in")
    sub = p.add_subparsers(dest="gimp_command", metavar="ACTION")
    profile = (
        "GIMP 3 profile folder (default: $GIMP3_DIRECTORY, else the platform's GIMP/3.0 folder)"
    )
    pi = sub.add_parser("install", help="copy the plug-in into GIMP's plug-ins folder")
    pi.add_argument(
        "--gimp-dir", default=None, help=f"{profile}; its plug-ins/ sub-folder receives the plug-in"
    )
    pi.set_defaults(func=_run_install)
    pd = sub.add_parser("doctor", help="check the plug-in, bridge.json and the server")
    pd.add_argument(
        "--gimp-dir", default=None, help=f"{profile}; the plug-in is looked for in its plug-ins/"
    )
    pd.add_argument("--config", default=None, help="bridge.json to check")
    pd.set_defaults(func=_run_doctor)
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])


def _run_install(args: argparse.Namespace) -> int:
    from tinct.cli._options import check_folder_path

    if args.gimp_dir is not None:
        check_folder_path(args.gimp_dir, "--gimp-dir")  # a file there: exit 2, one line
    try:
        dest = install_plugin(args.gimp_dir)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        detail = exc.strerror or str(exc)
        print(f"tinct gimp install: error: cannot install the plug-in{where}: {detail}",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"Installed the GIMP plug-in into {dest}")
    print("Next: start the server with `tinct serve`, then (re)start GIMP 3 and use")
    print("Filters > Colors > Tinct Colorize...  Check the set-up with `tinct gimp doctor`.")
    return 0


def _run_doctor(args: argparse.Namespace) -> int:
    return doctor(args.gimp_dir, args.config)
