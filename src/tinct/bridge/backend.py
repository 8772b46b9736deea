"""What the bridge server runs: decoded requests (jobs) and the colorization backend.

:class:`ColorizeJob` is a ``colorize`` request after :mod:`tinct.bridge.server` has
parsed and checked it; a :class:`Backend` turns jobs into pixels.
:class:`EngineBackend` is the real one: it keeps one :class:`tinct.Colorizer`
per model (created on first use), converts wire hints and hint layers into
:class:`tinct.Hint` objects and describes the registered models for ``hello``.
Nothing here touches sockets, so backends are easy to test and to replace.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tinct.bridge import wire as P
from tinct.engine.options import ColorizeOptions

__all__ = [
    "DEFAULT_MODEL_INFO",
    "Backend",
    "ColorizeJob",
    "EngineBackend",
    "PointHint",
    "ProgressFn",
    "RequestError",
    "decoder_applies",
]

log = logging.getLogger("tinct.bridge.server")

ProgressFn = Callable[[float, str], None]

#: Model options reported by hello when the engine cannot describe its models.
DEFAULT_MODEL_INFO: dict[str, Any] = {
    "name": "tinct-base",
    "display_name": "tinct base",
    "takes_hints": True,
    "default_temperature": 0.38,
    "default_decoder": "annealed_mean",
    "decoders": ["annealed_mean", "mean", "median", "mode"],
}


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
        result_format: ``"rgb8"`` or ``"rgba8"``.
        request_id: the request's id.
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


class EngineBackend:
    """Backend on :class:`tinct.engine.colorizer.Colorizer` objects.

    A colorizer is called as ``colorize(image, hints=, reference=, options=,
    progress=, cancel=, rgb=)``, the engine's signature; a stand-in (tests, a
    remote engine) takes the same arguments.

    Args:
        colorizer: an already loaded colorizer serving its own model (and, without
            a factory, every request).
        colorizer_factory: ``factory(model_name) -> colorizer``; what it makes is kept in
            the engine's one colorizer cache (:mod:`tinct.engine.shared`).
        model: default model: a registry name, or the path of a ``.safetensors``
            file (``tinct serve --model PATH``), which is then listed to clients
            under its file stem.
        device: device passed to ``tinct.engine.colorizer.Colorizer`` when no factory is given.
        models: hello's model descriptions (default: asked from the registry).
        pretrained: load trained weights (False: random weights, for set-up tests).
    """

    def __init__(
        self,
        colorizer: Any = None,
        colorizer_factory: Callable[[str], Any] | None = None,
        model: str | None = None,
        device: str = "auto",
        models: Sequence[dict[str, Any]] | None = None,
        pretrained: bool = True,
    ) -> None:
        default = (
            model
            or getattr(colorizer, "model_name", None)
            or getattr(getattr(colorizer, "options", None), "model", None)
            or "tinct-base"
        )
        self._files: dict[str, str] = {}  # listed name -> weights file
        if model and str(model).endswith(".safetensors"):
            default = _file_model_name(model)
            self._files[default] = str(model)
        self.default_model = default
        self._device = device
        self._pretrained = pretrained
        self._colorizer = colorizer
        self._single = colorizer is not None and colorizer_factory is None
        self._factory = colorizer_factory
        self._models = [dict(m) for m in models] if models is not None else None
        self._fixed = models is not None
        self._generation = _user_generation()
        self._lock = threading.Lock()
        self._download_lock = threading.Lock()

    def colorizer(self, name: str | None) -> Any:
        """The colorizer for a model name, from the engine's colorizer cache."""
        from tinct.engine import shared

        name = name or self.default_model
        if self._single:
            return self._colorizer
        if name == self.default_model and self._colorizer is not None:
            return self._colorizer
        if self._factory is not None:
            factory = self._factory
            return shared.get_or_make(("bridge", factory, name), lambda: factory(name), model=name)
        source = self._files.get(name, name)
        extra: dict[str, Any] = {} if self._pretrained else {"pretrained": False}
        if not shared.contains(shared.colorizer_key(source, self._device, "auto", **extra)):
            log.info("loading model %s", name)
        return shared.get_colorizer(source, self._device, **extra)

    def models(self) -> list[dict[str, Any]]:
        """Describe the models with their weight status (registry and served files).

        The list is made once and again whenever the user models change (one
        trained while the server runs is listed without a restart).
        """
        if not self._fixed and not self._single:
            now = _user_generation()
            if now != self._generation:
                self._models, self._generation = None, now
        if self._models is None:
            infos = _engine_model_infos(self.default_model, self._files, self._pretrained)
            if self._single:  # a loaded colorizer serves only its own model
                infos = [m for m in infos if m["name"] == self.default_model] or [
                    {**DEFAULT_MODEL_INFO, "name": self.default_model}
                ]
            self._models = infos
        return [dict(m) for m in self._models]

    def prepare(self, job: ColorizeJob) -> None:
        """Check that the job's model can run and fetch its weights if they are missing.

        Called without the engine lock, so a download never keeps other clients
        waiting; downloads are one at a time.

        Raises:
            RequestError: ``unknown_model`` for a model this server cannot run: no
                trained weights, or weights that are neither installed nor
                downloadable now (the message says how to install them).
        """
        info = self._check_model(job)
        if self._single or self._factory is not None or not self._pretrained:
            return
        if info is None or info.get("status") != "downloadable":
            return
        with self._download_lock:
            _fetch_weights(str(info["name"]))
            if not self._fixed:
                self._models = None  # its status is now "downloaded"

    def _check_model(self, job: ColorizeJob) -> dict[str, Any] | None:
        """The job's model description; refuses models this server cannot run."""
        name = job.model or self.default_model
        info = next((m for m in self.models() if m.get("name") == name), None)
        if info is not None and info.get("available") is False:
            raise RequestError(P.E_UNKNOWN_MODEL, _unavailable_message(info))
        if self._single and job.model and job.model != self.default_model:
            raise RequestError(
                P.E_UNKNOWN_MODEL,
                f"this server serves only {self.default_model!r}, not {job.model!r}",
            )
        return info

    def colorize(self, job: ColorizeJob, progress: ProgressFn) -> np.ndarray:
        """Run the engine on a job (hints converted to ``tinct.engine.hints.Hint``).

        Raises:
            RequestError: ``unknown_model`` for a model this server cannot run (no
                weights), ``bad_request`` for input the engine refuses (e.g. a
                hints-only model without hints, a decoder the model lacks).
        """
        name = job.model or self.default_model
        info = self._check_model(job)
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
            if not _is_weights_error(exc):
                raise
            raise RequestError(P.E_UNKNOWN_MODEL, _weights_message(name, exc)) from None
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
        except (ValueError, TypeError) as exc:  # the engine refused this input
            raise RequestError(P.E_BAD_REQUEST, str(exc).splitlines()[0]) from None


