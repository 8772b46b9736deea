"""Sample data for the napari plugin: grayscale versions of images bundled with scikit-image.

Every image used here ships inside the scikit-image wheel, so the samples
work offline (``cells3d``, ``human_mitosis`` and ``kidney`` are fetched with
pooch on first use and are therefore avoided). Each function returns a list
of napari layer-data tuples ``(data, metadata, "image")``, with ``uint8``
data except the 12-bit microscopy frame (``uint16``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "gray_uint8",
    "sample_astronomy",
    "sample_microscopy",
    "sample_microscopy_12bit",
    "sample_photo",
    "sample_stack",
]

LayerDataTuple = tuple[np.ndarray, dict[str, Any], str]


def gray_uint8(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luminance of an RGB(A) image as ``uint8``.

    Args:
        rgb: ``(H, W, 3)`` or ``(H, W, 4)`` image, ``uint8`` in [0, 255] or
            float in [0, 1]; a 2-D array is returned as ``uint8`` unchanged in
            value.

    Returns:
        ``(H, W)`` ``uint8`` luminance in [0, 255].
    """
    from skimage.color import rgb2gray
    from skimage.util import img_as_ubyte

    if rgb.ndim == 2:
        return img_as_ubyte(rgb)
    return img_as_ubyte(rgb2gray(rgb[..., :3]))


def _layer(data: np.ndarray, name: str, **meta: Any) -> list[LayerDataTuple]:
    return [(data, {"name": name, **meta}, "image")]


def sample_photo() -> list[LayerDataTuple]:
    """A grayscale photograph: scikit-image's ``coffee`` (400 x 600)."""
    from skimage import data

    return _layer(gray_uint8(data.coffee()), "coffee (gray)")


def sample_microscopy() -> list[LayerDataTuple]:
    """A grayscale microscopy image: scikit-image's ``immunohistochemistry`` (512 x 512).

    The original is a stained tissue section (brown DAB, blue haematoxylin),
    so a colorization can be compared with real stain colours.
    """
    from skimage import data

    return _layer(gray_uint8(data.immunohistochemistry()), "immunohistochemistry (gray)")


def sample_microscopy_12bit() -> list[LayerDataTuple]:
    """A 12-bit camera frame stored as ``uint16``: scikit-image's ``cell`` scaled to 100-4000.

    Microscope cameras write 12-bit values into 16-bit files; scaled by the dtype's
    range (0-65535) such a frame is nearly black. The widget's default normalisation
    (the layer's contrast limits) shows it as napari displays it.
    """
    from skimage import data

    cell = data.cell().astype(np.float64)
    cell = (cell - cell.min()) / (cell.max() - cell.min())
    frame = (100 + cell * 3900).round().astype(np.uint16)
    return _layer(frame, "cell (12-bit in uint16)")


def sample_astronomy() -> list[LayerDataTuple]:
    """A grayscale astronomy image: scikit-image's ``hubble_deep_field`` (872 x 1000)."""
    from skimage import data

    return _layer(gray_uint8(data.hubble_deep_field()), "hubble deep field (gray)")


def sample_stack(planes: int = 5) -> list[LayerDataTuple]:
    """A small ``(Z, 256, 256)`` grayscale stack for trying "whole stack" runs.

    Made from scikit-image's ``astronaut`` at half size, each plane shifted a
    few pixels further to the right, as if a camera panned across the scene.

    Args:
        planes: Number of planes ``Z`` (>= 1).

    Returns:
        One layer-data tuple with a ``(planes, 256, 256)`` ``uint8`` array.
    """
    from skimage import data
    from skimage.transform import rescale

    if planes < 1:
        raise ValueError(f"planes must be >= 1, got {planes}")
    gray = gray_uint8(rescale(data.astronaut(), 0.5, channel_axis=-1, anti_aliasing=True))
    stack = np.stack([np.roll(gray, 8 * z, axis=1) for z in range(planes)])
    return _layer(stack, "astronaut stack (gray)")
