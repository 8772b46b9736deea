"""The ``tinct`` command: one console script, one sub-command per module here.

Each sub-command module exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (called with the parsed namespace, returns an exit code).
This module only parses and dispatches; the work lives in the library.

No user sees a traceback: a :class:`~tinct.cli._options.UsageError` (or an
argparse error) prints one line naming the flag and exits with 2; any other
failure prints one line and exits with 1. ``TINCT_DEBUG=1`` shows the
traceback of unexpected errors.

Ctrl-C (SIGINT) and SIGTERM stop a command the same way: the exception unwinds
(a half-written output's temporary file is removed), ``interrupted`` is printed
and the exit status is 128 + the signal number: 130 for SIGINT, 143 for SIGTERM.
Run as the console script, a signal that arrives once the command has finished
(or while the interruption is being reported) is ignored, so the exit status is
always the command's own.

Output piped into a reader that stops early (``tinct models | head -1``) ends the
command quietly with 141 (128 + SIGPIPE), as a command killed by the signal would.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

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


def _on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C (``finally`` blocks remove temporary files)."""
    raise KeyboardInterrupt(f"signal {signum}")


def _interrupt_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal number: 143 for SIGTERM (see :func:`_on_sigterm`), else 130."""
    return 143 if exc.args == (f"signal {int(signal.SIGTERM)}",) else 130


@contextlib.contextmanager
def _signals(script: bool) -> Iterator[None]:
    """SIGTERM handled like SIGINT while a command runs.

    Args:
        script: Run as the console script: on the way out both signals are
            ignored (the exit status stays the command's); otherwise (tests,
            callers of :func:`main`) the previous handlers come back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        if script:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tinct`` console script; returns the exit code.

    Args:
        argv: The arguments (``None``: ``sys.argv[1:]``, run as the console script).

    Returns:
        0 success, 1 a runtime failure, 2 a usage error, 130/143 interrupted,
        141 the reader of standard output went away.
    """
    with _signals(script=argv is None):
        try:
            code = _main(argv)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
            return code
        except KeyboardInterrupt as exc:  # before a sub-command started, or while reporting
            return _interrupt_status(exc)
        except BrokenPipeError:
            return _stdout_closed()


#: Exit status when standard output's reader went away (128 + SIGPIPE).
EXIT_BROKEN_PIPE = 141


def _stdout_closed() -> int:
    """End quietly after standard output's pipe was closed (``tinct models | head -1``).

    Standard output is pointed at ``os.devnull`` so that the interpreter's own
    flush at exit does not report the closed pipe again.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def _stdout_is_broken() -> bool:
    """Whether standard output is a pipe whose reader went away (``POLLERR`` on it).

    Tells a ``BrokenPipeError`` of standard output from one of a socket. Where
    ``poll`` is missing (Windows) it is taken to be standard output's.
    """
    import select

    if not hasattr(select, "poll"):
        return True
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # told by the sub-command's parser: "tinct batch: error: ..."
            _parser_of(parser, getattr(args, "command", None)).error(
                f"unrecognized arguments: {' '.join(extra)}"
            )
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    prog = f"tinct {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        print(f"{prog}: interrupted", file=sys.stderr)
        return _interrupt_status(exc)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError as exc:
        if _stdout_is_broken():
            return _stdout_closed()
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)  # a socket, say
        return 1
    except (RuntimeFailure, OSError, ValueError, RuntimeError, KeyError, ImportError) as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        _debug()
        return 1
    except Exception as exc:  # a bug, but still no traceback for the user
        print(f"{prog}: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        _debug()
        return 1


def _parser_of(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    """The parser of sub-command ``command`` (``parser`` itself when there is none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]  # type: ignore[no-any-return]
    return parser


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
