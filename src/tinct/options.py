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
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "LIBRARY_DEFAULTS",
    "NORMALIZE_MODES",
    "PRECISIONS",
    "ColorizeOptions",
    "FieldSpec",
    "OptionError",
    "known_decoders",
    "model_defaults",
]

#: Ways of mapping input intensities to ``[0, 1]`` (see :mod:`tinct.inputs`).
NORMALIZE_MODES = ("auto", "dtype", "percentile", "range")
#: Network precisions; ``"auto"`` = half precision on GPUs, float32 on CPU.
PRECISIONS = ("auto", "float32", "float16", "bfloat16")
#: Decoder names that select a model's regression head instead of its logits.
REGRESSION_DECODERS = ("ab", "regression")
#: Decoders that exist only for some targets (hue/chroma models).
EXTRA_DECODERS = ("larsson",)
#: Devices a request may name.
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")

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
class FieldSpec:
    """How one option is described, bounded and shown.

    Attributes:
        help: One sentence for ``--help``, tooltips and docs.
        label: Short label of the control in napari and GIMP.
        kind: ``float``, ``int``, ``str`` or ``"pair"`` (two floats).
        lo: Smallest allowed value (numbers), or ``None``.
        hi: Largest allowed value (numbers), or ``None``.
        lo_open: ``lo`` itself is not allowed (``> lo``).
        choices: Allowed text values, or a callable returning them.
        words: Text values with a special meaning (``{"auto": None}``).
        default_text: How ``--help`` names the default when it is ``None``.
        wire: A bridge request may set it.
        metavar: Placeholder(s) in ``--help``.
    """

    help: str
    label: str
    kind: Any = float
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None
    words: Mapping[str, Any] = field(default_factory=dict)
    default_text: str = "the model's"
    wire: bool = True
    metavar: str | tuple[str, ...] | None = None

    def allowed(self) -> tuple[str, ...] | None:
        """The allowed text values (``choices`` resolved), or ``None``."""
        return self.choices() if callable(self.choices) else self.choices

    def range_text(self) -> str:
        """The allowed range in words, e.g. ``"> 0"``, ``"0-20"``, ``">= 16"``."""
        lo, hi = _fmt(self.lo), _fmt(self.hi)
        if self.lo is not None and self.hi is not None:
            return f"{'>' if self.lo_open else '>='} {lo} and <= {hi}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {lo}"
        return f"<= {hi}" if self.hi is not None else ""


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:g}" if abs(x) < 1e6 else f"{x:.0e}"


def _spec(**kw: Any) -> Any:
    """A dataclass field default plus its :class:`FieldSpec` in the metadata."""
    default = kw.pop("default", None)
    return field(default=default, metadata={"tinct": FieldSpec(**kw)})


class OptionError(ValueError):
    """An invalid option value; knows which field, so front ends can name it their way.

    Attributes:
        field: The :class:`ColorizeOptions` field name.
        reason: What is wrong, e.g. ``"must be > 0"``.
        value: The offending value.
    """

    def __init__(self, field: str, reason: str, value: Any = None) -> None:
        self.field, self.reason, self.value = field, reason, value
        super().__init__(self.message_for("python"))

    @property
    def detail(self) -> str:
        """The reason and the offending value, without the field's name."""
        return self.reason + ("" if self.value is None else f", got {self.value!r}")

    def message_for(self, style: str = "python") -> str:
        """The message naming the field as ``style`` does.

        Args:
            style: ``"python"`` (the field name), ``"cli"`` (``--flag``),
                ``"wire"`` (the JSON key) or ``"gui"`` (the control label).
        """
        return f"{ColorizeOptions.name_in(self.field, style)}: {self.detail}"


@dataclass(frozen=True)
class ColorizeOptions:
    """Every knob of a colorization run (see each field's ``FieldSpec.help``).

    Attributes:
        model: Registry name or path of a ``.safetensors`` weights file.
        temperature: Softmax temperature of the decoder (> 0); ``None`` = the model's.
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
    """

    model: str = _spec(
        default="tinct-base", kind=str, label="model", wire=False, default_text="tinct-base",
        help="model name (see `tinct models`) or path of a .safetensors weights file",
    )  # fmt: skip
    temperature: float | None = _spec(
        lo=0.0, lo_open=True, hi=100.0, label="temperature",
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
    device: str = _spec(
        default="auto", kind=str, label="device", wire=False, default_text="auto",
        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps",
    )  # fmt: skip
    precision: str = _spec(
        default="auto", kind=str, choices=PRECISIONS, label="precision", wire=False,
        default_text="auto", help="network precision",
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
        if self.normalize == "range" and self.intensity_range is None:
            raise OptionError("normalize", "'range' needs an intensity range", self.normalize)

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
        if style == "cli":
            return "--" + name.replace("_", "-")
        if style == "wire":
            return f'"{name}"'
        if style == "gui":
            spec = cls.specs().get(name)
            return spec.label if spec is not None else name
        return name

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


_NONE = object()  # "the user chose the field's None meaning" (e.g. --tile auto)


def _check(name: str, value: Any, spec: FieldSpec) -> None:
    """Validate one field value against its spec (``None`` always passes)."""
    if value is None:
        return
    if spec.kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(name, "must be a number", value)
        if not math.isfinite(value):
            raise OptionError(name, "must be a finite number", value)
        if spec.kind is int and int(value) != value:
            raise OptionError(name, "must be a whole number", value)
        _bounds(name, value, spec)
    elif spec.kind == "pair":
        if not isinstance(value, tuple) or len(value) != 2:
            raise OptionError(name, "must be two numbers (low, high)", value)
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise OptionError(name, "must be two finite numbers", value)
            _bounds(name, v, spec, shown=value)
    elif spec.kind is str:
        if not isinstance(value, str):
            raise OptionError(name, "must be text", value)
        allowed = spec.allowed()
        if allowed is not None and value not in allowed:
            raise OptionError(name, f"must be one of {', '.join(allowed)}", value)


def _bounds(name: str, v: float, spec: FieldSpec, shown: Any = None) -> None:
    too_low = spec.lo is not None and (v <= spec.lo if spec.lo_open else v < spec.lo)
    too_high = spec.hi is not None and v > spec.hi
    if too_low or too_high:
        raise OptionError(name, f"must be {spec.range_text()}", v if shown is None else shown)


def _convert(key: str, value: Any, spec: FieldSpec) -> Any:
    """Convert a textual/JSON value to the field's type (raises :class:`OptionError`)."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in spec.words:
            return _NONE if spec.words[word] is None else spec.words[word]
        if word in ("none", "") and spec.kind is not str:
            return _NONE
    try:
        if spec.kind == "pair":
            if isinstance(value, str):
                value = [v for v in re.split(r"[,\s]+", value.strip()) if v]
            lo, hi = (_number(v, float) for v in value)
            return (lo, hi)
        if spec.kind in (int, float):
            return _number(value, spec.kind)
        if spec.kind is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
    except (TypeError, ValueError):
        what = {int: "a whole number", float: "a number", "pair": "two numbers (low high)"}
        raise OptionError(key, f"must be {what.get(spec.kind, 'a value')}", value) from None
    if not isinstance(value, str):
        raise OptionError(key, "must be text", value)
    lowered = key in ("normalize", "precision", "device", "decoder")
    return value.strip().lower() if lowered else value.strip()


def _number(value: Any, kind: type) -> int | float:
    if isinstance(value, bool):
        raise TypeError("not a number")
    f = float(value)
    if kind is int:
        if not math.isfinite(f) or f != int(f):
            raise ValueError("not a whole number")
        return int(f)
    return f


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
