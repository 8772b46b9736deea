"""User colour hints: the value type, converters from napari/GIMP/files, and rasterisation.

A :class:`Hint` says "around image pixel (row, col) the colour is this". It is
napari-free and shared by every front end:

* napari Points layers -> :func:`hints_from_points`;
* a painted RGBA hint layer (the GIMP bridge) -> :func:`hints_from_rgba`;
* CSV/JSON files (the CLI) -> :func:`read_hints_file`.

:func:`~tinct.engine.hint_raster.encode_hints` rasterises hints into a network's input grid the way
SIGGRAPH17 / ideepcolor do (a square patch of hint chrominance with mask 1,
also for gray hints), after snapping each colour into the sRGB gamut at the
luminance of the image under the hint. :func:`~tinct.engine.hint_raster.hint_influence` gives the
spatial weight map the engine uses to make models without hint inputs (and
regression heads) honour hints too.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinct.engine.filelimits import open_regular

__all__ = [
    "MAX_FILE_HINTS",
    "MAX_HINTS_FILE_BYTES",
    "MAX_HINT_SIZE",
    "Hint",
    "hints_digest",
    "hints_from_points",
    "hints_from_rgba",
    "read_hints_file",
]

#: Largest hint patch side in image pixels (a finite bound: 1e308 overflowed when scaled).
MAX_HINT_SIZE = 1e9


@dataclass(frozen=True)
class Hint:
    """A colour hint at an image pixel.

    Give exactly one of ``color`` and ``ab``.

    Attributes:
        row: Row of the hint centre in image pixels (``0 <= row < H``).
        col: Column of the hint centre in image pixels.
        color: sRGB colour: floats all within ``[0, 1]`` are read as ``[0, 1]``;
            otherwise values are read as ``0..255``. Stored normalised to ``[0, 1]``.
        ab: Chrominance in the model's colour space (CIELAB a, b for Lab models).
        size: Side of the square hint patch in image pixels; ``None`` = the
            options' ``hint_size`` in network pixels (5 by default).
    """

    row: float
    col: float
    color: tuple[float, float, float] | None = None
    ab: tuple[float, float] | None = None
    size: float | None = None

    def __post_init__(self) -> None:
        if (self.color is None) == (self.ab is None):
            raise ValueError("a Hint needs exactly one of color=(r, g, b) and ab=(a, b)")
        for name in ("row", "col"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
                raise TypeError(f"Hint.{name} must be a number, got {_shown(v)}")
            if not math.isfinite(_finite_float(v)):
                raise ValueError(f"Hint.{name} must be finite, got {_shown(v)}")
            object.__setattr__(self, name, float(v))
        if self.color is not None:
            c = tuple(_finite_float(x) for x in self.color)
            if len(c) not in (3, 4) or not all(math.isfinite(x) for x in c):
                raise ValueError(f"Hint.color must be (r, g, b), got {_shown(self.color)}")
            c = c[:3]
            is_float = all(isinstance(x, (float, np.floating)) for x in self.color[:3])
            if not (is_float and max(c) <= 1.0):
                c = tuple(x / 255.0 for x in c)
            if min(c) < 0.0 or max(c) > 1.0:
                raise ValueError(f"Hint.color out of range: {_shown(self.color)}")
            object.__setattr__(self, "color", c)
        if self.ab is not None:
            ab = tuple(_finite_float(x) for x in self.ab)
            if len(ab) != 2 or not all(math.isfinite(x) for x in ab):
                raise ValueError(f"Hint.ab must be (a, b), got {_shown(self.ab)}")
            object.__setattr__(self, "ab", ab)
        if self.size is not None:
            ok = isinstance(self.size, (int, float, np.number)) and not isinstance(self.size, bool)
            if not (ok and 1 <= self.size <= MAX_HINT_SIZE):
                raise ValueError(
                    f"Hint.size must be 1 to {MAX_HINT_SIZE:.0e} pixels, got {_shown(self.size)}"
                )
            object.__setattr__(self, "size", float(self.size))

    def key(self) -> tuple[Any, ...]:
        """A hashable, exact description (for cache keys)."""
        return (self.row, self.col, self.color, self.ab, self.size)


def _finite_float(x: Any) -> float:
    """``float(x)``, with an integer too large for a float (``10**400``) as infinity.

    ``float()`` raises :class:`OverflowError` for such an integer (a JSON hints file or a
    request may hold one); as infinity it is refused as not finite, a :class:`ValueError`.
    """
    try:
        return float(x)
    except OverflowError:
        return math.inf


#: Most characters of a value quoted in a message (a hints file may hold a huge one).
_SHOWN_CHARS = 80


def _shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`_SHOWN_CHARS` characters for a one-line message."""
    try:
        text = repr(value)
    except ValueError:  # an integer of more digits than Python turns into text
        text = "a number too long to show"
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def hints_digest(hints: Iterable[Hint]) -> str:
    """Stable text digest of a hint list (order matters: later hints overwrite earlier)."""
    return repr([h.key() for h in hints])


# ----------------------------------------------------------------------------- converters


