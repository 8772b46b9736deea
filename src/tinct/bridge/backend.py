"""What the bridge server runs: decoded requests (jobs) and the colorization backend.

:class:`ColorizeJob` is a ``colorize`` request after :mod:`tinct.bridge.request` has
parsed and checked it; a :class:`Backend` turns jobs into pixels.
:class:`EngineBackend` is the real one: it runs a job on the colorizer of its
model, converts wire hints and hint layers into :class:`tinct.Hint` objects and
turns what the engine refuses into :class:`RequestError`. Which models it
serves, their descriptions for ``hello``, loading them and downloading their
weights is :mod:`tinct.bridge.served_models`. Nothing here touches sockets, so
backends are easy to test and to replace.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tinct.bridge import wire as P
from tinct.bridge.served_models import (
    ModelUnavailable,
    ServedModels,
    is_weights_error,
    weights_message,
)
from tinct.engine.options import ColorizeOptions
from tinct.engine.optionspec import OptionError

__all__ = [
    "Backend",
    "ColorizeJob",
    "EngineBackend",
    "PointHint",
    "ProgressFn",
    "RequestError",
    "decoder_applies",
]

ProgressFn = Callable[[float, str], None]


class RequestError(Exception):
    """A request the server refuses (sent back as an ``error`` frame).

    Args:
        code: protocol error code (e.g. ``bad_request``).
        message: human-readable reason.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PointHint:
    """A point hint as received on the wire.

    Attributes:
        row: pixel row.
        col: pixel column.
        color: ``(r, g, b)`` uint8 sRGB colour.
        size: patch size in pixels, or None for the engine default.
    """

    row: int
    col: int
    color: tuple[int, int, int]
    size: int | None = None


@dataclass
class ColorizeJob:
    """A decoded ``colorize`` request.

    Attributes:
        image: ``(H, W)`` or ``(H, W, 3)`` uint8/uint16 pixels, alpha removed.
        alpha: ``(H, W)`` alpha of the input (uint8 or uint16), or None.
        model: model name, or None for the server default.
        options: the request's :class:`~tinct.engine.options.ColorizeOptions`
            (temperature, decoder, MRF, tiling, normalisation, ...).
        hints: point hints from the header.
        hint_layer: ``(H, W, 4)`` uint8 RGBA hint layer, or None.
        hint_size: patch size for hint-layer hints, or None.
        reference: ``(h, w[, c])`` global-hint image, or None.
        result_format: ``"rgb8"``, ``"rgba8"``, ``"rgb16"`` or ``"rgba16"``.
        request_id: the request's id.
        precision: how the warnings sent back name the data (``"16-bit integer"``;
            :func:`tinct.bridge.job_warnings.precision_of`), or None: the engine's words.
    """

    image: np.ndarray
    alpha: np.ndarray | None = None
    model: str | None = None
    options: ColorizeOptions = field(default_factory=ColorizeOptions)
    hints: tuple[PointHint, ...] = ()
    hint_layer: np.ndarray | None = None
    hint_size: int | None = None
    reference: np.ndarray | None = None
    result_format: str = "rgba8"
    request_id: str = ""
    precision: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def temperature(self) -> float | None:
        """``options.temperature``."""
        return self.options.temperature

    @property
    def decoder(self) -> str | None:
        """``options.decoder``."""
        return self.options.decoder

    @property
    def mrf_weight(self) -> float:
        """``options.mrf_weight`` (0 when unset)."""
        return self.options.mrf_weight or 0.0

    @property
    def mrf_iters(self) -> int | None:
        """``options.mrf_iters``."""
        return self.options.mrf_iters

    @property
    def tile(self) -> int | None:
        """``options.tile``."""
        return self.options.tile


def decoder_applies(decoder: str, choices: Sequence[str]) -> bool:
    """Whether a requested decoder is one of a model's ``decoders``.

    ``regression`` is the engine's other name for ``ab`` (the regression head), so
    it applies exactly where ``ab`` does.
    """
    return decoder in choices or (decoder == "regression" and "ab" in choices)


class Backend(Protocol):
    """What the server needs from a colorization backend.

    A backend may also have ``prepare(job)``, which the server calls before it
    takes the engine lock: the place for slow work that must not keep other
    clients waiting, such as downloading a model's weights.
    """

    default_model: str

    def models(self) -> list[dict[str, Any]]:
        """Describe the available models (hello's ``models`` list)."""
        ...

    def colorize(self, job: ColorizeJob, progress: ProgressFn) -> np.ndarray:
        """Colorize ``job.image``; returns ``(H, W, 3)`` uint8 or float in [0, 1]."""
        ...


