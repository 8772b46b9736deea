"""One options object for every front end (CLI, napari widget, GIMP server, Dask jobs).

:class:`ColorizeOptions` is a frozen dataclass. Fields left at ``None`` mean
"let the model decide": they are filled from the chosen model's record
(:class:`tinct.models.registry.ModelConfig`) and then from the library
defaults below. The order of precedence is therefore

    library defaults  <  model record defaults  <  explicit user values

Front ends that receive text or JSON (the CLI, the GIMP bridge) build the
object with :meth:`ColorizeOptions.from_mapping`, which converts types and
raises a :class:`ValueError` naming the offending key.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LIBRARY_DEFAULTS",
    "NORMALIZE_MODES",
    "PRECISIONS",
    "ColorizeOptions",
    "model_defaults",
]

#: Ways of mapping input intensities to ``[0, 1]`` (see :mod:`tinct.inputs`).
NORMALIZE_MODES = ("auto", "dtype", "percentile")
#: Network precisions; ``"auto"`` = half precision on GPUs, float32 on CPU.
PRECISIONS = ("auto", "float32", "float16", "bfloat16")
#: Decoder name that selects a model's regression head instead of its logits.
REGRESSION_DECODERS = ("ab", "regression")
#: Decoders that exist only for some targets (hue/chroma models).
EXTRA_DECODERS = ("larsson",)

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

#: Values used when neither the user nor the model record sets a field.
LIBRARY_DEFAULTS: dict[str, Any] = {
    "temperature": 0.38,
    "decoder": "annealed_mean",
    "mrf_weight": 0.0,
    "mrf_iters": 5,
    "propagation": 0.0,
    "net_size": 256,
    "hint_size": 5,
}


def _known_decoders() -> tuple[str, ...] | None:
    """Decoder names from :mod:`tinct.decode`, or ``None`` while it is unavailable."""
    try:
        from tinct.decode import DECODERS
    except ImportError:
        return None
    return (*sorted(DECODERS), *EXTRA_DECODERS, *REGRESSION_DECODERS)


@dataclass(frozen=True)
class ColorizeOptions:
    """Every knob of a colorization run.

    Attributes:
        model: Registry name or path of a weights file.
        temperature: Softmax temperature of the decoder (> 0); ``None`` = the
            model's ``default_temperature``.
        decoder: Decoder name from :data:`tinct.decode.DECODERS`, or ``"ab"`` to
            use the regression head; ``None`` = the model's default.
        mrf_weight: Strength of MRF smoothing of the bin distribution
            (``0`` = off); ``None`` = 1 for models whose record asks for the MRF
            (``ModelConfig.mrf``), else 0.
        mrf_iters: Mean-field iterations of the MRF; ``None`` = 5.
        mrf_edge: Edge sensitivity of the MRF pairwise term (larger = stops
            more at luminance edges); ``None`` = the MRF's default.
        propagation: Edge-aware hint propagation after decoding (Lab models,
            only when hints are given): hint colours spread along similar
            luminance (Levin et al.'s affinities) and the model's prediction
            takes over beyond about ``1 / sqrt(propagation)`` pixels of the
            decoded grid (:func:`tinct.levin.levin_colorize` with a prior).
            ``0`` = off; ``None`` = the model's ``hint_propagation``.
        tile: Tile side in network pixels. ``None`` = automatic (tiled only for
            images above :data:`tinct.engine.AUTO_TILE_PIXELS`), ``0`` = never tile.
        tile_overlap: Overlap of neighbouring tiles in network pixels; ``None`` =
            a quarter of the tile.
        net_size: Long side of the network input in pixels; ``None`` = the
            model's ``input_size`` (raised automatically for huge tiled images).
        normalize: How intensities map to ``[0, 1]``: ``"dtype"`` (the dtype's
            range; floats are taken as already in ``[0, 1]``), ``"percentile"``
            (``percentiles`` of the data map to 0 and 1), or ``"auto"`` (dtype for
            uint8, uint16 and floats within ``[0, 1]``; percentile otherwise).
        percentiles: ``(low, high)`` percentiles for ``normalize="percentile"``.
        hint_size: Default hint patch side in network pixels for hints whose
            ``size`` is ``None``; ``None`` = 5 (ideepcolor's default).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        precision: ``"auto"``, ``"float32"``, ``"float16"`` or ``"bfloat16"``.
        temporal: Colorize stacks and videos as sequences (time or depth along
            the first stack axis): colour holds still where content persists
            and hints carry to the following planes (:mod:`tinct.temporal`).
    """

    model: str = "tinct-base"
    temperature: float | None = None
    decoder: str | None = None
    mrf_weight: float | None = None
    mrf_iters: int | None = None
    mrf_edge: float | None = None
    propagation: float | None = None
    tile: int | None = None
    tile_overlap: int | None = None
    net_size: int | None = None
    normalize: str = "auto"
    percentiles: tuple[float, float] = (0.5, 99.5)
    hint_size: int | None = None
    device: str = "auto"
    precision: str = "auto"
    temporal: bool = False

    def __post_init__(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"ColorizeOptions.{name}: {why}, got {getattr(self, name)!r}")

        if not isinstance(self.model, str) or not self.model:
            fail("model", "must be a non-empty model name or path")
        if self.temperature is not None and not (self.temperature > 0):
            fail("temperature", "must be > 0")
        if self.decoder is not None:
            known = _known_decoders()
            if not isinstance(self.decoder, str):
                fail("decoder", "must be a string")
            if known is not None and self.decoder not in known:
                fail("decoder", f"must be one of {', '.join(known)}")
        if self.mrf_weight is not None and not (self.mrf_weight >= 0):
            fail("mrf_weight", "must be >= 0")
        if self.propagation is not None and not (self.propagation >= 0):
            fail("propagation", "must be >= 0")
        if self.mrf_iters is not None and (
            int(self.mrf_iters) != self.mrf_iters or self.mrf_iters < 0
        ):
            fail("mrf_iters", "must be an integer >= 0")
        if self.mrf_edge is not None and not (self.mrf_edge >= 0):
            fail("mrf_edge", "must be >= 0")
        if self.tile is not None and (
            int(self.tile) != self.tile or (0 < self.tile < 16) or self.tile < 0
        ):
            fail("tile", "must be None (auto), 0 (off) or an integer >= 16")
        if self.tile_overlap is not None:
            if int(self.tile_overlap) != self.tile_overlap or self.tile_overlap < 0:
                fail("tile_overlap", "must be an integer >= 0")
            if self.tile and self.tile_overlap >= self.tile:
                fail("tile_overlap", f"must be smaller than tile ({self.tile})")
        if self.net_size is not None and (
            int(self.net_size) != self.net_size or self.net_size < 16
        ):
            fail("net_size", "must be an integer >= 16")
        if self.normalize not in NORMALIZE_MODES:
            fail("normalize", f"must be one of {', '.join(NORMALIZE_MODES)}")
        lo, hi = self.percentiles
        if not (0.0 <= lo < hi <= 100.0):
            fail("percentiles", "must be (low, high) with 0 <= low < high <= 100")
        if self.hint_size is not None and (
            int(self.hint_size) != self.hint_size or self.hint_size < 1
        ):
            fail("hint_size", "must be an integer >= 1")
        if not isinstance(self.device, str) or not _DEVICE_RE.match(self.device):
            fail("device", "must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        if self.precision not in PRECISIONS:
            fail("precision", f"must be one of {', '.join(PRECISIONS)}")
        if not isinstance(self.temporal, bool):
            fail("temporal", "must be True or False")

    # ------------------------------------------------------------------ construction

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all fields, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any] | None = None, **overrides: Any
    ) -> ColorizeOptions:
        """Build validated options from a mapping of (possibly textual) values.

        Keys may use dashes or underscores (``"mrf-weight"``). ``None`` values are
        skipped so absent CLI flags keep their defaults. Numbers given as strings
        are converted; ``"none"``/``"auto"`` select ``None`` for optional fields.

        Args:
            data: Field values, e.g. parsed JSON or ``vars(argparse_namespace)``
                restricted to option names.
            **overrides: More field values, applied after ``data``.

        Returns:
            The options.

        Raises:
            ValueError: Unknown key (the message lists the valid ones) or an
                invalid value.
        """
        merged: dict[str, Any] = {}
        for src in (data or {}), overrides:
            for key, value in src.items():
                merged[str(key).replace("-", "_")] = value
        names = cls.field_names()
        unknown = sorted(k for k in merged if k not in names)
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)}; valid options: {', '.join(names)}"
            )
        kwargs = {}
        for key, value in merged.items():
            if value is None:
                continue
            kwargs[key] = _convert(key, value)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> ColorizeOptions:
        """A copy with some fields changed (``None`` values are ignored), validated."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of all fields."""
        d = dataclasses.asdict(self)
        d["percentiles"] = list(self.percentiles)
        return d

    def resolved(self, defaults: Mapping[str, Any] | None = None) -> ColorizeOptions:
        """Fill the ``None`` fields from ``defaults`` (model record) then the library defaults.

        Args:
            defaults: Model-record defaults, as returned by :func:`model_defaults`.

        Returns:
            Options whose temperature, decoder, mrf_weight, mrf_iters, net_size
            and hint_size are set. ``mrf_edge`` stays ``None`` (the MRF's own default);
            ``tile`` and ``tile_overlap`` stay as given (the engine resolves
            them per image).
        """
        changes: dict[str, Any] = {}
        for name, lib in LIBRARY_DEFAULTS.items():
            if getattr(self, name) is None:
                value = (defaults or {}).get(name)
                changes[name] = lib if value is None else value
        return dataclasses.replace(self, **changes)


def model_defaults(config: Any) -> dict[str, Any]:
    """The option defaults a model record carries.

    Args:
        config: A :class:`tinct.models.registry.ModelConfig` (or any object with
            some of its attributes).

    Returns:
        ``temperature``, ``decoder``, ``hint_decoder`` (default decoder when hints
        are given) and ``net_size`` from the config where set,
        and ``mrf_weight`` 1 when the config asks for the MRF.
    """
    out: dict[str, Any] = {}
    for opt, attr in (
        ("temperature", "default_temperature"),
        ("decoder", "default_decoder"),
        ("hint_decoder", "hint_decoder"),
        ("propagation", "hint_propagation"),
        ("net_size", "input_size"),
    ):
        value = getattr(config, attr, None)
        if value is not None:
            out[opt] = value
    if getattr(config, "mrf", False):
        out["mrf_weight"] = 1.0
    return out


_INT_FIELDS = {"mrf_iters", "tile", "tile_overlap", "net_size", "hint_size"}
_FLOAT_FIELDS = {"temperature", "mrf_weight", "mrf_edge", "propagation"}
_BOOL_FIELDS = {"temporal"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _convert(key: str, value: Any) -> Any:
    """Convert a textual/JSON value to the field's type with a clear error."""
    try:
        if key in _BOOL_FIELDS:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                return value.strip().lower() in _TRUE
            raise ValueError("expected true or false")
        if key in _INT_FIELDS or key in _FLOAT_FIELDS:
            if isinstance(value, str) and value.strip().lower() in ("none", "auto", ""):
                return None
            if isinstance(value, bool):
                if key == "tile":
                    return None if value else 0
                raise TypeError("booleans are not numbers here")
            if key in _INT_FIELDS:
                f = float(value)
                if f != int(f):
                    raise ValueError("not an integer")
                return int(f)
            return float(value)
        if key == "percentiles":
            if isinstance(value, str):
                value = [v for v in re.split(r"[,\s]+", value.strip()) if v]
            lo, hi = (float(v) for v in value)
            return (lo, hi)
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {type(value).__name__}")
        return value.strip().lower() if key in ("normalize", "precision", "device") else value
    except (TypeError, ValueError) as exc:
        raise ValueError(f"option {key!r}: invalid value {value!r} ({exc})") from None
