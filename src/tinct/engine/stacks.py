"""Stacks from files colorized a few planes a call, so that memory does not grow with them.

:meth:`tinct.Colorizer.colorize` keeps a call's network output for re-decoding (napari
changes the temperature without a network pass), and decodes every plane at once: about
16 MB a plane at ``net_size`` 256, whatever the plane's size. A 460 KB TIFF of 2000 pages
of 8 x 8 pixels (128,000 pixels, far under the file limit) asked for some 32 GB and was
killed. :func:`colorize_stack`, the path of ``tinct colorize`` and ``tinct batch``, gives
the colorizer :data:`PLANES_PER_CALL` planes at a time instead; the result is the one a
single call gives: intensities map by the whole stack's range (its percentiles, as one
call takes them) and the input notes (blank pixels, a nearly black stack, its nearly
constant planes) are the whole stack's (:func:`stack_notes`), issued once. With ``temporal``
:func:`tinct.engine.temporal.colorize_sequence` feeds its sequence to one
:class:`~tinct.engine.temporal.TemporalRun` in pieces of the same size, whoever calls it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinct.engine import inputs as _in
from tinct.engine.thread_warnings import collect_warnings

__all__ = [
    "PLANES_PER_CALL",
    "colorize_stack",
    "planes_per_call",
    "stack_notes",
    "whole_stack_range",
]

#: Planes one colorizer call gets at ``net_size`` 256 (:func:`planes_per_call`): its network
#: output, kept whole, grows with them.
PLANES_PER_CALL = 16


def planes_per_call(net_size: int | None) -> int:
    """Planes a call gets at ``net_size``: :data:`PLANES_PER_CALL` at 256, fewer above.

    A plane's network output grows with the network's side squared (one 64 x 64 image took
    0.6 GB at ``--net-size 1024``, 1.5 GB at 2048), so a call gets fewer planes in
    proportion, one at least.
    """
    side = max(256, int(net_size or 256))
    return max(1, PLANES_PER_CALL * 256**2 // side**2)


def colorize_stack(
    colorizer: Any,
    image: Any,
    *,
    hints: Sequence[Any] = (),
    reference: Any = None,
    options: Any = None,
) -> np.ndarray:
    """Colorize an image or a stack as :meth:`~tinct.Colorizer.colorize` does, in pieces.

    Args:
        colorizer: The :class:`~tinct.Colorizer`.
        image: ``(..., H, W)`` gray or ``(..., H, W, 3|4)`` RGB(A), as read from a file.
        hints: Hints, applied to every plane.
        reference: Optional colour reference image.
        options: The call's :class:`~tinct.ColorizeOptions` (``None``: the colorizer's).

    Returns:
        What ``colorizer.colorize(image, hints, reference, options=options)`` returns.

    Raises:
        TypeError: Unsupported input type or dtype.
        ValueError: Invalid input, hints or options.
    """
    arr, is_rgb = _in._validate(image, None)
    lead = arr.shape[:-3] if is_rgb else arr.shape[:-2]
    planes = math.prod(lead)
    temporal = (options or colorizer.options).temporal
    resolved = colorizer.resolve_options(options, hinted=bool(hints))
    per_call = planes_per_call(resolved.net_size)
    if planes <= per_call or temporal:  # a sequence is fed in pieces by the engine
        return colorizer.colorize(arr, hints, reference, options=options, rgb=is_rgb)
    ranged = whole_stack_range(arr, is_rgb, resolved)
    call = (options or colorizer.options).replace(intensity_range=ranged.intensity_range)
    flat = arr.reshape(planes, *arr.shape[len(lead) :])
    outs = []
    with collect_warnings(_in.InputWarning):  # each piece's own notes: the stack's follow
        for i in range(0, planes, per_call):
            piece = flat[i : i + per_call]
            outs.append(colorizer.colorize(piece, hints, reference, options=call, rgb=is_rgb))
    for note in stack_notes(colorizer, arr, is_rgb, resolved):
        warnings.warn(note, _in.InputWarning, stacklevel=2)
    out = np.concatenate(outs, 0)
    return out.reshape(*lead, *out.shape[1:])


def stack_notes(colorizer: Any, arr: np.ndarray, is_rgb: bool, options: Any) -> list[str]:
    """The input notes one call over the whole stack ``arr`` gives (each piece has its own).

    Args:
        colorizer: The :class:`~tinct.Colorizer` (its colour space makes RGB input gray).
        arr: The validated stack.
        is_rgb: Its last axis holds colour channels.
        options: Resolved options (normalisation, percentiles, intensity range).

    Returns:
        The notes, as :func:`tinct.engine.inputs.prepare_noted` words them.
    """
    return _in.prepare_noted(
        arr, space=colorizer.info.space, normalize=options.normalize,
        percentiles=options.percentiles, rgb=is_rgb, intensity_range=options.intensity_range,
    ).notes  # fmt: skip


def whole_stack_range(arr: np.ndarray, is_rgb: bool, options: Any) -> Any:
    """Options that map intensities by one range for the whole stack.

    Percentile normalisation (the default for all but uint8 data) would
    otherwise be computed per run of planes that share hints, and colour
    would jump where one run ends; the stack's percentiles become the
    ``intensity_range`` of every plane instead.

    Args:
        arr: ``(..., H, W[, C])`` the validated stack.
        is_rgb: The last axis holds colour channels.
        options: Resolved :class:`~tinct.ColorizeOptions`.

    Returns:
        ``options``, with ``intensity_range`` set when percentiles apply.
    """
    if options.intensity_range is not None:  # one range already (napari's contrast limits)
        return options
    part = arr[..., :3] if is_rgb else arr
    if _in.normalization_mode(part.dtype, options.normalize) != "percentile":
        return options
    lo, hi = _in._range(part, options.normalize, options.percentiles)
    return options.replace(intensity_range=(lo, hi)) if hi > lo else options
