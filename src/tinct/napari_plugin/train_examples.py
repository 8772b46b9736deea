"""The colour example layers of the napari Train widget, as the arrays a fine-tune reads.

:func:`example_arrays` takes the RGB image layers picked under **colour examples**
and gives their colour data as :class:`tinct.FineTuneJob` takes it: 8-bit and
[0, 1] float layers as they are, other integer and float layers as they are shown
(through their contrast limits), so 12-bit colour in uint16 is not taken for nearly
black. No Qt here: napari's layer model only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from napari.layers import Image

__all__ = ["example_arrays"]


def example_arrays(layers: list[Image]) -> tuple[list[np.ndarray], list[str]]:
    """The colour data of example layers and their names (one source each).

    A multiscale layer contributes its full-resolution level. An 8-bit layer, and
    floats in [0, 1], are passed as they are, not copied (the job copies what it
    keeps, and never modifies it); other integers and floats are read as they are
    shown: the contrast limits become 0-255, so 12-bit colour in uint16 is not taken
    as nearly black (the job alone scales integers by their type's maximum).

    Raises:
        ValueError: A layer that is not an RGB(A) image layer.
    """
    arrays, names = [], []
    for layer in layers:
        if not getattr(layer, "rgb", False):
            raise ValueError(
                f"layer {layer.name!r} is not a colour (RGB) image: colour examples are needed"
            )
        data = np.asarray(layer.data[0] if getattr(layer, "multiscale", False) else layer.data)
        limits = getattr(layer, "contrast_limits", None)
        if limits is not None and _read_as_shown(data):
            data = _as_shown(data, float(limits[0]), float(limits[1]))
        arrays.append(data)
        names.append(layer.name)
    return arrays, names


def _read_as_shown(data: np.ndarray) -> bool:
    """Whether an example's values need its contrast limits (not 8-bit, not floats in [0, 1])."""
    if data.dtype.kind in "iu":
        return data.dtype != np.uint8
    if data.dtype.kind != "f":
        return False  # refused by the job, with its reason
    finite = data[np.isfinite(data)]
    return finite.size > 0 and (finite.min() < 0.0 or finite.max() > 1.0)


def _as_shown(data: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``data`` mapped from its contrast limits ``lo..hi`` to uint8 0-255 (clipped)."""
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = (data.astype(np.float32) - np.float32(lo)) * np.float32(scale)
    return np.clip(np.round(np.nan_to_num(out)), 0, 255).astype(np.uint8)