def _file_model_name(path: str) -> str:
    """The name a served weights file is listed under: its stem (``-file`` if that is taken)."""
    from pathlib import Path

    stem = Path(path).stem.lower()
    try:
        from tinct.models.registry import get_record

        get_record(stem)
    except Exception:
        return stem
    return f"{stem}-file"


def _unavailable_message(info: dict[str, Any]) -> str:
    name = info.get("name")
    reason = info.get("reason") or f"model {name!r} cannot run on this server"
    return f"{reason}; then restart the server with `tinct serve --model PATH`"


def _fetch_weights(name: str) -> None:
    """Download a registry model's weights into the cache (nothing when they are there).

    Raises:
        RequestError: ``unknown_model`` when they cannot be downloaded.
    """
    from tinct.models import weights
    from tinct.models.registry import get_record

    try:
        record = get_record(name)
        if record.weights is not None:
            log.info("downloading the weights of %s", name)
            weights.fetch(record.weights, progress=False)
    except Exception as exc:
        if not _is_weights_error(exc):
            raise
        raise RequestError(P.E_UNKNOWN_MODEL, _weights_message(name, exc)) from None


def _is_weights_error(exc: BaseException) -> bool:
    """Whether ``exc`` says that a model's weights cannot be had (missing, offline)."""
    from tinct.models.weights import WeightsUnavailableError

    return isinstance(exc, WeightsUnavailableError)


def _weights_message(name: str, exc: BaseException) -> str:
    """The one-line refusal of a model whose weights are not installed."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"model {name!r} cannot run: its weights are not installed on the server ({detail})"


def _user_generation() -> int:
    """:func:`tinct.models.user_store.generation` (changes when user models do)."""
    from tinct.models import user_store

    return user_store.generation()


def _convert_hints(job: ColorizeJob) -> list[Any]:
    """Turn wire hints and a hint layer into ``tinct.engine.hints.Hint`` objects."""
    from tinct.engine.hints import Hint, hints_from_rgba

    out = [Hint(h.row, h.col, color=h.color, size=h.size) for h in job.hints]
    if job.hint_layer is not None:
        layer_hints = hints_from_rgba(job.hint_layer)
        if job.hint_size is not None:
            layer_hints = [dataclasses.replace(h, size=job.hint_size) for h in layer_hints]
        out.extend(layer_hints)
    return out


def _engine_model_infos(
    default: str, files: dict[str, str] | None = None, pretrained: bool = True
) -> list[dict[str, Any]]:
    """Model descriptions from the registry (:mod:`tinct.models.catalog`), served files first."""
    try:
        from tinct.models import catalog

        infos = []
        for name, path in (files or {}).items():
            record = catalog.record_for(path)
            entry = catalog.entry_for(record, status="file")
            infos.append(
                _wire_entry(entry, name=name, display_name=f"{name} (weights file)",
                            description=f"{record.display_name} trained weights from {path}")
            )  # fmt: skip
        for entry in catalog.model_entries():
            if not pretrained:  # random weights: everything runs (set-up tests)
                entry = dataclasses.replace(entry, available=True, reason="")
            infos.append(_wire_entry(entry))
        if infos:
            infos.sort(key=lambda m: m["name"] != default)  # default first
            return infos
    except Exception:  # the registry is optional; hello must always work
        log.debug("cannot describe the registered models", exc_info=True)
    info = dict(DEFAULT_MODEL_INFO)
    info["name"] = default
    return [info]


def _wire_entry(entry: Any, **override: Any) -> dict[str, Any]:
    """A :class:`tinct.models.catalog.ModelEntry` as hello lists it (``weights`` = its status)."""
    d = entry.to_dict()
    d.update(override)
    d["weights"] = d["status"]
    d["ready"] = bool(d.get("available")) and d["status"] != "downloadable"
    return d