def hints_from_points(
    coords: Any, colors: Any, size: float | Sequence[float] | None = None
) -> list[Hint]:
    """Hints from napari Points data.

    Args:
        coords: ``(N, 2)`` (row, col) positions; for ``(N, D)`` data from an n-D
            viewer, the last two columns are used.
        colors: ``(N, 3)`` or ``(N, 4)`` face colours as floats in ``[0, 1]``
            (alpha is ignored).
        size: Patch side in image pixels: one value, one per point, or ``None``.

    Returns:
        One hint per point.
    """
    pts = np.asarray(coords, dtype=np.float64)
    cols = np.asarray(colors, dtype=np.float64)
    if pts.size == 0:
        return []
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise ValueError(f"coords must be (N, 2), got shape {pts.shape}")
    if cols.ndim == 1:
        cols = np.broadcast_to(cols, (len(pts), cols.shape[0]))
    if cols.shape[0] != len(pts) or cols.shape[1] not in (3, 4):
        raise ValueError(f"colors must be (N, 3|4) for N={len(pts)} points, got {cols.shape}")
    if cols.min() < 0.0 or cols.max() > 1.0:
        raise ValueError("colors must be floats in [0, 1]")
    sizes = np.broadcast_to(np.asarray(size if size is not None else np.nan, float), (len(pts),))
    return [
        Hint(
            float(p[-2]),
            float(p[-1]),
            color=tuple(float(x) for x in c[:3]),  # type: ignore[arg-type]
            size=None if not np.isfinite(s) else max(1.0, float(s)),
        )
        for p, c, s in zip(pts, cols, sizes, strict=True)
    ]


def hints_from_rgba(rgba: Any, *, min_alpha: int = 1) -> list[Hint]:
    """Hints from a painted RGBA layer: one hint per connected opaque blob.

    Pixels with alpha ``>= min_alpha`` are hint pixels; 8-connected blobs of
    them become one hint each, centred on the blob's centroid, with the blob's
    mean colour and a patch side of ``sqrt(area)`` (at least 1).

    Args:
        rgba: ``(H, W, 4)`` uint8 layer (GIMP's colour-mask layer).
        min_alpha: Opacity threshold (1..255).

    Returns:
        The hints, in blob label order (row-major by first pixel).
    """
    from scipy import ndimage

    a = np.asarray(rgba)
    if a.ndim != 3 or a.shape[-1] != 4:
        raise ValueError(f"rgba must be (H, W, 4), got shape {a.shape}")
    if a.dtype != np.uint8:
        raise TypeError(f"rgba must be uint8, got {a.dtype}")
    mask = a[..., 3] >= min_alpha
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    area = ndimage.sum_labels(mask, labels, idx)
    rr, cc = np.nonzero(mask)
    lab = labels[rr, cc]
    rows = np.bincount(lab, rr, n + 1)[1:] / area
    cols = np.bincount(lab, cc, n + 1)[1:] / area
    means = [
        np.bincount(lab, a[rr, cc, ch].astype(np.float64), n + 1)[1:] / area for ch in range(3)
    ]
    return [
        Hint(
            float(rows[i]),
            float(cols[i]),
            color=(
                float(means[0][i]) / 255.0,
                float(means[1][i]) / 255.0,
                float(means[2][i]) / 255.0,
            ),
            size=max(1.0, math.sqrt(float(area[i]))),
        )
        for i in range(n)
    ]


#: Most hints a hints file may give: as many as a bridge request (``DEFAULT_MAX_HINTS`` of
#: :mod:`tinct.bridge.wire`, which imports nothing of tinct; a test holds the two equal).
MAX_FILE_HINTS = 2048
#: Largest hints file read (bytes): twice a file of MAX_FILE_HINTS hints written with
#: every digit and JSON indentation (~480 KiB). Parsed JSON costs ~20 times its text.
MAX_HINTS_FILE_BYTES = 2**20


