"""The ``tinct`` command: one console script, one sub-command per module here.

Each sub-command module exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (called with the parsed namespace, returns an exit code).
This module only parses and dispatches; the work lives in the library.

No user sees a traceback: a :class:`~tinct.cli._options.UsageError` (or an
argparse error) prints one line naming the flag and exits with 2; any other
failure prints one line and exits with 1. ``TINCT_DEBUG=1`` shows the
traceback of unexpected errors.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from tinct.cli._options import Parser, RuntimeFailure, UsageError

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

    parser = Parser(prog="tinct", description="Neural colorization of grayscale images.")
    parser.add_argument("--version", action="version", version=f"tinct {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"tinct.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tinct`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    prog = f"tinct {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeFailure, OSError, ValueError, RuntimeError, KeyError, ImportError) as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        _debug()
        return 1
    except Exception as exc:  # a bug, but still no traceback for the user
        print(f"{prog}: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        _debug()
        return 1


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _debug() -> None:
    if os.environ.get("TINCT_DEBUG", "") not in ("", "0"):
        import traceback

        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
