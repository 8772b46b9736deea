"""How the napari Colorize widget reads and writes the viewer's layers.

Which layer may be colorized and how it splits into planes; which plane the
viewer shows; where hint points fall in the source image's data coordinates
(through each layer's world transform); the empty hints layer that
**Add hints layer** creates; and the RGB output layer, created with the
source's transform or updated in place plane by plane. Uses napari's layer
model only, no Qt, so it works on a headless ``ViewerModel``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels, Points

from tinct.napari_plugin import logic

if TYPE_CHECKING:
    from collections.abc import Sequence

    from napari.components import ViewerModel

__all__ = [
    "add_hints_layer",
    "full_resolution",
    "hint_groups",
    "reference_plane",
    "shown_plane",
    "source_geometry",
    "stop_points",
    "to_uint8_rgb",
    "transform_of",
    "write_output",
]


def full_resolution(layer: Any) -> Any:
    """A layer's data at full resolution: level 0 of a multiscale (pyramid) layer.

    ``np.asarray`` of napari's multiscale data gives its *smallest* level; every read of
    the pixels to colorize goes through here instead.
    """
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


#: The parts of a layer's data-to-world transform that napari keeps (all of them).
TRANSFORM = ("scale", "translate", "rotate", "shear", "affine")
#: What says which physical axes a layer's world has (napari >= 0.6).
SPACE = ("units", "axis_labels")


def transform_of(layer: Any) -> dict[str, Any]:
    """A layer's whole placement in the world, as keyword arguments of ``add_image``.

    Its data-to-world transform and, where napari has them (>= 0.6), its units and
    axis labels: a layer made without them would be in pixels, and napari then warns
    "Inconsistent units across layers" and stops drawing the scale bar in units.
    """
    out = {}
    for key in TRANSFORM:
        value = getattr(layer, key)
        out[key] = value.affine_matrix if key == "affine" else np.asarray(value)
    for key in SPACE:
        if hasattr(layer, key):
            out[key] = tuple(getattr(layer, key))
    return out


def _same(key: str, a: Any, b: Any) -> bool:
    """Whether two values of one :func:`transform_of` entry agree."""
    return tuple(a) == tuple(b) if key in SPACE else bool(np.allclose(a, b))


def source_geometry(layer: Any) -> logic.PlaneGeometry:
    """Check that a layer can be colorized and split its shape into planes.

    Args:
        layer: The chosen layer, or ``None``.

    Returns:
        The layer's plane geometry.

    Raises:
        ValueError: No layer, not an image layer, or an image that cannot be
            colorized (see :func:`tinct.napari_plugin.logic.validate_image`).
    """
    if layer is None:
        raise ValueError("choose an image layer to colorize")
    if isinstance(layer, Labels) or not isinstance(layer, Image):
        raise ValueError(
            f"layer {layer.name!r} is a {type(layer).__name__} layer; choose an image layer"
        )
    data = full_resolution(layer)
    shape = tuple(data.shape)
    logic.validate_image(shape, layer.rgb, getattr(data, "dtype", None))
    return logic.plane_geometry(shape, layer.rgb)


def shown_plane(
    layer: Image, world_point: Sequence[float], leading: Sequence[int]
) -> tuple[int, ...]:
    """The index of the layer's plane that the viewer shows at ``world_point``.

    Args:
        layer: An image layer.
        world_point: The viewer's current point (``viewer.dims.point``).
        leading: The layer's leading (non-plane) axis sizes.
    """
    data_point = layer.world_to_data(world_point[-layer.ndim :])
    return logic.current_plane(data_point, leading)


def reference_plane(layer: Image, world_point: Sequence[float]) -> np.ndarray:
    """The reference image: the layer's plane that the viewer shows, as an array."""
    data = full_resolution(layer)
    geometry = logic.plane_geometry(data.shape, layer.rgb)
    idx = shown_plane(layer, world_point, geometry.leading)
    return np.asarray(data[idx] if idx else data)


def hint_groups(
    points: Points | None, source: Image, geometry: logic.PlaneGeometry
) -> dict[tuple[int, ...], logic.PlaneHints]:
    """Hint points in the source's data coordinates, grouped by plane.

    Args:
        points: The hints layer (each point's face colour is its hint's colour), or ``None``.
        source: The image layer being colorized.
        geometry: The source's plane geometry.

    Returns:
        The hints of each plane (see :func:`tinct.napari_plugin.logic.group_hints_by_plane`).
        A 2-D points layer over a stack applies its points to every plane.
    """
    if points is None or len(points.data) == 0:
        return {}
    ndim = len(geometry.leading) + 2
    coords = np.full((len(points.data), ndim), np.nan)
    for i, p in enumerate(np.asarray(points.data)):
        world = np.asarray(points.data_to_world(p), dtype=float)
        if len(world) >= ndim:
            coords[i] = source.world_to_data(world[-ndim:])[-ndim:]
        else:  # a 2-D points layer over a stack: its points apply to every plane
            full = np.zeros(ndim)
            full[-len(world) :] = world
            coords[i, -len(world) :] = np.asarray(source.world_to_data(full))[-len(world) :]
    return logic.group_hints_by_plane(coords, np.asarray(points.face_color), geometry)