def read_hints_file(path: str | Path) -> list[Hint]:
    """Read hints from a CSV or JSON file.

    CSV: one hint per line. A header line names the columns (``row``, ``col``,
    ``r``, ``g``, ``b`` and optionally ``size``, in any order; ``y``/``x`` are
    accepted for ``row``/``col``); without a header the columns are ``row,
    col, r, g, b[, size]``. Colours are ``0..255`` (or floats in ``[0, 1]``);
    lines starting with ``#`` are comments. JSON: a list of such rows, or of
    objects ``{"row":, "col":, "color": [r, g, b] | "r":, "g":, "b":, "ab":
    [a, b], "size":}``.

    Args:
        path: ``.csv`` or ``.json`` file.

    Returns:
        The hints (at least one, at most :data:`MAX_FILE_HINTS`).

    The file is UTF-8 (a byte-order mark is accepted), a regular file (a FIFO or a
    device is refused, never waited on: :func:`~tinct.engine.filelimits.open_regular`)
    and at most :data:`MAX_HINTS_FILE_BYTES` long (checked before it is read).

    Raises:
        FileNotFoundError: No such file.
        OSError: Not a regular file, or unreadable.
        ValueError: No hints or more than :data:`MAX_FILE_HINTS`, an unknown or missing
            column, a malformed row (the message gives its number), JSON nested too
            deeply, or a file larger than :data:`MAX_HINTS_FILE_BYTES`.
    """
    path = Path(path)
    limit = MAX_HINTS_FILE_BYTES
    with open_regular(path) as fh:  # a FIFO would block the read for ever: refused
        size = os.fstat(fh.fileno()).st_size
        raw = fh.read(limit + 1) if size <= limit else b""  # it may grow meanwhile
    if size > limit or len(raw) > limit:
        raise ValueError(
            f"{path} is {max(size, len(raw)):,} bytes, more than a hints file may have "
            f"({limit:,} bytes, {limit // 2**20} MiB)"
        )
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Excel's CSV) is dropped
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not UTF-8 text (byte {exc.start:,} is 0x{raw[exc.start]:02x}); "
            "a hints file is CSV or JSON text in UTF-8"
        ) from None
    rows: list[Any]
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        except RecursionError:
            raise ValueError(f"{path}: the JSON is nested too deeply to be a hints file") from None
        except ValueError:  # Python's limit on the digits of an integer (4300)
            raise ValueError(f"{path}: a number in the JSON has too many digits") from None
        rows = data.get("hints", data) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of hints")
    else:
        try:
            rows = [
                [x.strip() for x in r]
                for r in csv.reader(
                    line for line in text.splitlines() if not line.lstrip().startswith("#")
                )
                if r and any(x.strip() for x in r)
            ]
        except csv.Error as exc:  # e.g. a value longer than the csv module's field limit
            raise ValueError(f"{path}: not a readable CSV file ({exc})") from None
        if rows and not _is_number(rows[0][0]):
            columns = _csv_columns(rows[0], path)
            rows = [dict(zip(columns, r, strict=False)) for r in rows[1:]]
            for i, r in enumerate(rows, 1):
                if any(c not in r for c in ("row", "col", "r", "g", "b")):
                    raise ValueError(f"{path}: hint {i} has fewer values than the header")
    if not rows:
        raise ValueError(f"{path}: no hints in the file")
    if len(rows) > MAX_FILE_HINTS:
        raise ValueError(
            f"{path}: {len(rows):,} hints, more than a hints file may give ({MAX_FILE_HINTS})"
        )
    hints = []
    for i, r in enumerate(rows, 1):
        try:
            hints.append(_hint_from_row(r))
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: hint {i} ({_shown(r)}) is invalid: {exc}") from None
    return hints


#: CSV header names and the hint fields they mean.
_CSV_NAMES = {
    "row": "row", "y": "row", "col": "col", "column": "col", "x": "col",
    "r": "r", "red": "r", "g": "g", "green": "g", "b": "b", "blue": "b", "size": "size",
}  # fmt: skip


def _csv_columns(header: list[str], path: Path) -> list[str]:
    """Hint field of each CSV column, from its header (raises for unknown/missing ones)."""
    cols = []
    for name in header:
        key = _CSV_NAMES.get(name.strip().lower())
        if key is None:
            raise ValueError(
                f"{path}: unknown column {name.strip()!r} in the header; "
                "use row, col, r, g, b[, size]"
            )
        cols.append(key)
    missing = [c for c in ("row", "col", "r", "g", "b") if c not in cols]
    if missing:
        raise ValueError(f"{path}: the header lacks column(s) {', '.join(missing)}")
    return cols


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _num(x: Any) -> float | int:
    if isinstance(x, str):
        f = float(x)
        return int(f) if f.is_integer() and "." not in x else f
    if isinstance(x, bool):
        raise TypeError("not a number")
    return x


def _hint_from_row(r: Any) -> Hint:
    if isinstance(r, dict):
        missing = [k for k in ("row", "col") if k not in r]
        if not missing and "ab" not in r and "color" not in r:
            missing = [k for k in ("r", "g", "b") if k not in r]
        if missing:
            raise ValueError(f"it has no {', '.join(missing)}")
        size = r.get("size")
        size = None if size in (None, "") else _num(size)
        if "ab" in r:
            return Hint(_num(r["row"]), _num(r["col"]), ab=_listed(r["ab"], "ab"), size=size)
        c = _listed(r["color"], "color") if "color" in r else (r["r"], r["g"], r["b"])
        return Hint(_num(r["row"]), _num(r["col"]), color=tuple(_num(x) for x in c), size=size)  # type: ignore[arg-type]
    if not isinstance(r, (list, tuple)):
        raise ValueError('a hint is an object {"row":, "col":, "color": [r, g, b]} or a list')
    vals = [_num(x) for x in r]
    if len(vals) not in (5, 6):
        raise ValueError("expected row, col, r, g, b[, size]")
    return Hint(vals[0], vals[1], color=tuple(vals[2:5]), size=vals[5] if len(vals) == 6 else None)  # type: ignore[arg-type]


def _listed(value: Any, what: str) -> tuple[Any, ...]:
    """A JSON list as a tuple; anything else is a :class:`ValueError` naming ``what``."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list of numbers, got {_shown(value)}")
    return tuple(value)


# ----------------------------------------------------------------------------- rasterisation
