"""``tinct batch IN_DIR OUT_DIR``: colorize a folder tree on a Dask cluster.

Every image under IN_DIR (recursively; PNG, JPEG, TIFF, BMP, WebP, GIF) and
every video (MP4, MOV, AVI, MKV, WebM, ...; the video extra) is colorized
into OUT_DIR with the same relative sub-folder and the same file name as
``tinct colorize IN -o OUT_DIR`` gives it (``<stem>_colorized.png``, ``.tif``
for stacks, ``.mp4`` for videos; --temporal for flicker-free video). Outputs
are written atomically and existing ones are
skipped, so rerunning the command resumes an interrupted run.

Without --scheduler a local cluster of --workers processes is started (one
task at a time per process, --threads-per-worker torch threads each); with
--scheduler tcp://HOST:8786 the files go to the workers of a running
``dask scheduler``; IN_DIR, OUT_DIR and the model file must then be at the
same paths on every worker (a shared file system).

Exit codes: 0 every file done or skipped, 1 some files failed (each failure
is reported on one line and never stops the others), 2 usage errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``batch`` sub-command."""
    from tinct.cli.colorize import add_option_arguments

    p = subparsers.add_parser(
        "batch",
        help="colorize a folder tree on a Dask cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("in_dir", metavar="IN_DIR", help="input folder (searched recursively)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (sub-folders mirrored)")
    g = p.add_argument_group("cluster")
    g.add_argument(
        "--scheduler", metavar="ADDRESS", help="running Dask scheduler, e.g. tcp://host:8786"
    )
    g.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="local worker processes (default: half the cores, at most 8)",
    )  # fmt: skip
    g.add_argument(
        "--threads-per-worker", type=int, default=None, metavar="T",
        help="torch threads per worker process (default: cores / workers)",
    )  # fmt: skip
    g.add_argument(
        "--retries",
        type=int,
        default=2,
        help="retries of a task that raised (2); lost workers' tasks are rescheduled anyway",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_option_arguments(p)
    p.set_defaults(func=run)


def _usage(msg: str) -> int:
    print(f"tinct batch: error: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run ``tinct batch``; returns the exit code."""
    from tinct.cli.colorize import options_from_args

    try:
        options = options_from_args(args)
    except ValueError as exc:
        return _usage(str(exc))
    if not Path(args.in_dir).is_dir():
        return _usage(f"input folder {args.in_dir} does not exist")
    if args.workers is not None and args.workers < 1:
        return _usage("--workers must be >= 1")
    if args.threads_per_worker is not None and args.threads_per_worker < 1:
        return _usage("--threads-per-worker must be >= 1")
    try:
        import distributed  # noqa: F401
    except ImportError:
        return _usage("tinct batch needs dask.distributed: pip install 'tinct[distributed]'")
    from tinct.batch import run_batch

    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    summary = run_batch(
        args.in_dir, args.out_dir, options, scheduler=args.scheduler, workers=args.workers,
        threads_per_worker=args.threads_per_worker, retries=args.retries,
        progress=not args.quiet,
    )  # fmt: skip
    print(f"tinct batch: {summary.line()}", file=sys.stderr)
    return summary.exit_code
