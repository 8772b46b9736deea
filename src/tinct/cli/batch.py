"""tinct batch IN_DIR OUT_DIR: colorize a folder tree on a Dask cluster.

Every image under IN_DIR (recursively; PNG, JPEG, TIFF, BMP, WebP, GIF, FITS)
and every video (MP4, MOV, AVI, MKV, WebM, ...; the video extra) is colorized
into OUT_DIR with the same relative sub-folder and the same file name as
tinct colorize IN -o OUT_DIR gives it (<stem>_colorized.png, .tif for stacks,
.mp4 for videos; --temporal for flicker-free stacks and videos). Two
inputs of one folder with the same stem (a.png, a.jpg) would share a name:
the second is reported as failed, the first is done. Outputs
are written atomically and finished ones are skipped, so rerunning the command
resumes an interrupted run (with or without --resume); a 0-byte or
undecodable output is redone.

Bit depth (--output-depth, as for tinct colorize): by default a 16-bit input
(uint16, or any integer of more than 8 bits) gives a 16-bit PNG (RGBA with
alpha), 8-bit and float inputs an 8-bit PNG, a stack a TIFF of uint8 (8-bit
input) or float32; 8 or 16 force it. 16 with a video under IN_DIR is a usage
error (a video holds 8 bits a channel).

Without --scheduler a local cluster of --workers processes is started (one
task at a time per process, --threads-per-worker torch threads each); with
--scheduler tcp://HOST:8786 the files go to the workers of a running
``dask scheduler``; IN_DIR, OUT_DIR and the model file must then be at the
same paths on every worker (a shared file system). A scheduler that does not
answer within --connect-timeout seconds (5 by default) is one line naming
--scheduler, exit 1; no file is handed out.

OUT_DIR may be a sub-folder of IN_DIR (it is left out when IN_DIR is
scanned); OUT_DIR equal to IN_DIR, or a folder containing IN_DIR, is refused
(exit 2): the results would be written among the inputs, which are never
modified.

Exit codes: 0 every file done or skipped, 1 some files failed (each failure
is reported on one line and never stops the others), 2 usage errors, also when
a file failed for an option's value on that image (--tile cutting it into too
many tiles: the line names --tile and --net-size).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tinct.scale.scheduler import DEFAULT_CONNECT_TIMEOUT

__all__ = ["max_workers", "register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``batch`` sub-command."""
    from tinct.cli._options import add_option_arguments, add_output_depth_argument

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
        "--connect-timeout", type=float, default=None, metavar="S",
        help=f"seconds the --scheduler has to answer (default: {DEFAULT_CONNECT_TIMEOUT:g}; "
        f"at most {MAX_CONNECT_TIMEOUT:g})",
    )  # fmt: skip
    g.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="local worker processes (default: half the cores, at most 8; at most 4 x the cores)",
    )  # fmt: skip
    g.add_argument(
        "--threads-per-worker", type=int, default=None, metavar="T",
        help="torch threads per worker process (default: cores / workers; at most 4 x the "
        "cores, 1024 with --scheduler)",
    )  # fmt: skip
    g.add_argument(
        "--retries",
        type=int,
        default=2,
        help="retries of a task that raised (default: 2); lost workers' tasks are rescheduled",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="what every run does: inputs whose output exists and decodes are skipped, so a "
        "rerun only does the rest (the flag may be given, as with tinct train --resume)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_output_depth_argument(p)
    add_option_arguments(p)
    p.set_defaults(func=run)


#: Most --threads-per-worker accepted with --scheduler (the workers' machines are not this one).
MAX_REMOTE_THREADS = 1024
#: Most --connect-timeout accepted (seconds).
MAX_CONNECT_TIMEOUT = 600.0


def max_workers() -> int:
    """Most --workers (and --threads-per-worker) accepted: 4 x the CPU count."""
    import os

    return 4 * (os.cpu_count() or 1)


def _check_scheduler(address: str) -> None:
    """A usage error unless ``address`` reads as a Dask scheduler address (tcp://HOST:PORT)."""
    from tinct.cli._options import UsageError

    try:
        from distributed.comm import parse_address
        from distributed.comm.addressing import parse_host_port
    except ImportError:
        return  # reported below: tinct batch needs dask.distributed
    try:
        proto, loc = parse_address(address)
        if proto in ("tcp", "tls", "ws", "wss", "ucx"):
            host, port = parse_host_port(loc)
            if not host:
                raise ValueError("no host")
            if port is not None and not 0 < int(port) < 65536:  # was 5 s of waiting, exit 1
                raise ValueError(f"port {port} is not in 1-65535")
    except (ValueError, TypeError) as exc:
        raise UsageError(
            "--scheduler", f"{address!r} is not a scheduler address ({exc}); "
            "give it as tcp://HOST:PORT, e.g. tcp://localhost:8786",
        ) from None  # fmt: skip


def _check_apart(in_dir: Path, out_dir: Path) -> None:
    """OUT_DIR may be inside IN_DIR (it is skipped when scanning) but not IN_DIR or above it.

    Raises:
        UsageError: OUT_DIR is IN_DIR itself or one of its parents: the results
            would be written among the inputs.
    """
    from tinct.cli._options import UsageError

    rin, rout = in_dir.resolve(), out_dir.resolve()
    if rout == rin:
        raise UsageError(
            "OUT_DIR", f"{out_dir} is IN_DIR itself; the results would be written among the "
            "inputs: choose another folder (a sub-folder of IN_DIR is fine)",
        )  # fmt: skip
    if rout in rin.parents:
        raise UsageError(
            "OUT_DIR", f"{out_dir} contains IN_DIR {in_dir}; the results would be written among "
            "the inputs: choose a folder outside IN_DIR or a sub-folder of it",
        )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run ``tinct batch``; returns the exit code."""
    import os

    from tinct.cli._options import (
        RuntimeFailure,
        UsageError,
        check_device,
        check_model,
        ensure_weights,
        make_folder,
        options_from_args,
    )

    options = options_from_args(args)
    in_dir, out_dir = Path(args.in_dir), Path(args.out_dir)
    if not in_dir.is_dir():
        what = "is a file, not a folder" if in_dir.exists() else "does not exist"
        raise UsageError("IN_DIR", f"{in_dir} {what}")
    _check_apart(in_dir, out_dir)
    cap, why = max_workers(), f"4 x the {os.cpu_count() or 1} cores"
    if args.workers is not None and not 1 <= args.workers <= cap:
        raise UsageError("--workers", f"must be in [1, {cap}] ({why}), got {args.workers}")
    if args.scheduler:  # the threads run on the cluster's machines, not this one
        cap, why = MAX_REMOTE_THREADS, "with --scheduler"
    if args.threads_per_worker is not None and not 1 <= args.threads_per_worker <= cap:
        raise UsageError(
            "--threads-per-worker", f"must be in [1, {cap}] ({why}), got {args.threads_per_worker}"
        )
    if args.scheduler:
        _check_scheduler(args.scheduler)
    timeout = DEFAULT_CONNECT_TIMEOUT if args.connect_timeout is None else args.connect_timeout
    if not 0 < timeout <= MAX_CONNECT_TIMEOUT:  # also NaN
        raise UsageError(
            "--connect-timeout", f"must be > 0 and at most {MAX_CONNECT_TIMEOUT:g} s, got {timeout}"
        )
    if args.retries < 0:
        raise UsageError("--retries", f"must be >= 0, got {args.retries}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError("OUT_DIR", f"{out_dir} is a file, not a folder")
    record = check_model(options, hinted=False, hints_flag=None)  # once, not once per file
    if not args.scheduler:  # a cluster's workers may have the GPU this machine lacks
        check_device(options.device)
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise RuntimeFailure(
            "tinct batch needs dask.distributed: pip install -e '.[distributed]'"
        ) from None
    from tinct.scale.batch import run_batch
    from tinct.scale.planning import find_inputs
    from tinct.scale.scheduler import SchedulerUnreachableError

    found = find_inputs(in_dir, exclude=out_dir)
    if not found:
        from tinct.engine.outputs import IMAGE_SUFFIXES
        from tinct.engine.video import VIDEO_SUFFIXES

        suffixes = " ".join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        raise UsageError("IN_DIR", f"no images or videos under {in_dir} ({suffixes})")
    if args.output_depth == "16":  # a video's output is an .mp4: refused before any work
        from tinct.engine.video import is_video

        videos = [p for p in found if is_video(p)]
        if videos:
            more = f" (and {len(videos) - 1} more)" if len(videos) > 1 else ""
            raise UsageError(
                "--output-depth", f"{videos[0]}{more} is a video, written as .mp4 with 8 bits "
                "a channel; 16 bits need images only (auto or 8 write it with 8)",
            )  # fmt: skip
    ensure_weights(record, progress=not args.quiet)  # once here, not once per worker
    make_folder(out_dir, "OUT_DIR")
    try:
        summary = run_batch(
            args.in_dir, args.out_dir, options, scheduler=args.scheduler, workers=args.workers,
            threads_per_worker=args.threads_per_worker, retries=args.retries,
            progress=not args.quiet, connect_timeout=timeout, output_depth=args.output_depth,
        )  # fmt: skip
    except SchedulerUnreachableError as exc:
        more = "" if args.connect_timeout else "; --connect-timeout S gives a slow cluster longer"
        raise RuntimeFailure(f"--scheduler: {exc}{more}") from None
    print(f"tinct batch: {summary.line()}", file=sys.stderr)
    return summary.exit_code