def stop_points(points: Points | None) -> frozenset[int]:
    """Indices of the hint points drawn with the cross symbol (``"x"``): stops, not colours.

    Under temporal mode such a point ends the hints carried onto its spot from
    its plane on (:class:`tinct.engine.carry.HintStop`).
    """
    if points is None or len(points.data) == 0:
        return frozenset()
    symbols = np.atleast_1d(np.asarray(points.symbol, dtype=object))
    if symbols.size == 1:
        symbols = np.repeat(symbols, len(points.data))
    return frozenset(i for i, s in enumerate(symbols) if str(getattr(s, "value", s)) == "x")


def add_hints_layer(viewer: ViewerModel, image: Image | None) -> Points:
    """Add an empty hints Points layer in add mode, over ``image`` (same transform).

    Returns:
        The new layer; red is the colour of the next point.
    """
    ndim = image.ndim if image is not None else 2
    kwargs: dict[str, Any] = {}
    if image is not None:
        kwargs = transform_of(image)
    layer = viewer.add_points(
        np.empty((0, ndim)),
        ndim=ndim,
        name="hints",
        face_color="red",
        border_color="white",
        border_width=0.15,
        size=max(8.0, min(full_resolution(image).shape[-2:]) / 40) if image is not None else 10.0,
        **kwargs,
    )
    layer.current_face_color = "red"
    layer.mode = "add"
    return layer


def write_output(
    viewer: ViewerModel,
    source: Image,
    shape: tuple[int, ...],
    idx: tuple[int, ...],
    rgb: np.ndarray,
    hints: Points | None = None,
    model: str | None = None,
) -> Image:
    """Write one colorized plane into the source's output layer.

    The layer is named after the source and the model that made the colour
    (:func:`tinct.napari_plugin.logic.output_layer_name`), so results of different
    models sit side by side and none passes for a measurement.
    An existing RGB uint8 layer of the right shape is updated in place; otherwise
    a new one replaces it, and the hints layer (if given) is kept above it and active.
    Either way the layer gets the source's whole transform (scale, translate, rotate,
    shear, affine) and its units and axis labels as they are now, so it stays on the
    source when that moved.

    Args:
        viewer: The viewer (model).
        source: The colorized image layer.
        shape: The output layer's full shape, ``(..., H, W, 3)``.
        idx: The plane's index (``()`` for a single plane).
        rgb: The engine's output for the plane (see :func:`to_uint8_rgb`).
        hints: The widget's hints layer.
        model: The model's name (or weights file) for the layer name.

    Returns:
        The output layer.
    """
    rgb = to_uint8_rgb(rgb)
    name = logic.output_layer_name(source.name, model)
    layers = viewer.layers
    layer = next((lyr for lyr in layers if lyr.name == name), None)
    ok = (
        isinstance(layer, Image)
        and layer.rgb
        and layer.data.shape == shape
        and layer.data.dtype == np.uint8
    )
    if ok and idx:
        layer.data[idx] = rgb  # type: ignore[union-attr]
        layer.refresh()  # type: ignore[union-attr]
    elif ok:
        layer.data = rgb  # type: ignore[union-attr]
    else:
        data = rgb
        if idx:
            data = np.zeros(shape, np.uint8)
            data[idx] = rgb
        if layer is not None:
            viewer.layers.remove(layer)
        layer = viewer.add_image(data, name=name, rgb=True, **transform_of(source))
        if hints is not None and hints in viewer.layers:  # keep hints on top, active
            layers = viewer.layers
            layers.move(layers.index(layer), layers.index(hints))
            layers.selection.active = hints
    if ok:  # follow the source, touching only what moved (each set refreshes the layer)
        now = transform_of(layer)
        for key, value in transform_of(source).items():
            if not _same(key, now[key], value):
                setattr(layer, key, value)
    return layer


def to_uint8_rgb(rgb: np.ndarray) -> np.ndarray:
    """Engine output (uint8 or float in [0, 1], RGB or RGBA) as ``(H, W, 3)`` uint8."""
    rgb = np.asarray(rgb)[..., :3]
    if rgb.dtype == np.uint8:
        return rgb
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
