"""tinct colorize IN... -o OUT: colorize image files (PNG, JPEG, TIFF, FITS, ...) and videos.

Output naming: with one input, -o may name the output file (its suffix picks
the format: .png, .jpg, .tif, .bmp, .webp, .gif; an unknown suffix such as
.pgn is an error, and so is .fits: FITS is read, not written); with several,
-o names a folder (an image or video name such as out.png is an error unless
it is an existing folder or ends with /). A stack (a
multi-page TIFF or a FITS cube) needs a .tif or .tiff output name. Otherwise (several
inputs, or -o an existing folder, a path ending in / or without a suffix) each result goes to
OUT/<stem>_colorized.png (stacks from multi-page TIFFs and FITS cubes: .tif;
videos: .mp4).
Two inputs with the same stem (a.png and a.jpg) would get the same name, and
an output may not be one of the inputs (the input is never modified): both
are errors, reported before anything runs. Results are written atomically:
an existing output is replaced only by a complete new one.

Bit depth (--output-depth): by default (auto) a 16-bit input (uint16, or any
integer of more than 8 bits) written as PNG or TIFF is 16-bit RGB (RGBA with
alpha); 8-bit and float inputs, and JPEG, WebP, BMP and GIF outputs, are 8 bits
a channel (alpha kept where the format has it); a stack's TIFF holds uint8 for
8-bit input and float32 in [0, 1] for anything else. --output-depth 8 or 16
forces the depth (a stack's TIFF too); 16 for a .jpg, .webp, .bmp, .gif or
video output is a usage error.

Videos (.mp4, .mov, .avi, .mkv, .webm, ...; the video extra) are streamed
frame by frame with a progress bar, keeping the frame rate and the audio.
With --temporal colour holds still where the content persists (stacks and
videos) and hints, placed on the first frame, follow the content.

Hints file (--hints): CSV with a header naming the columns row, col, r, g, b
and optionally size (any order; x/y are accepted for col/row), one hint per
line, colours 0-255 (or floats 0-1), row/col in image pixels; or a JSON list
of {"row":, "col":, "color": [r, g, b], "size":}. Lines starting with # are
comments. Without a header the columns are row, col, r, g, b[, size].

Exit codes: 0 all files done; 1 some files failed (each failure is one line and
never stops the others: among several inputs a folder, a FIFO or a broken link,
say one a glob matched, is such a failure) or a runtime failure; 2 a usage error (one line naming
the flag: bad option value, hints or reference file, unknown model, ...), also
when a file failed for an option's value on that image (--tile cutting it into
too many tiles: the line names --tile and --net-size; the other files still run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tinct.cli._colorize_paths import (
    STACK_SUFFIXES,
    destinations,
    prepare_output,
    unusable_inputs,
)
from tinct.cli._options import (
    RuntimeFailure,
    UsageError,
    add_option_arguments,
    add_output_depth_argument,
    check_device,
    check_input_file,
    check_model,
    check_output_depth,
    ensure_weights,
    note_inactive,
    options_from_args,
)
from tinct.engine.outputs import atomic_output, write_result

__all__ = [
    "register",
    "run",
]


def register(subparsers: Any) -> None:
    """Add the ``colorize`` sub-command."""
    p = subparsers.add_parser(
        "colorize",
        help="colorize image and video files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs", nargs="+", metavar="IN", help="input images (PNG, JPEG, TIFF, FITS) or videos"
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file (one input; .png, .jpg, .tif, ..., not .fits) or folder",
    )
    p.add_argument("--hints", metavar="FILE", help="colour hints, CSV or JSON (format above)")
    p.add_argument("--reference", metavar="IMG", help="colour reference image (global hint)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_output_depth_argument(p)
    add_option_arguments(p)
    p.set_defaults(func=run)


def _read_hints(path: str) -> list[Any]:
    from tinct.engine.hints import read_hints_file

    check_input_file(path, "--hints")
    try:
        return read_hints_file(path)
    except FileNotFoundError:
        raise UsageError("--hints", f"no such file: {path}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UsageError("--hints", str(exc).splitlines()[0]) from None


def _read_reference(path: str) -> Any:
    from tinct.engine.imagefiles import read_image
    from tinct.scale.file_task import file_error

    check_input_file(path, "--reference")
    try:
        ref = read_image(path)
    except Exception as exc:  # any decoder error: the file is not an image we can read
        why = file_error(exc, path)
        raise UsageError("--reference", f"cannot read {path} as an image ({why})") from None
    if ref.ndim != 3 or ref.shape[-1] not in (3, 4):
        raise UsageError("--reference", f"{path} is not a colour image (shape {ref.shape})")
    return ref


def run(args: argparse.Namespace) -> int:
    """Run ``tinct colorize``; returns the exit code."""
    options = options_from_args(args)
    inputs = list(dict.fromkeys(Path(p) for p in args.inputs))  # a file given twice: once
    unusable = unusable_inputs(inputs)
    hints = _read_hints(args.hints) if args.hints else []
    reference = _read_reference(args.reference) if args.reference else None
    record = check_model(options, hinted=bool(hints))
    check_device(options.device)
    note_inactive("tinct colorize", args, record, hinted=bool(hints))
    to_dir, dests = destinations(inputs, args.output)
    check_output_depth(args.output_depth, dests.values())
    prepare_output(Path(args.output), to_dir)
    ensure_weights(record, progress=not args.quiet)

    from tinct.engine.colorizer import Colorizer

    try:
        colorizer = Colorizer.from_options(options)
    except Exception as exc:  # e.g. a download that fails offline
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RuntimeFailure(f"cannot load model {options.model}: {msg}") from None
    return _colorize_all(
        colorizer, inputs, dests, hints, reference, options, args.quiet, to_dir=to_dir,
        depth=args.output_depth, unusable=unusable,
    )  # fmt: skip


#: Warnings for developers, hidden by Python's default filters: never told to the user
#: (e.g. imageio-ffmpeg's pipes left to the garbage collector: "unclosed file").
DEVELOPER_WARNINGS = (ResourceWarning, DeprecationWarning, PendingDeprecationWarning)


def _say_warnings(caught: list[Any], path: Path, say: Any) -> None:
    """Tell the warnings of one file, one line each (those meant for a user).

    Advice to try another normalisation names the flag (``--normalize percentile``).
    """
    from tinct.engine.contrast import advice_in, worded_for

    for w in caught:
        if not issubclass(w.category, DEVELOPER_WARNINGS):
            say(f"tinct colorize: {path}: warning: {worded_for(str(w.message), advice_in('cli'))}")


def _colorize_all(
    colorizer: Any,
    inputs: list[Path],
    dests: dict[Path, Path],
    hints: list[Any],
    reference: Any,
    options: Any,
    quiet: bool,
    *,
    to_dir: bool = True,
    depth: str = "auto",
    unusable: dict[Path, str] | None = None,
) -> int:
    from tinct.engine.hint_raster import HintOutsideImageError
    from tinct.engine.imagefiles import read_image
    from tinct.engine.optionspec import OptionError
    from tinct.engine.outputs import output_depth
    from tinct.engine.stacks import colorize_stack
    from tinct.engine.thread_warnings import collect_warnings
    from tinct.engine.video import colorize_video, is_video
    from tinct.scale.file_task import check_not_empty, file_error

    failed, misused = 0, False  # misused: a file failed for an option's value (exit 2)
    bar = None
    if len(inputs) > 1 and not quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(inputs), unit="file", desc="colorize", file=sys.stderr)

    def say(line: str) -> None:
        bar.write(line, file=sys.stderr) if bar else print(line, file=sys.stderr)

    try:  # the bar is closed however the loop ends: Ctrl-C's line then has its own line
        for path in inputs:
            if unusable and path in unusable:  # a folder or a FIFO among the inputs: never opened
                failed += 1
                say(f"tinct colorize: {path}: {unusable[path]}")
                if bar:
                    bar.update(1)
                continue
            try:
                check_not_empty(path)  # "the file is empty", a video's too
                if is_video(path):  # streamed file to file (tinct.engine.video), a bar of its own
                    with atomic_output(dests[path]) as tmp, collect_warnings(Warning) as caught:
                        colorize_video(colorizer, path, tmp, options=options, hints=hints,
                                       reference=reference, temporal=options.temporal,
                                       progress=not quiet and bar is None)  # fmt: skip
                    _say_warnings(caught, path, say)
                    if bar:
                        bar.update(1)
                    continue
                image = read_image(path)
                with collect_warnings(Warning) as caught:  # this thread's, every time
                    result = colorize_stack(  # a stack a few planes a call: bounded memory
                        colorizer, image, hints=hints, reference=reference, options=options
                    )
                _say_warnings(caught, path, say)
                dest = dests[path]
                if result.ndim > 3 and dest.suffix.lower() not in STACK_SUFFIXES:
                    if not to_dir:  # an explicit name is honoured, never changed
                        raise ValueError(
                            "-o: the result is a stack; a stack needs a .tif or .tiff output "
                            f"name, got {dest}"
                        )
                    dest = dest.with_suffix(".tif")
                bits = output_depth(depth, image.dtype, dest, stack=result.ndim > 3)
                write_result(dest, result, depth=bits)
            except KeyboardInterrupt:
                raise
            except HintOutsideImageError as exc:  # the hints file's fault, this file fails
                failed += 1
                say(f"tinct colorize: {path}: --hints: {exc}")
            except OptionError as exc:  # e.g. --tile cuts this image into too many tiles
                failed, misused = failed + 1, True
                say(f"tinct colorize: {path}: {exc.message_for('cli')}")
            except Exception as exc:
                failed += 1
                say(f"tinct colorize: {path}: {file_error(exc, path)}")
            if bar:
                bar.update(1)
    finally:
        if bar:
            bar.close()
    return 2 if misused else 1 if failed else 0
