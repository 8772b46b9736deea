"""What the napari Colorize widget runs off the main thread.

A run starts from a :class:`Job`, a snapshot of the widget's inputs taken in
the main thread. The job bodies :func:`colorize_job` and :func:`suggest_job`
drive the engine (:class:`tinct.Colorizer`): they yield progress items and
return a result, which the widget applies in the main thread. How a body is
run (one at a time, in a napari thread worker or synchronously) is
:mod:`tinct.napari_plugin.job_runner`; its :class:`JobRunner` and :func:`guarded`
are importable from here too. No Qt widgets and no layer edits here; the
engine is imported on first use.

Items a body yields: ``("status", text)``, ``("warning", text)`` (e.g. an
input that maps to nearly black) and ``("plane", job, index, rgb, done,
total)``. What it returns: ``("done", job)``, ``("suggest", colors)``, or
``("error", exc)`` when it raised (:func:`guarded`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tinct.napari_plugin import logic
from tinct.napari_plugin.job_runner import JobRunner, guarded
from tinct.napari_plugin.progress import in_box_words, planes_name

if TYPE_CHECKING:
    from napari.layers import Image

__all__ = [
    "BLANK_PLANE",
    "ColorizerFactory",
    "Job",
    "JobRunner",
    "colorize_job",
    "default_colorizer_factory",
    "engine_hints",
    "guarded",
    "normalisation_advice",
    "suggest_job",
    "suggest_request",
    "temporal_hints",
]

ColorizerFactory = Callable[[str, str], Any]
#: ``get_colorizer(model, device) -> colorizer``, called in the worker thread.
GetColorizer = Callable[[str, str], Any]


def default_colorizer_factory(model: str, device: str) -> Any:
    """Load a :class:`tinct.Colorizer` (imports torch and the engine on first use)."""
    from tinct.engine.colorizer import Colorizer

    return Colorizer(model=model, device=device)


@dataclass
class Job:
    """A snapshot of everything a colorization needs, taken in the main thread.

    ``options`` is the :class:`tinct.ColorizeOptions` of the run (``None`` = the
    colorizer's defaults); with ``options.temporal`` the stack is colorized as
    one sequence along its first axis. ``stops`` are the indices of the hint
    points drawn with the cross symbol, which stop carried hints.
    """

    source: Image
    data: Any
    geometry: logic.PlaneGeometry
    planes: list[tuple[int, ...]]
    hints: dict[tuple[int, ...], logic.PlaneHints]
    hint_size: int
    reference: np.ndarray | None
    model: str
    device: str
    options: Any = None
    download: bool = False
    stops: frozenset[int] = frozenset()

    @property
    def temporal(self) -> bool:
        """Whether the run colorizes the stack as one sequence along axis 0."""
        return bool(getattr(self.options, "temporal", False)) and len(self.geometry.leading) == 1


def engine_hints(job: Job, idx: tuple[int, ...]) -> list[Any]:
    """The job's hints on one plane as engine :class:`tinct.engine.hints.Hint` objects."""
    from tinct.engine.hints import hints_from_points

    ph = job.hints.get(idx)
    if ph is None or len(ph.coords) == 0:
        return []
    return hints_from_points(ph.coords, ph.colors, job.hint_size or None)


def temporal_hints(job: Job) -> dict[int, list[Any]]:
    """The job's hints for a temporal run along axis 0: ``{plane: [Hint | HintStop]}``.

    A point is placed on the first plane it lies on: a 2-D point (on every
    plane) on plane 0, a point of an n-D layer on its own plane; from there the
    engine carries it through time. Points in ``job.stops`` become
    :class:`tinct.engine.carry.HintStop` markers.
    """
    from tinct.engine.carry import HintStop
    from tinct.engine.hints import Hint

    first: dict[int, tuple[int, float, float, tuple[float, ...]]] = {}
    for idx in sorted(job.hints):
        ph = job.hints[idx]
        for k, i in enumerate(ph.index):
            if int(i) not in first:
                r, c = ph.coords[k]
                first[int(i)] = (idx[0], float(r), float(c), tuple(ph.colors[k]))
    size = float(job.hint_size) if job.hint_size else None
    out: dict[int, list[Any]] = {}
    for i, (plane, r, c, colour) in sorted(first.items()):
        h = HintStop(r, c, size) if i in job.stops else Hint(r, c, color=colour, size=size)  # type: ignore[arg-type]
        out.setdefault(plane, []).append(h)
    return out


def colorize_job(
    job: Job, get_colorizer: GetColorizer, cancel: threading.Event
) -> Generator[Any, None, Any]:
    """Job body: load the model, then colorize plane by plane, yielding each result.

    With ``job.temporal`` the whole stack is colorized as one sequence along
    its first axis (:mod:`tinct.engine.temporal`) and the planes are yielded after.

    Args:
        job: What to colorize.
        get_colorizer: Returns the (cached) colorizer for a model and device.
        cancel: Passed to the engine, which stops when it is set.
    """
    from tinct.engine.thread_warnings import collect_warnings

    yield ("status", "downloading weights…" if job.download else "loading model…")
    colorizer = get_colorizer(job.model, job.device)
    total = len(job.planes)
    told: dict[str, list[tuple[int, ...]]] = {}  # each warning, and the planes it was on
    if job.temporal:
        yield ("status", f"colorizing {total} planes through time…")
        with collect_warnings(Warning) as caught:  # this thread's, every time
            rgb = colorizer.colorize(
                np.asarray(job.data), hints=temporal_hints(job), reference=job.reference,
                rgb=job.geometry.channels is not None, cancel=cancel, options=job.options,
                temporal=True, axis=0,
            )  # fmt: skip
        yield from _warnings(caught, told)
        for n, idx in enumerate(job.planes):
            yield ("plane", job, idx, rgb[idx], n + 1, total)
        return ("done", job)
    for n, idx in enumerate(job.planes):
        if cancel.is_set():  # Cancel stops before the next plane, not after the stack
            from tinct.cancel import Cancelled

            raise Cancelled("colorization cancelled")
        yield ("status", f"colorizing {n + 1}/{total}…" if total > 1 else "colorizing…")
        plane = np.asarray(job.data[idx] if idx else job.data)
        if idx and plane.dtype.kind == "f" and not np.isfinite(plane).any():
            yield from _blank_plane(told, idx, job.geometry.leading)  # a stack goes on
            yield ("plane", job, idx, np.zeros((*job.geometry.plane, 3), np.uint8), n + 1, total)
            continue
        hints = engine_hints(job, idx)
        kwargs = {} if job.options is None else {"options": job.options}
        with collect_warnings(Warning) as caught:
            rgb = colorizer.colorize(
                plane,
                hints=hints,
                reference=job.reference,
                rgb=job.geometry.channels is not None,
                cancel=cancel,
                **kwargs,
            )
        yield from _warnings(caught, told, idx if total > 1 else None, job.geometry.leading)
        yield ("plane", job, idx, rgb, n + 1, total)
        if n == total - 1 and hasattr(colorizer, "inactive_knobs"):  # the shown plane's
            # only one hint colour can leave the decoding knobs idle: else skip the lookup
            one_colour = len({tuple(np.round(h.color, 3)) for h in hints if h.color}) <= 1
            yield ("knobs", idle_knobs(colorizer, plane, hints, job) if one_colour else {})
    for text, planes in told.items():  # a note on several planes: which, once at the end
        if len(planes) > 1:
            yield ("warning", f"{planes_name(planes, job.geometry.leading)}: {text}")
    return ("done", job)


#: What a run over a stack says of a plane without a finite pixel (written black).
BLANK_PLANE = "no finite pixel (all NaN or infinite): left black"


def _blank_plane(
    told: dict[str, list[tuple[int, ...]]], idx: tuple[int, ...], leading: tuple[int, ...]
) -> Generator[Any, None, None]:
    """The warning for a plane of a stack with no finite pixel (an empty cube channel, say).

    The engine refuses such an image; in a stack it is written black and the run goes
    on, so that one masked plane does not fail the planes after it. Said at once for
    the first such plane, and for all of them at the end (as the engine's warnings).
    """
    planes = told.setdefault(BLANK_PLANE, [])
    planes.append(idx)
    if len(planes) == 1:
        yield ("warning", f"{planes_name([idx], leading)}: {BLANK_PLANE}")


def idle_knobs(colorizer: Any, plane: Any, hints: Any, job: Job) -> dict[str, str]:
    """The knobs that only this run shows to have no effect (one hint flooding the image).

    The reasons that follow from the model and mode alone the widget knows already
    (:func:`tinct.models.catalog.inactive_knobs`); this asks the engine about the run.
    """
    from tinct.engine.chroma import DECODING_KNOBS

    found = colorizer.inactive_knobs(
        plane, hints=hints, reference=job.reference, options=job.options,
        rgb=job.geometry.channels is not None,
    )  # fmt: skip
    return {k: v for k, v in found.items() if k in DECODING_KNOBS}


def _warnings(
    caught: list[Any],
    told: dict[str, list[tuple[int, ...]]],
    plane: tuple[int, ...] | None = None,
    leading: tuple[int, ...] = (),
) -> Generator[Any, None, None]:
    """``("warning", text)`` for each user warning not yet told in this job.

    Advice to try another normalisation names the widget's box and its choice. On a
    stack run (``plane`` given) a warning names its plane (``plane 1 of 3: ...``) and
    ``told`` collects the planes each was raised on.
    """
    from tinct.engine.contrast import worded_for

    advice = normalisation_advice()
    for w in caught:
        text = in_box_words(worded_for(str(w.message), advice))
        seen = told.get(text)
        if not issubclass(w.category, UserWarning) or (seen is not None and plane in [*seen, None]):
            continue
        planes = told.setdefault(text, [])
        if plane is not None:
            planes.append(plane)
        if len(planes) <= 1:
            where = "" if plane is None else f"{planes_name([plane], leading)}: "
            yield ("warning", where + text)


def normalisation_advice() -> str:
    """How the widget names percentile normalisation: ``normalisation 'percentiles 0.5-99.5'``."""
    from tinct.engine.contrast import ADVICE_FIELD, ADVICE_VALUE
    from tinct.engine.options import ColorizeOptions

    choice = next(text for text, value in logic.NORMALIZATIONS if value == ADVICE_VALUE)
    return f"{ColorizeOptions.name_in(ADVICE_FIELD, 'gui')} '{choice}'"


def suggest_request(job: Job, index: int) -> tuple[Job, float, float] | None:
    """The request for colour suggestions at one hint point: ``(job, row, col)``.

    The point is looked for on the job's planes (the shown one); the job is narrowed
    to the other hints there (suggestions must not come from the point itself).

    Args:
        job: A snapshot of the current plane (it is modified).
        index: The point's index in the hints layer.

    Returns:
        The request for :func:`suggest_job`, or ``None`` when the point lies
        outside the image or on another plane.
    """
    for idx, ph in [(i, job.hints[i]) for i in job.planes if i in job.hints]:
        if index in ph.index:
            k = int(np.flatnonzero(ph.index == index)[0])
            row, col = ph.coords[k]
            keep = ph.index != index  # suggest from the other hints, not this one
            job.hints = {idx: logic.PlaneHints(ph.coords[keep], ph.colors[keep], ph.index[keep])}
            job.planes = [idx]
            return job, float(row), float(col)
    return None


def suggest_job(
    request: tuple[Job, float, float], get_colorizer: GetColorizer, k: int
) -> Generator[Any, None, Any]:
    """Job body: suggested colours at one hint point (uses the engine's cache).

    Args:
        request: ``(job, row, col)``: the job's first plane, and the point in its
            data coordinates.
        get_colorizer: Returns the (cached) colorizer for a model and device.
        k: How many colours to suggest.
    """
    job, row, col = request
    yield ("status", "suggesting colours…")
    colorizer = get_colorizer(job.model, job.device)
    idx = job.planes[0]
    plane = np.asarray(job.data[idx] if idx else job.data)
    colors = colorizer.suggest_colors(
        plane,
        round(row),
        round(col),
        k=k,
        hints=engine_hints(job, idx),
        reference=job.reference,
        options=job.options,
        rgb=job.geometry.channels is not None,
    )
    return ("suggest", colors)
