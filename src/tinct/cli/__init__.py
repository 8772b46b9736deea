"""The ``tinct`` command: one console script, one sub-command per module here.

Each sub-command module exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (called with the parsed namespace, returns an exit code).
This module only parses and dispatches; the work lives in the library.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

#: Sub-command modules, in the order ``tinct --help`` lists them.
SUBCOMMANDS = (
    "colorize",
    "demo",
    "models",
    "train",
    "evaluate",
    "batch",
    "serve",
    "gimp",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command."""
    from tinct import __version__

    parser = argparse.ArgumentParser(
        prog="tinct", description="Neural colorization of grayscale images."
    )
    parser.add_argument("--version", action="version", version=f"tinct {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"tinct.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"tinct.cli.{name}":
                continue  # sub-command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tinct`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("tinct: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
