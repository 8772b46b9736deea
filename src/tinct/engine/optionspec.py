"""How one option of :class:`tinct.ColorizeOptions` is described, converted and checked.

A :class:`FieldSpec` (help, label, range, choices, special words) sits in each
field's metadata; :func:`_check` validates a value against it and
:func:`_convert` turns text or JSON into the field's type. Both raise
:class:`OptionError`, which knows the field so each front end can name it in
its own terms.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FIELD_LABELS", "FieldSpec", "OptionError", "name_in"]


@dataclass(frozen=True)
class FieldSpec:
    """How one option is described, bounded and shown.

    Attributes:
        help: One sentence for ``--help``, tooltips and docs.
        label: Short label of the control in napari and GIMP.
        kind: ``float``, ``int``, ``str``, ``bool`` (an on/off switch; a CLI
            flag without a value) or ``"pair"`` (two floats).
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
        field: The :class:`~tinct.engine.options.ColorizeOptions` field name.
        reason: What is wrong, e.g. ``"must be > 0"``. Other fields it names are
            written ``{net_size}`` and worded by each front end its way
            (:meth:`detail_for`: ``--net-size`` on the CLI).
        value: The offending value.
    """

    def __init__(self, field: str, reason: str, value: Any = None) -> None:
        self.field, self.reason, self.value = field, reason, value
        super().__init__(self.message_for("python"))

    @property
    def detail(self) -> str:
        """The reason and the offending value, without the field's name (Python's names)."""
        return self.detail_for("python")

    def detail_for(self, style: str = "python") -> str:
        """The reason and the offending value, other fields named as ``style`` does."""
        reason = _FIELD_REF.sub(lambda m: name_in(m.group(1), style), self.reason)
        return reason + ("" if self.value is None else f", got {self.value!r}")

    def message_for(self, style: str = "python") -> str:
        """The message naming the field as ``style`` does.

        Args:
            style: ``"python"`` (the field name), ``"cli"`` (``--flag``),
                ``"wire"`` (the JSON key) or ``"gui"`` (the control label).
        """
        return f"{name_in(self.field, style)}: {self.detail_for(style)}"


#: A field named in an :class:`OptionError`'s reason: ``{tile_overlap}``.
_FIELD_REF = re.compile(r"\{([a-z][a-z0-9_]*)\}")


#: Control labels by field name; :mod:`tinct.engine.options` fills it from its specs.
FIELD_LABELS: dict[str, str] = {}


def name_in(name: str, style: str) -> str:
    """How a front end names a field: ``--mrf-weight``, ``"mrf_weight"``, ``MRF weight``."""
    if style == "cli":
        return "--" + name.replace("_", "-")
    if style == "wire":
        return f'"{name}"'
    if style == "gui":
        return FIELD_LABELS.get(name, name)
    return name


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
    elif spec.kind is bool:
        if not isinstance(value, bool):
            raise OptionError(name, "must be True or False", value)
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
            return _switch(value)
    except (TypeError, ValueError):
        what = {int: "a whole number", float: "a number", "pair": "two numbers (low high)",
                bool: "true or false"}  # fmt: skip
        raise OptionError(key, f"must be {what.get(spec.kind, 'a value')}", value) from None
    if not isinstance(value, str):
        raise OptionError(key, "must be text", value)
    lowered = key in ("normalize", "precision", "device", "decoder")
    return value.strip().lower() if lowered else value.strip()


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _switch(value: Any) -> bool:
    """An on/off value: a bool, 0/1, or a word (true/false, yes/no, on/off)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower() if isinstance(value, str) else None
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError("not a switch")


def _number(value: Any, kind: type) -> int | float:
    if isinstance(value, bool):
        raise TypeError("not a number")
    f = float(value)
    if kind is int:
        if not math.isfinite(f) or f != int(f):
            raise ValueError("not a whole number")
        return int(f)
    return f