class EngineBackend(ServedModels):
    """Backend on :class:`tinct.engine.colorizer.Colorizer` objects.

    A colorizer is called as ``colorize(image, hints=, reference=, options=,
    progress=, cancel=, rgb=)``, the engine's signature; a stand-in (tests, a
    remote engine) takes the same arguments. Which colorizer serves which model,
    hello's ``models`` list and the weights come from :class:`ServedModels`, whose
    arguments it takes (``colorizer``, ``colorizer_factory``, ``model``,
    ``device``, ``models``, ``pretrained``).
    """

    def prepare(self, job: ColorizeJob) -> None:
        """Check that the job's model can run and fetch its weights if they are missing.

        Called without the engine lock, so a download never keeps other clients
        waiting; downloads are one at a time.

        Raises:
            RequestError: ``unknown_model`` for a model this server cannot run: no
                trained weights, or weights that are neither installed nor
                downloadable now (the message says how to install them).
        """
        with _unknown_model():
            self.ready_weights(job.model)

    def colorize(self, job: ColorizeJob, progress: ProgressFn) -> np.ndarray:
        """Run the engine on a job (hints converted to ``tinct.engine.hints.Hint``).

        Raises:
            RequestError: ``unknown_model`` for a model this server cannot run (no
                weights), ``bad_request`` for input the engine refuses (e.g. a
                hints-only model without hints, a decoder the model lacks).
        """
        name = job.model or self.default_model
        with _unknown_model():
            info = self.check_model(job.model)
        hints = _convert_hints(job)
        if info is not None and info.get("hints_required") and not hints:
            raise RequestError(
                P.E_BAD_REQUEST,
                f"model {name!r} colorizes from colour hints only: paint colour dots on a "
                "hint layer (or send hints)",
            )
        if info is not None and job.options.decoder is not None:
            allowed = info.get("decoders") or []
            if allowed and not decoder_applies(job.options.decoder, allowed):
                raise RequestError(
                    P.E_BAD_REQUEST,
                    f'"decoder": {job.options.decoder!r} does not apply to {name}; '
                    f"choose one of {', '.join(allowed)}",
                )
        try:
            colorizer = self.colorizer(job.model)
        except Exception as exc:
            if not is_weights_error(exc):
                raise
            raise RequestError(P.E_UNKNOWN_MODEL, weights_message(name, exc)) from None
        kwargs: dict[str, Any] = {
            "hints": hints,
            "reference": job.reference,
            "options": job.options,
            "progress": progress,
            "cancel": job.cancel,
            "rgb": job.image.ndim == 3,
        }
        try:
            return colorizer.colorize(job.image, **kwargs)
        except OptionError as exc:  # e.g. a tile that cuts this image into too many tiles
            raise RequestError(P.E_BAD_REQUEST, exc.message_for("wire")) from None
        except (ValueError, TypeError) as exc:  # the engine refused this input
            raise RequestError(P.E_BAD_REQUEST, str(exc).splitlines()[0]) from None


@contextlib.contextmanager
def _unknown_model() -> Iterator[None]:
    """Turn a :class:`ModelUnavailable` into the ``unknown_model`` :class:`RequestError`."""
    try:
        yield
    except ModelUnavailable as exc:
        raise RequestError(P.E_UNKNOWN_MODEL, str(exc)) from None


def hint_min_alpha(hint_layer: np.ndarray) -> int:
    """The alpha from which a hint layer's pixel belongs to a painted dot.

    Half the layer's most opaque pixel: the faint ring GIMP's eraser leaves where a dot
    was erased (alpha up to a quarter) is then no hint, while dots painted at a low
    opacity still are.

    Args:
        hint_layer: ``(H, W, 4)`` uint8 RGBA hint layer.

    Returns:
        int: The threshold for ``tinct.engine.hints.hints_from_rgba`` (at least 1).
    """
    return max(1, int(hint_layer[..., 3].max(initial=0)) // 2)


def _convert_hints(job: ColorizeJob) -> list[Any]:
    """Turn wire hints and a hint layer into ``tinct.engine.hints.Hint`` objects."""
    from tinct.engine.hints import Hint, hints_from_rgba

    out = [Hint(h.row, h.col, color=h.color, size=h.size) for h in job.hints]
    if job.hint_layer is not None:
        layer_hints = hints_from_rgba(job.hint_layer, min_alpha=hint_min_alpha(job.hint_layer))
        if job.hint_size is not None:
            layer_hints = [dataclasses.replace(h, size=job.hint_size) for h in layer_hints]
        out.extend(layer_hints)
    return out
