"""One file of a folder batch, colorized on a Dask worker (the task of ``tinct batch``).

:func:`colorize_file` is what every task of :func:`tinct.scale.batch.run_batch`
runs; it

* loads the model once per worker process (:func:`tinct.scale.workers.worker_colorizer`);
* names the output exactly as ``tinct colorize IN -o OUT_DIR`` does
  (:func:`tinct.engine.outputs.output_path_for`), inside the same relative
  sub-folder as the input (``IN/a/b/x.png`` -> ``OUT/a/b/x_colorized.png``);
* writes atomically: a hidden temporary file in the destination folder, then
  :func:`os.replace`, so an output either exists completely or not at all,
  even when a worker is killed mid-write;
* skips inputs whose output already exists and decodes (a rerun resumes an
  interrupted run; a 0-byte or truncated output is colorized again);
* streams videos file to file (:func:`tinct.engine.video.colorize_video`);
* writes with the bits a channel ``output_depth`` asks for
  (:func:`tinct.engine.outputs.output_depth`: by default a uint16 input gives
  a 16-bit PNG, everything else 8 bits; stacks a uint8 or float32 TIFF);
* never raises for a bad file: it returns a :class:`FileResult` with
  ``status="failed"`` and the error, so one corrupt image does not stop the run;
  what is not a regular file (a FIFO, a device, a broken or looping link) fails
  before anything opens it, since reading a FIFO would wait for ever.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinct.engine.filelimits import check_regular_file
from tinct.engine.options import ColorizeOptions
from tinct.engine.optionspec import OptionError
from tinct.engine.outputs import (
    OutputDepthError,
    atomic_output,
    check_output_depth,
    output_depth,
    output_path_for,
    write_result,
)
from tinct.engine.thread_warnings import collect_warnings
from tinct.scale.planning import existing_output

__all__ = ["FileResult", "check_not_empty", "colorize_file", "file_error"]


@dataclass
class FileResult:
    """Outcome of one input file.

    Attributes:
        input: The input file.
        output: The output written (or found, for skipped files); ``None`` if failed.
        status: ``"done"``, ``"skipped"`` or ``"failed"``.
        error: One-line error message for failed files (it does not repeat the
            file name: ``tinct batch`` prints ``INPUT: error``).
        seconds: Time spent in the task.
        worker: Address/name of the worker that ran it (``""`` in-process).
        warnings: The file's warnings for the user (e.g. the input is nearly
            black), one line each; told by ``tinct batch`` as ``FILE: warning: ...``.
        option: The option at fault when the file failed for an option's value on
            this image (a ``tile`` that cuts it into too many tiles), else ``""``;
            ``error`` then names it by its flag (``--tile: ...``) and ``tinct batch``
            exits 2.
    """

    input: str
    output: str | None
    status: str
    error: str = ""
    seconds: float = 0.0
    worker: str = ""
    warnings: tuple[str, ...] = ()
    option: str = ""


def file_error(exc: BaseException, path: str | Path) -> str:
    """The first line of a file's error, without the file name a reader put in front of it.

    The engine's readers say ``PATH: not an image file ...`` (or ``PATH is not a
    regular file ...``); a front end that names the file itself (``tinct batch:
    PATH: why``) would otherwise name it twice.

    Args:
        exc: The error.
        path: The file, as it was given to the reader.

    Returns:
        One line (the exception's type name when it has no message).
    """
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    for prefix in (f"{path}: ", f"{path} is ", f"{path} "):  # "PATH declares ..." too
        if line.startswith(prefix) and line != prefix:
            return line[len(prefix) :]
    return line


def check_not_empty(path: Path) -> None:
    """An empty regular file fails as such, not as "not an image file of a format ...".

    Raises:
        OSError: ``path`` is a regular file of 0 bytes.
    """
    if path.is_file() and path.stat().st_size == 0:
        raise OSError("the file is empty (0 bytes)")


def _worker() -> Any:
    """The current Dask worker, or ``None`` outside one."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _auto_threads(worker: Any) -> int | None:
    """Torch threads for a worker: its cores shared among its Dask threads."""
    if worker is None:
        return None
    nthreads = getattr(getattr(worker, "state", None), "nthreads", None) or getattr(
        worker, "nthreads", 1
    )
    return max(1, (os.cpu_count() or 1) // max(1, int(nthreads)))  # type: ignore[arg-type]


def colorize_file(
    input_path: str | Path,
    out_dir: str | Path,
    options: ColorizeOptions | None = None,
    *,
    threads: int | None = None,
    pretrained: bool = True,
    output_depth: str = "auto",
) -> FileResult:
    """Colorize one file into ``out_dir`` (the task of ``tinct batch``); never raises.

    Args:
        input_path: The image or video file.
        out_dir: Destination folder (created if needed).
        options: Colorization options; ``model``, ``device`` and ``precision``
            pick the per-process colorizer. ``None`` = ``ColorizeOptions()``
            (the defaults, as :func:`tinct.scale.batch.run_batch` uses).
        threads: Torch threads for this process; ``None`` = the cores divided
            by the worker's Dask threads (inside a Dask worker), else unchanged.
        pretrained: Load trained weights (``False``: random weights, tests).
        output_depth: Bits a channel of the output, ``"auto"``, ``"8"`` or ``"16"``
            (:func:`tinct.engine.outputs.output_depth`); ``"16"`` fails a video
            (8 bits a channel) naming ``--output-depth``, before it is read.

    Returns:
        The outcome; errors are caught and reported in it.
    """
    t0 = time.perf_counter()
    options = ColorizeOptions() if options is None else options
    src = Path(input_path)
    out = Path(out_dir)
    w = _worker()
    worker = str(w.address) if w is not None else ""
    if threads is None:
        threads = _auto_threads(w)
    found = existing_output(src, out)
    if found is not None:
        return FileResult(str(src), str(found), "skipped", worker=worker)
    try:
        check_regular_file(src)  # a FIFO or a device would block its reader for ever
        check_not_empty(src)
        from tinct.scale.workers import worker_colorizer

        c = worker_colorizer(
            options.model, options.device, options.precision, pretrained=pretrained,
            threads=threads,
        )  # fmt: skip
        with collect_warnings(Warning) as caught:  # this thread's; told by the batch, a line each
            dest = _colorize(c, src, out, options, output_depth)
    except OutputDepthError as exc:  # --output-depth 16 for a video
        return FileResult(
            str(src), None, "failed", f"--output-depth: {exc}", time.perf_counter() - t0, worker,
            option="output_depth",
        )  # fmt: skip
    except OptionError as exc:  # the command line's fault on this image, worded with its flags
        return FileResult(
            str(src), None, "failed", exc.message_for("cli"), time.perf_counter() - t0, worker,
            option=exc.field,
        )  # fmt: skip
    except Exception as exc:  # reported, never raised: one bad file must not stop the run
        return FileResult(
            str(src), None, "failed", file_error(exc, src), time.perf_counter() - t0, worker
        )  # fmt: skip
    told = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    seconds = time.perf_counter() - t0
    return FileResult(str(src), str(dest), "done", "", seconds, worker, tuple(dict.fromkeys(told)))


def _colorize(c: Any, src: Path, out: Path, options: ColorizeOptions, depth: str) -> Path:
    """Colorize one image or video file into ``out`` with ``depth``; returns the output."""
    from tinct.engine.imagefiles import read_image
    from tinct.engine.stacks import colorize_stack
    from tinct.engine.video import colorize_video, is_video

    if is_video(src):  # streamed file to file, never held in memory
        dest = output_path_for(src, out)
        check_output_depth(depth, dest)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_output(dest) as tmp:
            colorize_video(c, src, tmp, options=options, temporal=options.temporal,
                           progress=False)  # fmt: skip
        return dest
    image = read_image(src)
    result = colorize_stack(c, image, options=options)  # a stack a few planes a call
    dest = output_path_for(src, out, stack=result.ndim > 3)
    bits = output_depth(depth, image.dtype, dest, stack=result.ndim > 3)
    out.mkdir(parents=True, exist_ok=True)
    write_result(dest, result, depth=bits)
    return dest
