"""``tinct demo``: colorize the bundled sample and write a before/after PNG (no network)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["WRITABLE", "before_after", "register", "run"]

#: Output suffixes ``tinct demo`` writes (the format follows the suffix).
WRITABLE = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def before_after(gray: np.ndarray, rgb: np.ndarray, gap: int = 8) -> np.ndarray:
    """Side-by-side image: the gray input (as RGB), a white gap, the colorized result.

    Args:
        gray: ``(H, W)`` uint8.
        rgb: ``(H, W, 3)`` uint8.
        gap: Width of the white separator in pixels.

    Returns:
        ``(H, 2 W + gap, 3)`` uint8.
    """
    h, w = gray.shape
    canvas = np.full((h, 2 * w + gap, 3), 255, np.uint8)
    canvas[:, :w] = gray[..., None]
    canvas[:, w + gap :] = rgb[..., :3]
    return canvas


def register(subparsers: Any) -> None:
    """Add the ``demo`` sub-command."""
    p = subparsers.add_parser(
        "demo",
        help="colorize the bundled sample image (before/after PNG)",
        description=__doc__,
    )
    p.add_argument(
        "-o", "--output", default="before_after.png", help="output PNG (default: before_after.png)"
    )
    p.add_argument(
        "--model",
        default="tinct-base",
        help="model name or .safetensors path (default: tinct-base)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps (default: auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``tinct demo``; returns the exit code."""
    from tinct.cli._options import (
        RuntimeFailure,
        UsageError,
        check_device,
        check_model,
        ensure_weights,
        make_folder,
    )
    from tinct.data import load_sample
    from tinct.engine.colorizer import Colorizer
    from tinct.engine.options import ColorizeOptions
    from tinct.engine.optionspec import OptionError
    from tinct.engine.outputs import write_result

    try:
        options = ColorizeOptions(model=args.model, device=args.device)
    except OptionError as exc:
        raise UsageError(ColorizeOptions.name_in(exc.field, "cli"), exc.detail_for("cli")) from None
    record = check_model(options, hinted=False, hints_flag=None)
    check_device(options.device)  # named as in colorize and batch, before any download
    out = Path(args.output)
    if out.is_dir():
        raise UsageError("-o", f"{out} is a folder; name the output PNG file")
    if out.suffix.lower() not in WRITABLE:
        what = (
            f"{out.suffix} is not an image format tinct writes"
            if out.suffix
            else ("the file name has no suffix to choose the image format by")
        )
        raise UsageError("-o", f"{out}: {what} (use {', '.join(WRITABLE)})")
    make_folder(out.parent if str(out.parent) else Path("."), "-o")
    ensure_weights(record)
    gray = load_sample(gray=True)
    try:
        colorizer = Colorizer.from_options(options)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RuntimeFailure(f"cannot load model {args.model}: {msg}") from None
    rgb = colorizer.colorize(gray)
    try:
        write_result(out, before_after(gray, rgb))
    except OSError as exc:
        raise RuntimeFailure(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out} (left: input, right: {args.model})")
    return 0
