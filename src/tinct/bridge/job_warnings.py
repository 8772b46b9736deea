"""The warnings a ``colorize`` job raises, caught for its ``result`` frame.

The engine tells about inputs that colorize poorly as Python warnings
(:class:`~tinct.engine.inputs.InputWarning`: an input nearly constant, or mapping
to nearly black, :func:`tinct.engine.contrast.contrast_notes`; a reference image a
model ignores). The CLI and napari show
them; a served request sends them back to its client in the result's optional
``"warnings"`` field (``docs/protocol.md``), so the GIMP plug-in can tell its user
why the result is dull. :func:`caught_warnings` collects them while the engine
runs; :func:`for_client` words them for a client of the bridge and bounds them, naming
the data by the precision the request's ``"precision"`` field gives
(:func:`precision_of`), as an image editor's user knows it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from tinct.bridge import wire as P
from tinct.bridge.backend import RequestError
from tinct.engine.contrast import worded_for
from tinct.engine.inputs import InputWarning
from tinct.engine.thread_warnings import collect_warnings

__all__ = ["CLIENT_ADVICE", "MAX_PRECISION_CHARS", "caught_warnings", "for_client",
           "precision_of"]  # fmt: skip

#: What a bridge client is advised for a nearly black or nearly uniform input: no
#: normalisation setting (the GIMP plug-in has none), what an image editor does.
CLIENT_ADVICE = "stretching its levels first"
#: Longest ``"precision"`` field accepted (it is echoed in the warnings).
MAX_PRECISION_CHARS = 40


@contextlib.contextmanager
def caught_warnings() -> Iterator[list[str]]:
    """Collect the engine's notes this thread raises in the block, every time they arise.

    Each :class:`~tinct.engine.inputs.InputWarning` (the engine's notes about the
    request's input) raised by the calling thread is recorded instead of printed, also
    when the same text has been shown before (Python would show it once per place).
    Other warnings, a library's own ``UserWarning`` included (PyTorch's, say: nothing a
    GIMP user can act on), and every warning of another thread, go to the handler that
    was in place: the server's stderr. Thread-safe
    (:func:`tinct.engine.thread_warnings.collect_warnings`): a job of napari's, run
    while its embedded server answers, keeps its own.

    Yields:
        The texts, in the order they were raised (filled when the block ends).
    """
    texts: list[str] = []
    with collect_warnings(InputWarning) as caught:
        try:
            yield texts
        finally:
            texts.extend(str(w.message) for w in caught)


def for_client(texts: Iterable[str], precision: str | None = None) -> list[str]:
    """The warnings as a bridge client gets them: worded for it, distinct and bounded.

    A client of the bridge has no normalisation control the server knows of (the
    GIMP plug-in has none: it always sends ``normalize="dtype"``), so the engine's
    advice to try percentile normalisation becomes :data:`CLIENT_ADVICE`, and a note on
    data taken as it is names the data's precision instead of the ``dtype`` mode
    (:func:`~tinct.engine.contrast.worded_for`): ``the image is nearly black (16-bit
    integer: 99.5% of its pixels below 4% gray), so the result is nearly black (try
    stretching its levels first)``.

    Args:
        texts: the warnings :func:`caught_warnings` collected.
        precision: the request's :func:`precision_of`; ``None`` keeps the mode's name.

    Returns:
        At most :data:`~tinct.bridge.wire.MAX_RESULT_WARNINGS` distinct warnings of
        at most :data:`~tinct.bridge.wire.MAX_WARNING_CHARS` characters each.
    """
    return P.bounded_warnings(worded_for(t, CLIENT_ADVICE, data=precision) for t in texts)


def precision_of(header: dict[str, Any], fmt: str) -> str:
    """How the request's warnings name its data: its ``"precision"`` field, else its format's.

    A client that knows its data better than the wire format does names it (the GIMP
    plug-in sends "32-bit floating point" for a float layer it sends as ``rgba16``);
    without the field the format's bits say it: ``"8-bit"`` or ``"16-bit"``.

    Args:
        header: the ``colorize`` frame's header.
        fmt: its pixel format (one of :data:`~tinct.bridge.wire.PIXEL_FORMATS`).

    Raises:
        RequestError: ``bad_request`` for a field that is not a text of 1 to
            :data:`MAX_PRECISION_CHARS` printable characters.
    """
    value = header.get("precision")
    if value is None:
        return "16-bit" if fmt.endswith("16") else "8-bit"
    if not (isinstance(value, str) and 0 < len(value) <= MAX_PRECISION_CHARS
            and value.isprintable()):  # fmt: skip
        raise RequestError(
            P.E_BAD_REQUEST,
            f'"precision" must be a text of 1 to {MAX_PRECISION_CHARS} printable characters',
        )
    return value
