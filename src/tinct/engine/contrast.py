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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinct.engine.optionspec import name_in

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["ADVICE_FIELD", "ADVICE_VALUE", "NEUTRAL_ADVICE", "advice_in", "contrast_notes",
           "worded_for"]  # fmt: skip

#: The option and value the advice is about.
ADVICE_FIELD, ADVICE_VALUE = "normalize", "percentile"
#: The engine's words for it, the same in every front end.
NEUTRAL_ADVICE = "percentile normalisation"
#: How the advice ends a note: nearly constant, nearly black.
_ADVICE_CLAUSES = ("; if the data varies more, try {}", " (try {})")


def contrast_notes(gray: Tensor, normalize: str) -> list[str]:
    """Warnings for inputs that will not colorize usefully.

    Args:
        gray: ``(B, 1, H, W)`` normalised gray in ``[0, 1]``.
        normalize: The mode that produced it (named in the note).

    Returns:
        Zero or more one-line warnings: the input is nearly constant, or it
        maps to nearly black (the output then is nearly black too). Unless
        ``normalize`` is ``"percentile"``, each ends with advice to try it, in
        words no front end owns (:func:`worded_for` rewords it).
    """
    import torch

    flat = gray.reshape(-1)
    if flat.numel() > 1 << 16:
        flat = flat[:: flat.numel() // (1 << 16) + 1]
    lo, hi = torch.quantile(flat.float(), torch.tensor([0.005, 0.995])).tolist()
    constant, black = (
        "" if normalize == ADVICE_VALUE else clause.format(NEUTRAL_ADVICE)
        for clause in _ADVICE_CLAUSES
    )
    if hi - lo < 2.0 / 255.0:  # e.g. floats under dtype: all white
        return [
            "the input is nearly constant after normalisation "
            f"({normalize}: 99% of pixels within {255 * (hi - lo):.1f}/255 gray levels){constant}"
        ]
    if hi < 0.08:
        return [
            f"the input maps to nearly black ({normalize}: 99.5% of pixels below "
            f"{100 * hi:.0f}% gray), so the result is nearly black{black}"
        ]
    return []


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


def worded_for(note: str, control: str | None) -> str:
    """A warning as a front end shows it: the advice naming its own control.

    Args:
        note: A warning from the engine; only the advice of :func:`contrast_notes`
            changes, any other text comes back as it is.
        control: How the front end names percentile normalisation (e.g.
            ``advice_in("cli")``), or ``None`` when it has no such control: the
            advice is left out.

    Returns:
        ``note`` with the engine's words for the advice replaced.
    """
    for clause in _ADVICE_CLAUSES:
        neutral = clause.format(NEUTRAL_ADVICE)
        if note.endswith(neutral):
            return note[: -len(neutral)] + ("" if control is None else clause.format(control))
    return note
