"""Pure logic behind the napari Colorize widget (no Qt, no napari, no torch).

Everything the widget decides that can be decided from plain values lives
here so it is testable without a display: which models to offer and how to
label them, which controls a model enables, whether a layer can be
colorized, how n-D data splits into planes, how hint points group by plane,
which parameter changes only need a re-decode, and how a colour swatch is
styled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DECODE_ONLY_PARAMS",
    "DEVICES",
    "MIN_SIDE",
    "NORMALIZATIONS",
    "ModelChoice",
    "PlaneGeometry",
    "PlaneHints",
    "current_plane",
    "decoder_choices",
    "group_hints_by_plane",
    "iter_plane_indices",
    "model_choices",
    "model_label",
    "normalization_options",
    "output_layer_name",
    "plane_geometry",
    "swatch_stylesheet",
    "validate_image",
]

#: Devices offered in the widget (the engine resolves ``"auto"``).
DEVICES = ("auto", "cpu", "cuda", "mps")
#: Smallest image side the widget accepts, in pixels.
MIN_SIDE = 8
#: Widget parameters whose change only needs a re-decode of the cached network output.
DECODE_ONLY_PARAMS = frozenset({"temperature", "decoder", "mrf_weight", "mrf_iters"})
#: Weight states that mean "the model can run now without a download".
_READY = ("bundled", "downloaded", "built in", "user")


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the widget's model list.

    Attributes:
        name: Registry key passed to the engine.
        label: Text shown in the combo box (display name plus weight state).
        status: Weight state from :func:`tinct.models.weights_status`.
        hints: The model uses local hint points.
        global_hint: The model uses a reference image (global hint).
        distribution: The model predicts a bin distribution, so temperature,
            the distribution decoders and the MRF apply.
        regression: The model has a regression (``ab``) head.
        default_temperature: Temperature the model's record suggests.
        default_decoder: Decoder the model's record suggests.
        available: The model can run (its weights are here, downloadable or
            not needed); a model without trained weights cannot be run.
        reason: Why it cannot run, in words for a napari user.
        config: The record's :class:`~tinct.models.registry.ModelConfig` (for
            :func:`tinct.models.catalog.inactive_knobs`).
        source: A ``.safetensors`` file loaded in the widget (``None`` for registry models).
        fusion: The model fuses hints with a learned gate
            (:func:`tinct.models.catalog.fuses_hints`), so "local hints" acts on it.
    """

    name: str
    label: str
    status: str
    hints: bool
    global_hint: bool
    distribution: bool
    regression: bool
    default_temperature: float
    default_decoder: str
    available: bool = True
    reason: str = ""
    config: Any = None
    source: str | None = None
    fusion: bool = False

    @property
    def ready(self) -> bool:
        """The weights are on this machine (or none are needed)."""
        return self.status in _READY

    @property
    def downloadable(self) -> bool:
        """Running the model first needs a download."""
        return self.status == "downloadable"


def model_choices(
    records: Iterable[Any], status_of: Callable[[Any], str] | None = None
) -> list[ModelChoice]:
    """Turn registry records into widget choices.

    Args:
        records: Records (:class:`tinct.models.ModelRecord`: name, display name, config).
        status_of: Function giving a record's weight state; default: a record
            attribute ``status`` if any, else ``"unknown"``.

    Returns:
        One :class:`ModelChoice` per record, in the given order.
    """
    from tinct.models.catalog import fuses_hints

    out = []
    for rec in records:
        cfg = rec.config
        status = status_of(rec) if status_of else str(getattr(rec, "status", "unknown"))
        heads = tuple(getattr(cfg, "heads", ("logits",)))
        missing = status == "train it yourself"
        state = "no weights" if missing else status  # a user model is named once, not twice
        label = f"{rec.name} [user model]" if status == "user" else f"{rec.display_name} [{state}]"
        out.append(
            ModelChoice(
                name=rec.name,
                label=label,
                status=status,
                available=not missing,
                reason=(
                    f"{rec.name} has no trained weights: train them with `tinct train --recipe "
                    f"{rec.name} --data DIR --out RUN`, then choose the .safetensors file it "
                    "writes under 'weights file'"
                    if missing
                    else ""
                ),
                config=cfg,
                hints=bool(getattr(cfg, "hints", False)),
                global_hint=bool(getattr(cfg, "global_hint", False)),
                distribution="logits" in heads,
                regression="ab" in heads,
                default_temperature=float(getattr(cfg, "default_temperature", 0.38)),
                default_decoder=str(getattr(cfg, "default_decoder", "annealed_mean")),
                fusion=fuses_hints(rec),
            )
        )
    return out


