"""The model registry: typed records for every network tinct can load.

Each model family lives in its own module under :mod:`tinct.models` and
registers one :class:`ModelRecord` per named model with :func:`register_model`.
A record ties together a builder (keyword arguments in ``kwargs``), a frozen
:class:`ModelConfig` telling the engine how to feed the network and decode its
output, and an optional :class:`Weights` entry saying where trained weights
come from (a file bundled in ``tinct/weights/`` or a URL with a sha256).

:func:`~tinct.models.loading.load_model` builds a record's network, loads its weights and attaches
the record to the returned module as ``model.record``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tinct.models._bounds import check_config_bounds
from tinct.models.base import ColorModel
from tinct.models.targets import get_target

__all__ = [
    "ModelConfig",
    "ModelRecord",
    "UnknownModelError",
    "Weights",
    "WeightsStatus",
    "get_record",
    "list_models",
    "on_unknown_name",
    "register_model",
    "unregister_model",
]

ColorSpace = Literal["lab", "luv", "yuv"]
Target = Literal["regression", "gamut313", "grid529", "channel", "hue_chroma"]
Head = Literal["logits", "ab"]
WeightsStatus = Literal[
    "bundled", "downloaded", "downloadable", "built in", "train it yourself", "user"
]

_COLOR_SPACES = ("lab", "luv", "yuv")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ModelConfig:
    """How to feed a network and how to read its output.

    Attributes:
        color_space: Colour space of ``lum`` and of the chrominance: ``"lab"``
            (CIELAB, L in [0, 100], a/b about +-110), ``"luv"`` (CIELUV, L in
            [0, 100], u/v about +-100..175) or ``"yuv"`` (Y in [0, 1], U in
            +-0.436, V in +-0.615).
        target: What the ``logits`` head predicts: ``"gamut313"`` (Zhang's 313
            in-gamut ab bins, :func:`tinct.bins.gamut_bins`), ``"grid529"``
            (the full 23 x 23 ab grid, :func:`tinct.bins.grid_bins`),
            ``"channel"`` (``bins_per_channel`` uniform bins over
            ``channel_range`` for each of the two chroma channels, channel-major:
            logits ``[:K]`` are channel 0, ``[K:2K]`` channel 1),
            ``"hue_chroma"`` (32 hue bins over [0, 2 pi) then 32 chroma bins
            over ``channel_range``), or ``"regression"`` (no logits, ``ab``
            only).
        heads: Which :class:`~tinct.models.base.ModelOutput` fields the model
            fills: ``("logits",)``, ``("ab",)`` or ``("logits", "ab")``.
        num_bins: ``Q``, the channel count of ``logits`` (0 for regression).
        bins_per_channel: ``K`` for ``"channel"`` / ``"hue_chroma"`` targets.
        channel_range: ``(lo, hi)`` value range covered by the uniform bins of
            a ``"channel"`` target (both channels) or by the chroma bins of a
            ``"hue_chroma"`` target.
        hints: The network uses local hints (``hint_ab``, ``hint_mask``).
        hints_required: Without hints the output is uninformative (gray).
        global_hint: The network uses a ``(B, 314)`` reference histogram.
        input_size: Working resolution of the long image side, in pixels.
        stride: Inputs must be padded to a multiple of this.
        logits_stride: Downsampling factor of ``logits`` relative to the input.
        ab_stride: Downsampling factor of ``ab`` relative to the input.
        default_temperature: Softmax temperature used by the default decoder.
        default_decoder: Name of the decoder in :mod:`tinct.decode` to turn
            logits into chrominance (``"annealed_mean"``, ``"mean"``, ``"mode"``,
            ``"median"``, ``"larsson"``, ...), or ``"ab"`` to use the regression
            head as is.
        hint_decoder: Default decoder when the caller gives hints (``None`` = the
            same as ``default_decoder``); tinct-base uses ``"ab"`` there, the
            output of its hint-fusion head.
        hint_propagation: Default strength of the engine's edge-aware hint
            propagation (``ColorizeOptions.propagation``); ``None`` = off.
        mrf: Smooth the bin distributions with the MRF (:mod:`tinct.mrf`)
            before decoding, by default.
        loss: Training objective of the recipe (documentation and trainer
            dispatch): ``"soft_ce_rebalanced"``, ``"ce"``, ``"ce_channels"``,
            ``"ce_hue_chroma"``, ``"mse"``, ``"huber"``, ``"l1"``,
            ``"ce+l1"``, ``"ce+mse"``, or ``"none"``.
        trainable: ``tinct train`` can train this model.
    """

    color_space: ColorSpace = "lab"
    target: Target = "gamut313"
    heads: tuple[Head, ...] = ("logits",)
    num_bins: int = 313
    bins_per_channel: int | None = None
    channel_range: tuple[float, float] | None = None
    hints: bool = False
    hints_required: bool = False
    global_hint: bool = False
    input_size: int = 256
    stride: int = 8
    logits_stride: int | None = 4
    ab_stride: int | None = None
    default_temperature: float = 0.38
    default_decoder: str = "annealed_mean"
    hint_decoder: str | None = None
    hint_propagation: float | None = None
    mrf: bool = False
    loss: str = "soft_ce_rebalanced"
    trainable: bool = True

    def __post_init__(self) -> None:
        check_config_bounds(self)  # types and sane sizes first: metadata may ask for anything
        if self.color_space not in _COLOR_SPACES:
            raise ValueError(
                f"color_space must be one of {_COLOR_SPACES}, got {self.color_space!r}"
            )
        target = get_target(self.target)
        if not self.heads or any(h not in ("logits", "ab") for h in self.heads):
            raise ValueError(
                f"heads must be a non-empty subset of ('logits', 'ab'), got {self.heads}"
            )
        has_logits = "logits" in self.heads
        if target.has_logits != has_logits:
            raise ValueError("a 'regression' target has no logits head; every other target has one")
        if has_logits and (self.num_bins <= 0 or self.logits_stride is None):
            raise ValueError("a logits head needs num_bins > 0 and logits_stride")
        if "ab" in self.heads and self.ab_stride is None:
            raise ValueError("an ab head needs ab_stride")
        target.check(self.num_bins, self.bins_per_channel, self.channel_range)
        if self.default_temperature <= 0:
            raise ValueError("default_temperature must be > 0")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of all fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict` (lists become tuples; unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: _tuplify(v) for k, v in data.items() if k in names}
        return cls(**kwargs)


@dataclass(frozen=True)
class Weights:
    """Where a model's trained weights come from.

    Either *bundled* (``url`` is ``None``: the file ``file_name`` ships inside
    ``tinct/weights/``), *downloadable* (``url`` + ``sha256`` + ``size``;
    fetched once through pooch into the cache, see :mod:`tinct.models.weights`) or a
    *user model* (``folder``: a model the user trained, kept in the user-model
    folder, see :mod:`tinct.models.user_store`).

    Attributes:
        file_name: File name (bundled file, or name in the download cache).
        url: Download URL; ``None`` for bundled weights.
        sha256: Lowercase hex sha256 of the file; required for downloads,
            optional for bundled files (checked when given).
        size: File size in bytes (informational; shown in messages).
        license: Licence of the weights (SPDX id or short text).
        citation: The paper or source to cite.
        format: ``"pth"`` (a plain PyTorch ``state_dict``, loaded with
            ``weights_only=True``) or ``"safetensors"`` (tinct's own format).
        metrics: Published quality numbers for these weights.
        folder: Folder outside the package holding ``file_name`` (user models);
            ``None`` for bundled and downloadable weights.
    """

    file_name: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    license: str = ""
    citation: str = ""
    format: Literal["pth", "safetensors"] = "safetensors"
    metrics: tuple[tuple[str, float], ...] = ()
    folder: str | None = None

    def __post_init__(self) -> None:
        if self.format not in ("pth", "safetensors"):
            raise ValueError(f"format must be 'pth' or 'safetensors', got {self.format!r}")
        if self.sha256 is not None and not _SHA256_RE.match(self.sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        if self.url is not None and self.sha256 is None:
            raise ValueError("downloadable weights need a sha256")
        if "/" in self.file_name or "\\" in self.file_name or not self.file_name:
            raise ValueError(f"file_name must be a bare file name, got {self.file_name!r}")
        if self.folder is not None and self.url is not None:
            raise ValueError("weights are either in a local folder or downloadable, not both")

    @property
    def bundled(self) -> bool:
        """True for files shipped inside the package."""
        return self.url is None and self.folder is None

    @property
    def local_path(self) -> Path | None:
        """The file of a user model (``folder / file_name``), else ``None``."""
        return None if self.folder is None else Path(self.folder) / self.file_name


@dataclass(frozen=True)
class ModelRecord:
    """One named model: how to build it, feed it, and where its weights live.

    Attributes:
        name: Registry key (lowercase, ``[a-z0-9._-]``), e.g. ``"zhang-eccv16"``.
        display_name: Short human name for UIs.
        description: One or two sentences for tables and tooltips.
        builder: Callable returning the (randomly initialised) network.
        config: How to feed the network and decode its output.
        weights: Trained weights, or ``None`` (train it yourself / built in).
        paper: Reference of the method.
        kwargs: Keyword arguments passed to ``builder``.
        notes: What differs from the paper, caveats.
    """

    name: str
    display_name: str
    description: str
    builder: Callable[..., ColorModel]
    config: ModelConfig
    weights: Weights | None = None
    paper: str = ""
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    notes: str = ""

    def build(self, **overrides: Any) -> ColorModel:
        """Build the network with random weights (``kwargs`` updated by ``overrides``)."""
        return self.builder(**{**self.kwargs, **overrides})


_REGISTRY: dict[str, ModelRecord] = {}

#: :class:`ModelConfig` fields that say how to decode, not what the network is. Their one
#: source is the registry record: a weights file's metadata never overrides them, so a
#: model loaded by name and by path decodes the same way.
DECODING_DEFAULTS = frozenset(
    {"default_temperature", "default_decoder", "hint_decoder", "hint_propagation", "mrf"}
)


class UnknownModelError(KeyError):
    """Raised for a model name that is not registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown model"


def register_model(record: ModelRecord) -> ModelRecord:
    """Add a record to the registry.

    Args:
        record: The model record; its ``name`` must be new.

    Returns:
        The same record (so it can be assigned at module level).

    Raises:
        ValueError: If the name is malformed or already registered.
    """
    if not _NAME_RE.match(record.name):
        raise ValueError(f"model name must match {_NAME_RE.pattern}, got {record.name!r}")
    if record.name in _REGISTRY:
        raise ValueError(f"a model named {record.name!r} is already registered")
    _REGISTRY[record.name] = record
    return record


def unregister_model(name: str) -> ModelRecord:
    """Remove a record (for tests and plugins); returns it.

    Raises:
        UnknownModelError: If no such model is registered.
    """
    record = get_record(name)
    del _REGISTRY[name]
    return record


#: Called when a name is not registered; each may register more records and says if it did.
_MISS_FALLBACKS: list[Callable[[], bool]] = []


def on_unknown_name(fallback: Callable[[], bool]) -> None:
    """Have :func:`get_record` call ``fallback()`` before it reports an unknown name.

    :mod:`tinct.models.user_store` registers its re-scan of the user-model folder
    here, so the registry itself never imports the store.
    """
    if fallback not in _MISS_FALLBACKS:
        _MISS_FALLBACKS.append(fallback)


def list_models() -> list[ModelRecord]:
    """All registered model records, in registration order (each has ``.name``)."""
    return list(_REGISTRY.values())


def get_record(name: str) -> ModelRecord:
    """The record registered under ``name`` (case-insensitive).

    Raises:
        UnknownModelError: If not registered; the message lists valid names.
    """
    key = name.strip().lower()
    try:
        return _REGISTRY[key]
    except KeyError:
        # a model trained since the last scan? (the user store registers this look-up)
        if any(fallback() for fallback in _MISS_FALLBACKS) and key in _REGISTRY:
            return _REGISTRY[key]
        valid = ", ".join(_REGISTRY)
        raise UnknownModelError(f"unknown model {name!r}; registered models: {valid}") from None


def _tuplify(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value
