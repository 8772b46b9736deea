"""The warnings a ``colorize`` job raises, caught for its ``result`` frame.

The engine tells about inputs that colorize poorly as Python warnings
(:class:`~tinct.engine.inputs.InputWarning`: an input nearly constant, or mapping
to nearly black, :func:`tinct.engine.contrast.contrast_notes`; and other user
warnings, such as a reference image a model ignores). The CLI and napari show
them; a served request sends them back to its client in the result's optional
``"warnings"`` field (``docs/protocol.md``), so the GIMP plug-in can tell its user
why the result is dull. :func:`caught_warnings` collects them while the engine
runs; :func:`for_client` words them for a client of the bridge and bounds them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from tinct.bridge import wire as P
from tinct.engine.contrast import worded_for
from tinct.engine.thread_warnings import collect_warnings

__all__ = ["caught_warnings", "for_client"]


@contextlib.contextmanager
def caught_warnings() -> Iterator[list[str]]:
    """Collect the user warnings this thread raises in the block, every time they arise.

    Each :class:`UserWarning` (an ``InputWarning`` included) raised by the calling
    thread is recorded instead of printed, also when the same text has been shown
    before (Python would show it once per place). Warnings of other categories,
    and every warning of another thread, go to the handler that was in place.
    Thread-safe (:func:`tinct.engine.thread_warnings.collect_warnings`): a job of
    napari's, run while its embedded server answers, keeps its own.

    Yields:
        The texts, in the order they were raised (filled when the block ends).
    """
    texts: list[str] = []
    with collect_warnings(UserWarning) as caught:
        try:
            yield texts
        finally:
            texts.extend(str(w.message) for w in caught)


def for_client(texts: Iterable[str]) -> list[str]:
    """The warnings as a bridge client gets them: worded for it, distinct and bounded.

    A client of the bridge has no normalisation control the server knows of (the
    GIMP plug-in has none: it always sends ``normalize="dtype"``), so the engine's
    advice to try percentile normalisation is left out
    (:func:`~tinct.engine.contrast.worded_for` with ``None``); the rest of a note,
    what is wrong with the input, is kept.

    Args:
        texts: the warnings :func:`caught_warnings` collected.

    Returns:
        At most :data:`~tinct.bridge.wire.MAX_RESULT_WARNINGS` distinct warnings of
        at most :data:`~tinct.bridge.wire.MAX_WARNING_CHARS` characters each.
    """
    return P.bounded_warnings(worded_for(text, None) for text in texts)