def decoder_choices(choice: ModelChoice, decoders: Sequence[str]) -> list[str]:
    """Decoders that apply to a model, its default first.

    Args:
        choice: The selected model.
        decoders: All distribution decoders (:data:`tinct.decode.DECODERS`).

    Returns:
        :data:`AUTO_DECODER` first (the engine picks: the model's default, or
        its hint decoder when hints are given), then the distribution decoders
        when the model has a distribution head, plus ``"ab"`` when it has a
        regression head; the model's default decoder comes right after ``auto``.
    """
    names = list(decoders) if choice.distribution else []
    if choice.regression:
        names.append("ab")
    if choice.default_decoder in names:
        names.remove(choice.default_decoder)
        names.insert(0, choice.default_decoder)
    elif not names:
        names = [choice.default_decoder]
    return [AUTO_DECODER, *names]


#: Decoder choice meaning "let the engine pick" (``decoder=None``).
AUTO_DECODER = "auto"

#: The normalisation box: label, value. ``contrast`` = the layer's contrast limits.
NORMALIZATIONS = (
    ("layer contrast limits", "contrast"),
    ("auto (8-bit as is, else percentiles)", "auto"),
    ("percentiles 0.5-99.5", "percentile"),
    ("full dtype range", "dtype"),
)


def normalization_options(value: str, contrast_limits: Sequence[float] | None) -> dict[str, Any]:
    """The :class:`~tinct.ColorizeOptions` fields for a normalisation box value.

    Args:
        value: A value of :data:`NORMALIZATIONS`.
        contrast_limits: The source layer's ``(low, high)`` contrast limits.

    Returns:
        ``{"normalize": ..., "intensity_range": ...}``; ``"contrast"`` without
        usable limits falls back to ``"auto"``.
    """
    if value == "contrast":
        if contrast_limits is not None:
            lo, hi = (float(v) for v in contrast_limits)
            if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
                return {"normalize": "range", "intensity_range": (lo, hi)}
        return {"normalize": "auto", "intensity_range": None}
    return {"normalize": value, "intensity_range": None}


def decoder_option(value: str) -> str | None:
    """The engine's ``decoder`` argument for a decoder box value (``auto`` -> None)."""
    return None if value == AUTO_DECODER else value


def model_label(model: str) -> str:
    """How a layer name shows a model: its registry name, or a weights file's stem."""
    return Path(model).stem if str(model).endswith((".safetensors", ".pth")) else str(model)


def output_layer_name(source_name: str, model: str | None = None) -> str:
    """Name of the output layer: ``"<name> colorized (<model>)"`` (which model made the colour).

    Without ``model``: ``"<name> colorized"``.
    """
    if not model:
        return f"{source_name} colorized"
    return f"{source_name} colorized ({model_label(model)})"


def validate_image(shape: Sequence[int], rgb: bool, dtype: Any = None) -> None:
    """Check that image data can be colorized; raise with a message for the user otherwise.

    Args:
        shape: Shape of the layer's data.
        rgb: The layer is RGB(A): the last axis holds 3 or 4 channels.
        dtype: The data's dtype (complex and boolean data are refused).

    Raises:
        ValueError: Empty data, a side below :data:`MIN_SIDE` pixels, too few
            dimensions, or an unsupported dtype.
    """
    shape = tuple(int(s) for s in shape)
    spatial = shape[:-1] if rgb else shape
    if len(spatial) < 2:
        raise ValueError(f"need an image with at least 2 dimensions, got shape {shape}")
    if math.prod(shape) == 0:
        raise ValueError(f"the image is empty (shape {shape})")
    h, w = spatial[-2:]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"the image is too small to colorize: {h} x {w} (need >= {MIN_SIDE} px)")
    if rgb and shape[-1] not in (3, 4):
        raise ValueError(f"an RGB layer needs 3 or 4 channels, got {shape[-1]}")
    if dtype is not None:
        kind = np.dtype(dtype).kind
        if kind not in "uif":
            raise ValueError(
                f"cannot colorize {np.dtype(dtype)} data; use an integer or float image"
            )


