"""``tinct colorize IN... -o OUT``: colorize image files.

Output naming: for one input, ``-o`` may name the output file; otherwise
(several inputs, or ``-o`` an existing directory / a path without an image
or video suffix / ending in a separator) each result is written to
``OUT_DIR/<stem>_colorized.png`` (:func:`output_path_for`; stacks from
multi-page TIFFs become ``<stem>_colorized.tif``, videos
``<stem>_colorized.mp4``). The batch tool reuses :func:`output_path_for`.

Videos (``.mp4``, ``.mov``, ``.avi``, ``.mkv``, ... ; the ``video`` extra) are
streamed frame by frame with a progress bar, keeping the frame rate and the
audio. With ``--temporal`` colour holds still where the content persists and
hints (placed on the first frame) follow the content.

Exit codes: 0 all files done, 1 some files failed (each failure is reported
on one line and never stops the others), 2 usage errors (bad options, hints
or reference file, unknown model).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["IMAGE_SUFFIXES", "add_option_arguments", "output_path_for", "register", "run"]

#: File suffixes read as images.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")


def output_path_for(input_path: str | Path, out_dir: str | Path, *, stack: bool = False) -> Path:
    """Where the result for ``input_path`` goes inside ``out_dir``.

    Args:
        input_path: The input image file.
        out_dir: The output directory.
        stack: The result is a stack (written as TIFF).

    Returns:
        ``out_dir / "<stem>_colorized.png"`` (``.tif`` for stacks, ``.mp4`` for videos).
    """
    from tinct.video import is_video

    suffix = ".mp4" if is_video(input_path) else ".tif" if stack else ".png"
    return Path(out_dir) / f"{Path(input_path).stem}_colorized{suffix}"


def add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the shared colorization options (``--model``, ``--temperature``, ...) to a parser."""
    g = parser.add_argument_group("colorization options")
    g.add_argument("--model", default=None, help="model name or .safetensors path (tinct-base)")
    g.add_argument("--temperature", type=float, default=None, help="decoder temperature (> 0)")
    g.add_argument("--decoder", default=None, help="annealed_mean, mean, median, mode, sample, ab")
    g.add_argument("--mrf-weight", type=float, default=None, help="MRF smoothing (0 = off)")
    g.add_argument("--mrf-iters", type=int, default=None, help="MRF iterations")
    g.add_argument(
        "--propagation",
        type=float,
        default=None,
        help="edge-aware hint propagation strength (0 = off; default: the model's)",
    )
    g.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    g.add_argument("--precision", default=None, help="auto, float32, float16, bfloat16")
    g.add_argument(
        "--tile", default=None, help="tile side in network pixels; 0 = off; auto (default)"
    )
    g.add_argument("--net-size", type=int, default=None, help="network long side (model default)")
    g.add_argument(
        "--normalize", default=None, help="auto (default), dtype or percentile intensity scaling"
    )
    g.add_argument(
        "--percentiles", nargs=2, type=float, default=None, metavar=("LO", "HI"),
        help="percentiles for --normalize percentile (0.5 99.5)",
    )  # fmt: skip
    g.add_argument("--hint-size", type=int, default=None, help="default hint side (network px)")
    g.add_argument(
        "--temporal", action="store_true", default=None,
        help="stacks and videos: colour holds still along the first axis (time/depth) and "
        "hints carry to later planes",
    )  # fmt: skip


def options_from_args(args: argparse.Namespace) -> Any:
    """Build :class:`tinct.ColorizeOptions` from parsed arguments (raises ValueError)."""
    from tinct.options import ColorizeOptions

    names = ColorizeOptions.field_names()
    return ColorizeOptions.from_mapping({k: v for k, v in vars(args).items() if k in names})


def register(subparsers: Any) -> None:
    """Add the ``colorize`` sub-command."""
    p = subparsers.add_parser(
        "colorize",
        help="colorize image files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs", nargs="+", metavar="IN", help="input images (PNG, JPEG, TIFF, ...) or videos"
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="output file (one input) or directory"
    )
    p.add_argument(
        "--hints", metavar="FILE", help="CSV/JSON hints: row, col, r, g, b[, size] (0..255)"
    )
    p.add_argument("--reference", metavar="IMG", help="colour reference image (global hint)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_option_arguments(p)
    p.set_defaults(func=run)


def _usage(msg: str) -> int:
    print(f"tinct colorize: error: {msg}", file=sys.stderr)
    return 2


def _is_dir_target(out: Path, n_inputs: int) -> bool:
    from tinct.video import VIDEO_SUFFIXES

    if n_inputs > 1 or out.is_dir() or str(out).endswith(("/", "\\")):
        return True
    return out.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES


def _write(path: Path, result: Any) -> None:
    from tinct.inputs import write_image

    if result.ndim > 3:
        try:
            import tifffile
        except ImportError:
            raise RuntimeError("writing a colorized stack needs the tifffile package") from None
        tifffile.imwrite(path, result, photometric="rgb")
        return
    write_image(path, result)


def run(args: argparse.Namespace) -> int:
    """Run ``tinct colorize``; returns the exit code."""
    from tinct.hints import read_hints_file
    from tinct.inputs import read_image
    from tinct.video import colorize_video, is_video

    try:
        options = options_from_args(args)
    except ValueError as exc:
        return _usage(str(exc))
    inputs = [Path(p) for p in args.inputs]
    out = Path(args.output)
    to_dir = _is_dir_target(out, len(inputs))
    if not to_dir and is_video(inputs[0]) != is_video(out):
        kind = "a video file (.mp4) or a folder" if is_video(inputs[0]) else "an image file"
        return _usage(f"-o {out}: the output for {inputs[0]} must be {kind}")
    hints: list[Any] = []
    if args.hints:
        try:
            hints = read_hints_file(args.hints)
        except (OSError, ValueError) as exc:
            return _usage(f"--hints {args.hints}: {exc}")
    reference = None
    if args.reference:
        try:
            reference = read_image(args.reference)
        except OSError as exc:
            return _usage(f"--reference {args.reference}: {exc}")

    from tinct.engine import Colorizer

    try:
        colorizer = Colorizer.from_options(options)
    except KeyError as exc:  # unknown model name
        return _usage(str(exc.args[0]) if exc.args else str(exc))
    except ValueError as exc:
        return _usage(str(exc))
    except Exception as exc:
        print(f"tinct colorize: error: cannot load model {options.model!r}: {exc}", file=sys.stderr)
        return 1

    if to_dir:
        out.mkdir(parents=True, exist_ok=True)
    failed = 0
    bar = None
    if len(inputs) > 1 and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(inputs), unit="image", desc="colorize", file=sys.stderr)
    for path in inputs:
        try:
            if is_video(path):  # streamed file to file (tinct.video)
                dest = output_path_for(path, out) if to_dir else out
                colorize_video(colorizer, path, dest, options=options, hints=hints,
                               reference=reference, temporal=options.temporal,
                               progress=not args.quiet and bar is None)  # fmt: skip
                if bar:
                    bar.update(1)
                continue
            image = read_image(path)
            result = colorizer.colorize(image, hints=hints, reference=reference, options=options)
            dest = output_path_for(path, out, stack=result.ndim > 3) if to_dir else out
            _write(dest, result)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            failed += 1
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            line = f"tinct colorize: {path}: {msg}"
            (bar.write(line, file=sys.stderr) if bar else print(line, file=sys.stderr))
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return 1 if failed else 0
