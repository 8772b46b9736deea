"""The models a bridge backend serves and getting them ready to run.

:class:`ServedModels` resolves a model name to a colorizer (an already loaded
one, one made by a factory, or one loaded through the engine's colorizer cache;
a served ``.safetensors`` file is listed under its stem), describes the models
with their weight status for ``hello`` (again whenever the user models change),
checks that a requested model can run here and downloads missing registry
weights. A model that cannot run, offline or without trained weights, is a
:class:`ModelUnavailable` whose message says how to install it;
:class:`~tinct.bridge.backend.EngineBackend` turns it into an ``unknown_model``
refusal. Running jobs on the colorizers is :mod:`tinct.bridge.backend`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "DEFAULT_MODEL_INFO",
    "ModelUnavailable",
    "ServedModels",
    "is_weights_error",
    "weights_message",
]

log = logging.getLogger("tinct.bridge.server")

#: Model options reported by hello when the engine cannot describe its models.
DEFAULT_MODEL_INFO: dict[str, Any] = {
    "name": "tinct-base",
    "display_name": "tinct base",
    "takes_hints": True,
    "default_temperature": 0.38,
    "default_decoder": "annealed_mean",
    "decoders": ["annealed_mean", "mean", "median", "mode"],
}


class ModelUnavailable(Exception):
    """A model this server cannot run: no trained weights, or none installed nor downloadable.

    The message is one line that says why and how to install the weights.
    """


class ServedModels:
    """Which models a backend serves, what they are, and their weights made ready.

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

    def check_model(self, requested: str | None) -> dict[str, Any] | None:
        """The description of a requested model (None: the default), if it is listed.

        Raises:
            ModelUnavailable: the model is listed as unavailable, or this server
                serves one loaded colorizer and ``requested`` is another model.
        """
        name = requested or self.default_model
        info = next((m for m in self.models() if m.get("name") == name), None)
        if info is not None and info.get("available") is False:
            raise ModelUnavailable(_unavailable_message(info))
        if self._single and requested and requested != self.default_model:
            raise ModelUnavailable(
                f"this server serves only {self.default_model!r}, not {requested!r}"
            )
        return info

    def ready_weights(self, requested: str | None) -> None:
        """Check that a model can run and download its weights if they are missing.

        Downloads are one at a time; nothing is downloaded for a loaded
        colorizer, a factory's models or random weights.

        Raises:
            ModelUnavailable: see :meth:`check_model`; also weights that are
                neither installed nor downloadable now.
        """
        info = self.check_model(requested)
        if self._single or self._factory is not None or not self._pretrained:
            return
        if info is None or info.get("status") != "downloadable":
            return
        with self._download_lock:
            _fetch_weights(str(info["name"]))
            if not self._fixed:
                self._models = None  # its status is now "downloaded"


def is_weights_error(exc: BaseException) -> bool:
    """Whether ``exc`` says that a model's weights cannot be had (missing, offline)."""
    from tinct.models.weights import WeightsUnavailableError

    return isinstance(exc, WeightsUnavailableError)


def weights_message(name: str, exc: BaseException) -> str:
    """The one-line refusal of a model whose weights are not installed."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"model {name!r} cannot run: its weights are not installed on the server ({detail})"


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
    return f"{reason}, and serve it with `tinct serve --model PATH`"


def _fetch_weights(name: str) -> None:
    """Download a registry model's weights into the cache (nothing when they are there).

    Raises:
        ModelUnavailable: they cannot be downloaded.
    """
    from tinct.models import weights
    from tinct.models.registry import get_record

    try:
        record = get_record(name)
        if record.weights is not None:
            log.info("downloading the weights of %s", name)
            weights.fetch(record.weights, progress=False)
    except Exception as exc:
        if not is_weights_error(exc):
            raise
        raise ModelUnavailable(weights_message(name, exc)) from None


def _user_generation() -> int:
    """:func:`tinct.models.user_store.generation` (changes when user models do)."""
    from tinct.models import user_store

    return user_store.generation()


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