@dataclass(frozen=True)
class PlaneGeometry:
    """How a layer's data splits into 2-D planes.

    Attributes:
        leading: Shape of the leading (non-spatial) axes, ``()`` for 2-D.
        plane: ``(H, W)`` of each plane.
        channels: 3 or 4 for RGB(A) layers, ``None`` for gray.
    """

    leading: tuple[int, ...]
    plane: tuple[int, int]
    channels: int | None

    @property
    def n_planes(self) -> int:
        """Number of planes (1 for 2-D data)."""
        return math.prod(self.leading)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the RGB output for the whole layer: ``(*leading, H, W, 3)``."""
        return (*self.leading, *self.plane, 3)


def plane_geometry(shape: Sequence[int], rgb: bool) -> PlaneGeometry:
    """Split a layer's data shape into leading axes, plane size and channels.

    Args:
        shape: Data shape, ``(..., H, W)`` gray or ``(..., H, W, C)`` RGB(A).
        rgb: Whether the last axis is colour.

    Returns:
        The :class:`PlaneGeometry`.
    """
    shape = tuple(int(s) for s in shape)
    channels = shape[-1] if rgb else None
    spatial = shape[:-1] if rgb else shape
    return PlaneGeometry(tuple(spatial[:-2]), (spatial[-2], spatial[-1]), channels)


def iter_plane_indices(leading: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """All plane indices of the leading axes in C order (one empty tuple for 2-D data)."""
    yield from np.ndindex(*leading) if leading else iter([()])


def current_plane(point: Sequence[float], leading: Sequence[int]) -> tuple[int, ...]:
    """The plane shown at a viewer position given in the layer's data coordinates.

    Args:
        point: Data coordinates of the viewer's current position (at least
            ``len(leading)`` values; extra trailing values are the plane axes).
        leading: Shape of the leading axes.

    Returns:
        Plane index, each coordinate rounded and clipped into range.
    """
    return tuple(
        int(np.clip(round(float(p)), 0, n - 1)) for p, n in zip(point, leading, strict=False)
    )


@dataclass(frozen=True)
class PlaneHints:
    """Hint points of one plane, in that plane's pixel coordinates.

    Attributes:
        coords: ``(N, 2)`` float (row, col).
        colors: ``(N, 3)`` float RGB in [0, 1].
        index: Positions of these points in the Points layer (for selection).
    """

    coords: np.ndarray
    colors: np.ndarray
    index: np.ndarray


def group_hints_by_plane(
    coords: np.ndarray, colors: np.ndarray, geometry: PlaneGeometry
) -> dict[tuple[int, ...], PlaneHints]:
    """Group hint points (in image data coordinates) by the plane they lie on.

    Args:
        coords: ``(N, D)`` points in the image layer's data coordinates. ``D``
            is the number of spatial axes of the layer (leading + 2). A
            leading coordinate that is NaN means "every plane" (a 2-D points
            layer over a stack).
        colors: ``(N, 3)`` or ``(N, 4)`` RGB(A) float colours in [0, 1];
            alpha is dropped.
        geometry: The image's :class:`PlaneGeometry`.

    Returns:
        ``{plane_index: PlaneHints}`` for planes with at least one point.
        Points outside the image (after rounding to the nearest pixel) are
        dropped.
    """
    coords = np.asarray(coords, dtype=float).reshape(-1, len(geometry.leading) + 2)
    if len(coords) == 0:
        return {}
    colors = np.asarray(colors, dtype=float).reshape(len(coords), -1)[:, :3]
    h, w = geometry.plane
    rows, cols = coords[:, -2], coords[:, -1]
    inside = (rows > -0.5) & (rows < h - 0.5) & (cols > -0.5) & (cols < w - 0.5)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i in np.flatnonzero(inside):
        lead = coords[i, :-2]
        per_axis = []
        for v, n in zip(lead, geometry.leading, strict=True):
            if np.isnan(v):
                per_axis.append(range(n))
            else:
                k = round(float(v))
                per_axis.append(range(k, k + 1) if 0 <= k < n else range(0))
        for plane in np.ndindex(*[len(r) for r in per_axis]) if per_axis else [()]:
            key = tuple(per_axis[a][j] for a, j in enumerate(plane))
            groups.setdefault(key, []).append(int(i))
    return {
        k: PlaneHints(
            coords=np.clip(coords[idx, -2:], 0, [h - 1, w - 1]),
            colors=np.clip(colors[idx], 0.0, 1.0),
            index=np.asarray(idx, dtype=int),
        )
        for k, idx in groups.items()
    }


def swatch_stylesheet(rgb: Sequence[int]) -> str:
    """Qt style sheet for a colour swatch button, with a readable border.

    Args:
        rgb: ``(r, g, b)`` integers in [0, 255].

    Returns:
        A style sheet string setting the background colour.
    """
    r, g, b = (int(np.clip(v, 0, 255)) for v in rgb[:3])
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    border = "#000000" if luma > 140 else "#ffffff"
    return (
        f"QPushButton {{ background-color: rgb({r}, {g}, {b}); border: 1px solid {border}; "
        "min-width: 22px; min-height: 22px; max-width: 22px; max-height: 22px; }"
    )
