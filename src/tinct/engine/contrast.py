"""Warnings about inputs that colorize poorly, worded for whichever front end shows them.

:func:`contrast_notes` tells when an input is nearly constant after normalisation, or
maps to nearly black. Its advice, to try percentile normalisation, is in the engine's
own words (:data:`NEUTRAL_ADVICE`), which name no front end's control; a front end that
has one names it its own way with :func:`worded_for`, as it names an option of an
:class:`~tinct.engine.optionspec.OptionError`: ``--normalize percentile`` in ``tinct
colorize`` and ``tinct batch`` (:func:`advice_in`), the normalisation box's choice in the
napari widget. A front end without such a control (the GIMP plug-in always sends
``normalize="dtype"``) passes ``None``, which leaves the advice out. The notes stay
plain text, so they pass through workers and re-issued warnings as they are and are
worded where they are shown.

A note names the normalisation mode that produced the gray levels (``dtype: 99.5% of
pixels below 4% gray``): the CLI's and napari's own word for it. A front end whose users
know their data by its precision instead (an image editor: "16-bit integer", "32-bit
floating point"; the GIMP plug-in through the bridge) passes that name as ``data``:
a note on data taken as it is (``dtype``) is then worded plainly, with the precision
and without "normalisation" (:func:`worded_for`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tinct.engine.optionspec import name_in

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["ADVICE_FIELD", "ADVICE_VALUE", "FLAT_SPREAD", "NEUTRAL_ADVICE", "advice_in",
           "contrast_notes", "featureless_planes", "neutral_if_featureless",
           "with_mode_named", "worded_for"]  # fmt: skip

#: The option and value the advice is about.
ADVICE_FIELD, ADVICE_VALUE = "normalize", "percentile"
#: The engine's words for it, the same in every front end.
NEUTRAL_ADVICE = "percentile normalisation"
#: How the advice ends a note: nearly constant, nearly black.
_ADVICE_CLAUSES = ("; if the data varies more, try {}", " (try {})")
#: Where a note of :func:`contrast_notes` names its normalisation mode.
_MODE_AT = re.compile(r"(?:the input is nearly constant after normalisation|the input maps to "
                      r"nearly black) \((?P<mode>\w+): 99")  # fmt: skip
#: The two notes as :func:`contrast_notes` words them (the advice follows).
_NOTES = (
    re.compile(r"the input is nearly constant after normalisation \((?P<mode>\w+): 99% of "
               r"pixels within (?P<spread>[0-9.]+)/255 gray levels\)"),
    re.compile(r"the input maps to nearly black \((?P<mode>\w+): 99\.5% of pixels below "
               r"(?P<top>[0-9]+)% gray\), so the result is nearly black"),
)  # fmt: skip
#: The mode whose gray levels are the data's own (named by its precision when plain).
_AS_IS = "dtype"
#: Spread (0.5 to 99.5 percentile, in ``[0, 1]`` gray) under which an input is nearly
#: constant: under 2 of 255 gray levels.
FLAT_SPREAD = 2.0 / 255.0
#: Values a spread is measured on: a regular subsample of each plane.
_SPREAD_SAMPLES = 1 << 16


def _spread(values: Tensor) -> tuple[float, float]:
    """The 0.5 and 99.5 percentiles of ``values`` (any shape), on a regular subsample."""
    import torch

    flat = values.reshape(-1)
    if flat.numel() > _SPREAD_SAMPLES:
        flat = flat[:: flat.numel() // _SPREAD_SAMPLES + 1]
    lo, hi = torch.quantile(flat.float(), torch.tensor([0.005, 0.995])).tolist()
    return lo, hi


def featureless_planes(gray: Tensor) -> Tensor:
    """Which planes carry no structure to colour: nearly constant gray.

    Args:
        gray: ``(B, 1, H, W)`` normalised gray in ``[0, 1]``.

    Returns:
        ``(B,)`` bool: 99% of the plane's pixels lie within :data:`FLAT_SPREAD`
        (the criterion of the "nearly constant" note of :func:`contrast_notes`).
    """
    import torch

    spreads = [_spread(plane) for plane in gray]
    return torch.tensor([hi - lo < FLAT_SPREAD for lo, hi in spreads], dtype=torch.bool)


def neutral_if_featureless(ab: Tensor, featureless: Tensor | None, hinted: bool = False) -> Tensor:
    """Automatic chrominance with featureless planes made neutral.

    A plane without structure says nothing about colour; the network's prior on
    it is a strong tint (a flat mid-gray came back at a mean CIELAB chroma of
    about 23, a photo at about 8), so the honest answer is the gray itself.

    Args:
        ab: ``(B, 2, h, w)`` chrominance, zero at neutral (Lab ``ab``, Luv ``uv``,
            YUV ``UV``); not modified.
        featureless: ``(B,)`` bool from :func:`featureless_planes`, or ``None``.
        hinted: The planes have colour hints: their colour is the user's, kept.

    Returns:
        ``ab`` itself when hinted or no plane is featureless, else a copy with
        those planes 0.
    """
    if hinted or featureless is None or not bool(featureless.any()):
        return ab
    keep = (~featureless).to(device=ab.device, dtype=ab.dtype).view(-1, 1, 1, 1)
    return ab * keep


def contrast_notes(gray: Tensor, normalize: str, featureless: Tensor | None = None) -> list[str]:
    """Warnings for inputs that will not colorize usefully.

    Args:
        gray: ``(B, 1, H, W)`` normalised gray in ``[0, 1]``.
        normalize: The mode that produced it (named in the note).
        featureless: ``(B,)`` bool from :func:`featureless_planes` when the caller has
            it already (computed here otherwise).

    Returns:
        Zero or more one-line warnings: the input is nearly constant, or it
        maps to nearly black (the output then is nearly black too). Unless
        ``normalize`` is ``"percentile"``, each ends with advice to try it, in
        words no front end owns (:func:`worded_for` rewords it). A stack that
        varies but holds nearly constant planes (a blank frame) gets a note naming
        them, as they come back neutral gray without hints.
    """
    lo, hi = _spread(gray)
    constant, black = (
        "" if normalize == ADVICE_VALUE else clause.format(NEUTRAL_ADVICE)
        for clause in _ADVICE_CLAUSES
    )
    if hi - lo < FLAT_SPREAD:  # e.g. floats under dtype: all white
        return [
            "the input is nearly constant after normalisation "
            f"({normalize}: 99% of pixels within {255 * (hi - lo):.1f}/255 gray levels){constant}"
        ]
    if hi < 0.08:
        return [
            f"the input maps to nearly black ({normalize}: 99.5% of pixels below "
            f"{100 * hi:.0f}% gray), so the result is nearly black{black}"
        ]
    return _flat_planes_note(gray, featureless)


#: Plane indices a note lists at most.
_LISTED_PLANES = 5


def _flat_planes_note(gray: Tensor, featureless: Tensor | None) -> list[str]:
    """The note on the nearly constant planes of a stack that varies as a whole."""
    if gray.shape[0] < 2:
        return []
    flat = featureless_planes(gray) if featureless is None else featureless
    idx = [int(i) for i in flat.nonzero().flatten().tolist()]
    if not idx:
        return []
    listed = ", ".join(str(i) for i in idx[:_LISTED_PLANES]) + (
        ", ..." if len(idx) > _LISTED_PLANES else ""
    )
    return [
        f"{len(idx)} of {gray.shape[0]} planes are nearly constant after normalisation "
        f"(plane{'s' if len(idx) > 1 else ''} {listed}, counted from 0): without hints "
        f"{'they come' if len(idx) > 1 else 'it comes'} back neutral gray"
    ]


def advice_in(style: str) -> str:
    """How a front end that names options by field names the advised setting.

    Args:
        style: ``"cli"`` (``--normalize percentile``), ``"wire"``
            (``"normalize": "percentile"``) or ``"python"`` (``normalize='percentile'``).
            A GUI names its own control and choice.

    Raises:
        ValueError: Another style.
    """
    if style == "cli":
        return f"{name_in(ADVICE_FIELD, 'cli')} {ADVICE_VALUE}"
    if style == "wire":
        return f'{name_in(ADVICE_FIELD, "wire")}: "{ADVICE_VALUE}"'
    if style == "python":
        return f"{ADVICE_FIELD}={ADVICE_VALUE!r}"
    raise ValueError(f"unknown style {style!r}: cli, wire or python")


def worded_for(note: str, control: str | None, *, data: str | None = None) -> str:
    """A warning as a front end shows it: the advice naming its own control.

    Args:
        note: A warning from the engine; only the notes of :func:`contrast_notes`
            change, any other text comes back as it is.
        control: How the front end names percentile normalisation (e.g.
            ``advice_in("cli")``), or what else it advises for a poor input, or
            ``None`` when it has nothing to advise: the advice is left out.
        data: How the front end's user knows the input's precision (e.g. ``"16-bit
            integer"``), for a front end that sends its data to be taken as it is and
            has no word for normalisation modes. A note on such data is then worded
            plainly: ``the image is nearly black (16-bit integer: 99.5% of its pixels
            below 4% gray), so the result is nearly black``; ``the image is nearly
            uniform (8-bit: 99% of its pixels within 0.4 of 255 gray levels)``. ``None``
            keeps the engine's wording, which names the mode (``dtype: ...``).

    Returns:
        ``note`` with the engine's words for the advice (and, with ``data``, for the
        rest of a note) replaced.
    """
    body, kind = note, None
    for i, clause in enumerate(_ADVICE_CLAUSES):
        neutral = clause.format(NEUTRAL_ADVICE)
        if note.endswith(neutral):
            body, kind = note[: -len(neutral)], i
    if data is not None:
        body = _plain(body, data)
    if kind is None or control is None:
        return body
    return body + _ADVICE_CLAUSES[kind].format(control)


def with_mode_named(note: str, names: Mapping[str, str]) -> str:
    """A note of :func:`contrast_notes` with its normalisation mode in a front end's words.

    Args:
        note: A warning from the engine; any other text comes back as it is.
        names: The front end's word for each mode it has one for (``{"range": "layer
            contrast limits"}``); a mode not in it is kept.

    Returns:
        ``the input maps to nearly black (layer contrast limits: 99.5% of pixels ...``
        for ``... (range: 99.5% of pixels ...``.
    """
    match = _MODE_AT.match(note)
    if match is None or match["mode"] not in names:
        return note
    start, end = match.span("mode")
    return note[:start] + names[match["mode"]] + note[end:]


def _plain(body: str, data: str) -> str:
    """A note on data taken as it is, in plain words naming its precision ``data``."""
    for i, pattern in enumerate(_NOTES):
        match = pattern.fullmatch(body)
        if match is None or match["mode"] != _AS_IS:
            continue
        if i == 1:
            return (f"the image is nearly black ({data}: 99.5% of its pixels below "
                    f"{match['top']}% gray), so the result is nearly black")  # fmt: skip
        spread = float(match["spread"])
        alike = "the same gray" if spread < 0.05 else f"within {spread:.1f} of 255 gray levels"
        return f"the image is nearly uniform ({data}: 99% of its pixels {alike})"
    return body
