"""One options object for every front end (Python, CLI, napari widget, GIMP bridge, batch).

:class:`ColorizeOptions` is a frozen dataclass and the only description of a
colorization request. Each field carries a :class:`FieldSpec` (help text,
range, choices, the label a GUI shows); the CLI flags, their ranges, defaults
and ``--help`` text are generated from these specs (:mod:`tinct.cli._options`),
the napari widget takes its ranges and tooltips from them, and the bridge
accepts the fields marked ``wire``. A field added here gets its flag without
further work.

Fields left at ``None`` mean "let the model decide": they are filled from the
chosen model's record (:class:`tinct.models.registry.ModelConfig`) and then
from :data:`LIBRARY_DEFAULTS`:

    library defaults  <  model record defaults  <  explicit user values

Validation lives in one place (``__post_init__``) and raises
:class:`OptionError`, which knows the field, so each front end can name it in
its own terms (:meth:`OptionError.message_for`: ``--temperature`` on the CLI,
``"temperature"`` on the wire, the control label in napari and GIMP).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tinct.engine.optionspec import (
    _NONE,
    FIELD_LABELS,
    FieldSpec,
    OptionError,
    _check,
    _convert,
    _spec,
)
from tinct.engine.optionspec import name_in as _name_in

__all__ = [
    "LIBRARY_DEFAULTS",
    "MIN_TEMPERATURE",
    "NORMALIZE_MODES",
    "PRECISIONS",
    "ColorizeOptions",
    "known_decoders",
    "model_defaults",
]

#: Ways of mapping input intensities to ``[0, 1]`` (see :mod:`tinct.engine.inputs`).
NORMALIZE_MODES = ("auto", "dtype", "percentile", "range")
#: Network precisions; ``"auto"`` = half precision on GPUs, float32 on CPU.
PRECISIONS = ("auto", "float32", "float16", "bfloat16")
#: Decoder names that select a model's regression head instead of its logits.
REGRESSION_DECODERS = ("ab", "regression")
#: Decoders that exist only for some targets (hue/chroma models).
EXTRA_DECODERS = ("larsson",)
#: Devices a request may name.
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
#: Lowest decoder temperature: at 0.01 the annealed mean is all but the mode of the
#: distribution; far smaller values left float32 nothing to work with (a temperature of
#: 1e-39 gave black images).
MIN_TEMPERATURE = 0.01

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


def known_decoders() -> tuple[str, ...]:
    """Every decoder name a request may give (distribution, hue/chroma and regression)."""
    from tinct.decode import DECODERS

    return (*DECODERS, *EXTRA_DECODERS, *REGRESSION_DECODERS)


@dataclass(frozen=True)
class ColorizeOptions:
    """Every knob of a colorization run (see each field's ``FieldSpec.help``).

    Attributes:
        model: Registry name or path of a ``.safetensors`` weights file.
        temperature: Softmax temperature of the decoder, in ``[0.01, 100]``
            (:data:`MIN_TEMPERATURE`); ``None`` = the model's.
        decoder: Decoder name (:data:`tinct.decode.DECODERS`, ``"larsson"`` for
            hue/chroma models, ``"ab"`` for the regression head); ``None`` = the model's.
        mrf_weight: MRF smoothing of the colour distribution (0 = off).
        mrf_iters: Mean-field iterations of the MRF.
        mrf_edge: Edge sensitivity of the MRF (larger = stops more at luminance
            edges); ``None`` = the MRF's default.
        propagation: Edge-aware hint propagation after decoding (Levin et al.,
            with the prediction as prior; 0 = off).
        tile: Tile side in network pixels; ``None`` = automatic, ``0`` = never tile.
        tile_overlap: Overlap of neighbouring tiles; ``None`` = a quarter of the tile.
        net_size: Long side of the network input; ``None`` = the model's.
        normalize: How intensities map to ``[0, 1]``: ``"auto"`` (uint8 as is,
            everything else by percentiles: 12-bit microscopy in uint16 and
            floats of any range come out visible), ``"dtype"`` (the dtype's
            range; floats taken as ``[0, 1]``), ``"percentile"`` or ``"range"``
            (``intensity_range``).
        percentiles: ``(low, high)`` percentiles mapped to black and white.
        intensity_range: ``(low, high)`` values mapped to black and white
            (e.g. napari's contrast limits); implies ``normalize="range"``.
        hint_size: Hint patch side in network pixels for hints without a size.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        precision: ``"auto"``, ``"float32"``, ``"float16"`` or ``"bfloat16"``.
        local_hints: Hints colour the region around them and stop at its edges
            (a screened propagation, :func:`tinct.engine.reach.hint_reach`)
            instead of reaching every pixel (hint-fusing models).
        temporal: Colorize stacks and videos as sequences (time or depth along
            the first stack axis): colour holds still where content persists
            and hints carry to the following planes (:mod:`tinct.engine.temporal`).
    """

    model: str = _spec(
        default="tinct-base", kind=str, label="model", wire=False, default_text="tinct-base",
        help="model name (see `tinct models`) or path of a .safetensors weights file",
    )  # fmt: skip
    temperature: float | None = _spec(
        lo=MIN_TEMPERATURE, hi=100.0, label="temperature",
        help="decoder temperature: low = saturated colours, high = muted ones",
    )  # fmt: skip
    decoder: str | None = _spec(
        kind=str, choices=known_decoders, label="decoder",
        help="how the colour distribution becomes a colour (ab = the regression head)",
    )  # fmt: skip
    mrf_weight: float | None = _spec(
        lo=0.0, hi=1e6, label="MRF weight",
        help="MRF smoothing of the colour distribution before decoding (0 = off)",
    )  # fmt: skip
    mrf_iters: int | None = _spec(
        kind=int, lo=0, hi=10_000, label="MRF iterations", default_text="5",
        help="mean-field iterations of the MRF",
    )  # fmt: skip
    mrf_edge: float | None = _spec(
        lo=0.0, hi=1e3, label="MRF edge sensitivity", default_text="the MRF's",
        help="how much the MRF stops at luminance edges (larger = sharper colour edges)",
    )  # fmt: skip
    propagation: float | None = _spec(
        lo=0.0, hi=1e6, label="hint propagation",
        help="edge-aware spreading of hint colours after decoding (0 = off)",
    )  # fmt: skip
    tile: int | None = _spec(
        kind=int, lo=0, hi=65536, label="tile", words={"auto": None, "off": 0},
        default_text="auto: tiled above 16 megapixels",
        help="tile side in network pixels for huge images (0 or off = never tile)",
    )  # fmt: skip
    tile_overlap: int | None = _spec(
        kind=int, lo=0, hi=65536, label="tile overlap", default_text="a quarter of the tile",
        help="overlap of neighbouring tiles in network pixels",
    )  # fmt: skip
    net_size: int | None = _spec(
        kind=int, lo=16, hi=4096, label="network size", wire=False,
        help="long side of the network input in pixels",
    )  # fmt: skip
    normalize: str = _spec(
        default="auto", kind=str, choices=NORMALIZE_MODES, label="normalisation",
        default_text="auto",
        help="intensity scaling: auto (uint8 as is, other data by percentiles), dtype "
        "(the dtype's full range), percentile, or range (--intensity-range)",
    )  # fmt: skip
    percentiles: tuple[float, float] = _spec(
        default=(0.5, 99.5), kind="pair", lo=0.0, hi=100.0, label="percentiles",
        metavar=("LO", "HI"), default_text="0.5 99.5",
        help="percentiles of the data shown as black and white",
    )  # fmt: skip
    intensity_range: tuple[float, float] | None = _spec(
        kind="pair", label="intensity range", metavar=("LO", "HI"), default_text="none",
        help="data values shown as black and white (napari: the layer's contrast limits)",
    )  # fmt: skip
    hint_size: int | None = _spec(
        kind=int, lo=1, hi=256, label="hint size", default_text="5", wire=False,
        help="side of a hint's square patch in network pixels",
    )  # fmt: skip
    local_hints: bool = _spec(
        default=False, kind=bool, label="local hints", default_text="off",
        help="hints colour the region around them and stop at its edges, instead of "
        "spreading over the whole picture (hint-fusing models such as tinct-base)",
    )  # fmt: skip
    device: str = _spec(
        default="auto", kind=str, label="device", wire=False, default_text="auto",
        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps",
    )  # fmt: skip
    precision: str = _spec(
        default="auto", kind=str, choices=PRECISIONS, label="precision", wire=False,
        default_text="auto", help="network precision",
    )  # fmt: skip
    temporal: bool = _spec(
        default=False, kind=bool, label="temporal", wire=False, default_text="off",
        help="stacks and videos: colour holds still along the first axis (time or depth) "
        "and hints carry to later planes",
    )  # fmt: skip

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            spec = f.metadata.get("tinct")
            if spec is not None:
                _check(f.name, getattr(self, f.name), spec)
        if not self.model or not isinstance(self.model, str):
            raise OptionError("model", "must be a model name or a weights file", self.model)
        if not _DEVICE_RE.match(self.device):
            raise OptionError("device", f"must be one of {', '.join(DEVICES)}", self.device)
        if self.tile is not None and 0 < self.tile < 16:
            raise OptionError("tile", "must be 0 (off) or >= 16", self.tile)
        if self.tile and self.tile_overlap is not None and self.tile_overlap >= self.tile:
            raise OptionError("tile_overlap", f"must be smaller than the tile ({self.tile})",
                              self.tile_overlap)  # fmt: skip
        lo, hi = self.percentiles
        if not lo < hi:
            raise OptionError("percentiles", "low must be below high", self.percentiles)
        if self.intensity_range is not None and not (
            self.intensity_range[0] < self.intensity_range[1]
        ):
            raise OptionError("intensity_range", "low must be below high", self.intensity_range)
        if self.normalize == "range" and self.intensity_range is None:  # name what is missing
            raise OptionError("intensity_range", "must be given with {normalize} 'range'")

    # ------------------------------------------------------------------ description

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all fields, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def specs(cls) -> dict[str, FieldSpec]:
        """``{field name: FieldSpec}`` in declaration order (fields without a spec get one)."""
        out = {}
        for f in dataclasses.fields(cls):
            spec = f.metadata.get("tinct")
            if spec is None:  # a field added without a spec still gets a flag
                kind = {"int": int, "bool": bool}.get(str(f.type).split(" ")[0], str)
                spec = FieldSpec(help=f.name.replace("_", " "), label=f.name, kind=kind)
            out[f.name] = spec
        return out

    @classmethod
    def wire_fields(cls) -> tuple[str, ...]:
        """Fields a bridge request may set."""
        return tuple(n for n, s in cls.specs().items() if s.wire)

    @classmethod
    def name_in(cls, name: str, style: str) -> str:
        """How a front end names a field: ``--mrf-weight``, ``"mrf_weight"``, ``MRF weight``."""
        return _name_in(name, style)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any] | None = None, **overrides: Any
    ) -> ColorizeOptions:
        """Build validated options from a mapping of (possibly textual) values.

        Keys may use dashes or underscores (``"mrf-weight"``). ``None`` values are
        skipped so absent CLI flags keep their defaults. Numbers given as text
        are converted; a field's special words (``"auto"``, ``"none"``) select
        their values.

        Args:
            data: Field values, e.g. parsed JSON or CLI arguments.
            **overrides: More field values, applied after ``data``.

        Returns:
            The options.

        Raises:
            OptionError: An unknown key (``field`` is the key; the message lists
                the valid ones) or an invalid value.
        """
        merged: dict[str, Any] = {}
        for src in (data or {}), overrides:
            for key, value in src.items():
                merged[str(key).replace("-", "_")] = value
        specs = cls.specs()
        for key in merged:
            if key not in specs:
                raise OptionError(key, f"unknown option; valid options: {', '.join(specs)}")
        kwargs = {k: _convert(k, v, specs[k]) for k, v in merged.items() if v is not None}
        return cls(**{k: v for k, v in kwargs.items() if v is not _NONE})

    def replace(self, **changes: Any) -> ColorizeOptions:
        """A copy with some fields changed (``None`` values are ignored), validated."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of all fields."""
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    def resolved(self, defaults: Mapping[str, Any] | None = None) -> ColorizeOptions:
        """Fill the ``None`` fields from ``defaults`` (model record) then the library defaults.

        Args:
            defaults: Model-record defaults, as returned by :func:`model_defaults`.

        Returns:
            Options whose temperature, decoder, mrf_weight, mrf_iters,
            propagation, net_size and hint_size are set. ``mrf_edge``,
            ``tile`` and ``tile_overlap`` stay as given (resolved later).
        """
        changes: dict[str, Any] = {}
        for name, lib in LIBRARY_DEFAULTS.items():
            if getattr(self, name) is None:
                value = (defaults or {}).get(name)
                changes[name] = lib if value is None else value
        return dataclasses.replace(self, **changes)


FIELD_LABELS.update({n: s.label for n, s in ColorizeOptions.specs().items()})


def model_defaults(config: Any) -> dict[str, Any]:
    """The option defaults a model record carries.

    Args:
        config: A :class:`tinct.models.registry.ModelConfig` (or any object with
            some of its attributes).

    Returns:
        ``temperature``, ``decoder``, ``hint_decoder`` (default decoder when hints
        are given), ``propagation`` and ``net_size`` from the config where set,
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
