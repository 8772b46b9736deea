"""Input validation, intensity normalisation and image files.

Accepted arrays (row/column order, as scikit-image and napari use):

* ``(H, W)`` gray;
* ``(H, W, 3)`` RGB and ``(H, W, 4)`` RGBA: the luminance is colorized and the
  alpha channel is carried through to the output;
* stacks ``(..., H, W)`` of gray planes and ``(..., H, W, 3|4)`` of RGB(A)
  planes, colorized plane by plane.

**Telling RGB(A) from stacks**: an array with ``ndim >= 3`` whose last axis has
length 3 or 4 is RGB(A); anything else is gray. Pass ``rgb=True``/``False`` to
override (e.g. a stack of 3 gray images of width... 3).

dtypes: unsigned/signed integers and floats of any range; bool, complex and
non-numeric dtypes are rejected. ``uint8`` input gives ``uint8`` output,
everything else ``float32`` in ``[0, 1]``. The input array is never modified.

Normalisation is finite for every finite input: float64 values near the
limits (``±1.8e308``) or subnormal (``1e-310``), constant images of any value
(mid-gray, or the value itself when it lies in ``[0, 1]``) and big-endian data
(normalised exactly as the same values in native order). Blank pixels (NaN or
infinite: outside a telescope's footprint, between the tiles of a stitched
mosaic) take the image's smallest finite value, as FITS blanks do, and a note
says how many; an image without a finite pixel is an error.

Image files are read and written by :mod:`tinct.engine.imagefiles`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tinct import color
from tinct.engine.contrast import contrast_notes, featureless_planes, neutral_if_featureless
from tinct.engine.thread_warnings import collect_warnings

__all__ = [
    "MAX_PIXELS",
    "MAX_SIDE",
    "InputWarning",
    "PreparedImage",
    "contrast_notes",
    "neutral_if_featureless",
    "normalization_mode",
    "prepare",
    "prepare_noted",
    "strips",
]


class InputWarning(UserWarning):
    """An input that colorizes poorly (nearly constant, or nearly black after normalisation)."""


#: Largest accepted image (per plane) and side.
MAX_PIXELS = 2**31
MAX_SIDE = 65536
#: Values the percentiles of ``normalize="percentile"`` (the default for non-8-bit data)
#: are computed from: a regular subsample; 2048² uint16 takes 16 ms instead of 106 ms with
#: 4 M samples, and the same percentiles to within one count of 4000.
PERCENTILE_SAMPLES = 1 << 20
#: Pixels processed at once by full-resolution passes (bounds temporary memory).
STRIP_PIXELS = 1 << 22


def strips(
    height: int, width: int, pixels: int = STRIP_PIXELS, *, multiple: int = 1
) -> Iterator[tuple[int, int]]:
    """Row ranges ``(y0, y1)`` covering an image with about ``pixels`` pixels each.

    Every ``y0`` is a multiple of ``multiple``.
    """
    step = max(multiple, (pixels // max(1, width)) // multiple * multiple)
    for y0 in range(0, height, step):
        yield y0, min(height, y0 + step)


@dataclass
class PreparedImage:
    """A validated input, as the pipeline needs it.

    Attributes:
        gray: ``(B, 1, H, W)`` float32 gray level in ``[0, 1]`` per plane (for RGB
            input: the neutral gray with the same luminance).
        lead_shape: Stack shape in front of ``(H, W)``; ``()`` for one image.
        alpha: ``(B, H, W)`` alpha channel in the output dtype, or ``None``.
        uint8: Output as uint8 (input was uint8).
        is_rgb: Input had colour channels.
        notes: Warnings about the input: blank pixels, and :func:`contrast_notes`
            (added by the engine).
        featureless: ``(B,)`` bool, planes nearly constant after normalisation
            (:func:`~tinct.engine.contrast.featureless_planes`): without hints they
            come back neutral gray. ``None`` until the engine sets it.
    """

    gray: Tensor
    lead_shape: tuple[int, ...]
    alpha: np.ndarray | None
    uint8: bool
    is_rgb: bool
    notes: list[str] = field(default_factory=list)
    featureless: Tensor | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.gray.shape[-2]), int(self.gray.shape[-1])


def _validate(arr: Any, rgb: bool | None) -> tuple[np.ndarray, bool]:
    if isinstance(arr, Tensor):
        arr = arr.detach().cpu().numpy()
    try:
        a = np.asarray(arr)
    except Exception as exc:
        raise TypeError(f"image must be an array, got {type(arr).__name__} ({exc})") from None
    if a.dtype == bool:
        raise TypeError("image dtype bool is not supported: convert to uint8 (0/255) or float")
    if np.issubdtype(a.dtype, np.complexfloating):
        raise TypeError(f"image dtype {a.dtype} is complex; pass a real array (e.g. np.abs(x))")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(f"image dtype {a.dtype} is not numeric")
    if a.ndim < 2:
        raise ValueError(f"image must have at least 2 dimensions (H, W), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"image is empty (shape {a.shape})")
    if rgb is None:
        rgb = a.ndim >= 3 and a.shape[-1] in (3, 4)
    if rgb and (a.ndim < 3 or a.shape[-1] not in (3, 4)):
        raise ValueError(f"rgb=True needs a last axis of length 3 or 4, got shape {a.shape}")
    h, w = a.shape[-3:-1] if rgb else a.shape[-2:]
    if h < 2 or w < 2:
        raise ValueError(f"image must be at least 2x2 pixels, got {h}x{w} (shape {a.shape})")
    if h > MAX_SIDE or w > MAX_SIDE or h * w > MAX_PIXELS:
        raise ValueError(
            f"image of {h}x{w} pixels is too large (max side {MAX_SIDE}, max {MAX_PIXELS} pixels)"
        )
    return a, bool(rgb)


def _blanks(a: np.ndarray) -> tuple[int, float]:
    """How many values of ``a`` are blank (NaN or infinite), and the finite minimum they take.

    Raises:
        ValueError: No value of ``a`` is finite.
    """
    if not np.issubdtype(a.dtype, np.floating):
        return 0, 0.0
    finite = np.isfinite(a)
    n = int(a.size - np.count_nonzero(finite))
    if n == a.size:
        raise ValueError(f"image has no finite pixel (all {n} values are NaN or infinite)")
    return n, float(a[finite].min()) if n else 0.0


def normalization_mode(dtype: Any, normalize: str = "auto") -> str:
    """The normalisation a request gets: the default policy for scientific data.

    ``"auto"`` keeps 8-bit data as it is (``"dtype"``: 0-255 maps to black-white)
    and scales everything else by percentiles: a 12-bit camera frame stored as
    uint16 (values up to 4095 of 65535), astronomy counts and floats of any
    range come out visible instead of nearly black. Other modes are returned
    unchanged.

    Args:
        dtype: The input's dtype.
        normalize: ``"auto"``, ``"dtype"``, ``"percentile"`` or ``"range"``.

    Returns:
        ``"dtype"``, ``"percentile"`` or ``"range"``.
    """
    if normalize != "auto":
        return normalize
    return "dtype" if np.dtype(dtype) == np.uint8 else "percentile"


def _range(a: np.ndarray, mode: str, percentiles: tuple[float, float]) -> tuple[float, float]:
    """The input values that map to 0 and 1 (equal for a constant image)."""
    native = a.dtype.newbyteorder("=")  # big-endian data is the same numbers
    mode = normalization_mode(native, mode)
    if mode == "dtype":
        if np.issubdtype(a.dtype, np.integer):
            info = np.iinfo(native)
            return (0.0, float(info.max)) if info.min == 0 else (float(info.min), float(info.max))
        return 0.0, 1.0
    flat = a.reshape(-1)
    if flat.size > PERCENTILE_SAMPLES:  # a regular subsample is plenty for percentiles
        flat = flat[:: flat.size // PERCENTILE_SAMPLES + 1]
    f = flat.astype(np.float64)
    if not np.isfinite(f).all():  # blank pixels: the finite ones decide
        f = f[np.isfinite(f)]
        if f.size == 0:  # the subsample hit blanks only
            f = a[np.isfinite(a)].astype(np.float64)
    lo_v, hi_v = float(f.min()), float(f.max())
    # percentiles interpolate with differences, which overflow near the float64 limit:
    # take them at 2**-64 scale (exact for all but subnormal values) and scale back
    shrink = max(abs(lo_v), abs(hi_v)) > 2.0**1000
    lo, hi = np.percentile(f * 2.0**-64 if shrink else f, percentiles) * (2.0**64 if shrink else 1)
    if not hi > lo:
        lo, hi = lo_v, hi_v
    return float(lo), float(hi)


def _into_unit(dst: Tensor, chunk: Tensor, lo: float, hi: float) -> None:
    """``dst[...] = clamp((chunk - lo) / (hi - lo), 0, 1)``, finite for every finite input.

    Args:
        dst: float32 output, the shape of ``chunk`` (may be a view of a larger tensor).
        chunk: input values (any real dtype).
        lo: value that maps to 0.
        hi: value that maps to 1; ``hi == lo`` is a constant image, which maps to
            its own value if that lies in ``[0, 1]`` and to 0.5 otherwise.
    """
    if not hi > lo:
        dst.fill_(lo if 0.0 <= lo <= 1.0 else 0.5)
        return
    span = hi - lo
    if chunk.dtype in _EXACT_IN_FLOAT32 and abs(lo) < 2.0**127 and 2.0**-120 < span < 2.0**120:
        dst.copy_(chunk)  # exact; then in place, in float32
        if lo:
            dst.sub_(lo)
        dst.mul_(1.0 / span).clamp_(0.0, 1.0)
        return
    # float64: wide integers, float64 and float32 at extreme ranges (the division by a
    # tiny span is exact where multiplying by its overflowing inverse is not); a copy, as
    # float64 input's .double() is the input itself (a read-only memmap: a segfault)
    x = chunk.to(torch.float64, copy=True)
    if not math.isfinite(span):  # lo and hi near the float64 limit: halve everything
        x.mul_(0.5)
        lo, span = lo * 0.5, hi * 0.5 - lo * 0.5
    dst.copy_(x.sub_(lo).div_(span).clamp_(0.0, 1.0))


def prepare(
    image: Any,
    *,
    space: str = "lab",
    normalize: str = "auto",
    percentiles: tuple[float, float] = (0.5, 99.5),
    rgb: bool | None = None,
    intensity_range: tuple[float, float] | None = None,
) -> PreparedImage:
    """Validate an input array and compute its per-plane gray level.

    Args:
        image: Array-like, see the module docstring for shapes and dtypes.
        space: The model's colour space (decides how RGB input becomes gray).
        normalize: ``"auto"`` (:func:`normalization_mode`), ``"dtype"``,
            ``"percentile"`` or ``"range"``.
        percentiles: ``(low, high)`` for ``"percentile"``.
        intensity_range: ``(low, high)`` values mapped to 0 and 1; when given
            it wins over ``normalize`` (napari's contrast limits).
        rgb: Force (``True``) or forbid (``False``) reading the last axis as
            colour channels; ``None`` applies the rule in the module docstring.

    Returns:
        The prepared image (the input array is not modified).

    Raises:
        TypeError: Unsupported type or dtype.
        ValueError: Bad shape, empty, too small or too large, no finite pixel.
    """
    a, is_rgb = _validate(image, rgb)
    if is_rgb:
        lead, (h, w), c = a.shape[:-3], a.shape[-3:-1], a.shape[-1]
        planes = a.reshape(-1, h, w, c)
        color_part = planes[..., :3]
    else:
        lead, (h, w), c = a.shape[:-2], a.shape[-2:], 1
        planes = a.reshape(-1, h, w)  # type: ignore[assignment]
        color_part = planes
    blank, fill = _blanks(color_part)  # one pass; refuses an image without a finite pixel
    if intensity_range is not None:
        lo, hi = (float(v) for v in intensity_range)
        if not hi > lo:
            raise ValueError(f"intensity_range must be (low, high) with low < high, got {(lo, hi)}")
    elif normalize == "range":
        raise ValueError("normalize='range' needs an intensity_range (low, high)")
    else:
        lo, hi = _range(color_part, normalize, percentiles)
    n = planes.shape[0]
    gray = torch.empty(n, 1, h, w, dtype=torch.float32)
    for i in range(n):
        for y0, y1 in strips(h, w * c):
            chunk = _as_tensor(color_part[i, y0:y1])
            if blank:
                chunk = torch.nan_to_num(chunk, nan=fill, posinf=fill, neginf=fill)
            if is_rgb:
                x = torch.empty(chunk.shape, dtype=torch.float32)
                _into_unit(x, chunk, lo, hi)
                gray[i, 0, y0:y1] = _gray_from_rgb(x.permute(2, 0, 1), space)[0]
            else:  # straight into place
                _into_unit(gray[i, 0, y0:y1], chunk, lo, hi)
    alpha = None
    out_u8 = a.dtype == np.uint8
    if is_rgb and c == 4:
        alpha_in = planes[..., 3]
        if out_u8:
            alpha = alpha_in.copy()
        else:
            alo, ahi = _range(alpha_in, "dtype", percentiles)
            alpha = np.empty(alpha_in.shape, np.float32)
            alpha_t = torch.nan_to_num(_as_tensor(alpha_in), nan=0.0, posinf=ahi, neginf=alo)
            _into_unit(torch.from_numpy(alpha), alpha_t, alo, ahi)
    notes = (
        [f"{blank} blank (NaN or infinite) pixels shown as the image's minimum"] if blank else []
    )
    return PreparedImage(gray, tuple(lead), alpha, out_u8, is_rgb, notes)


#: Input dtypes whose values float32 holds exactly.
_EXACT_IN_FLOAT32 = (
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.uint16,
    torch.float16,
    torch.float32,
)


def _as_tensor(part: np.ndarray) -> Tensor:
    """A tensor reading ``part`` (no copy when it is contiguous; it is never written)."""
    if not part.flags.c_contiguous:
        part = np.ascontiguousarray(part)
    if not part.dtype.isnative:  # e.g. big-endian FITS/TIFF data
        part = part.astype(part.dtype.newbyteorder("="))
    if not part.flags.writeable:
        # torch warns about read-only memory because it could be written through;
        # this tensor is only read (collected and dropped, in this thread only)
        with collect_warnings(UserWarning):
            return torch.from_numpy(part)
    return torch.from_numpy(part)


def _gray_from_rgb(rgb: Tensor, space: str) -> Tensor:
    """``(3, h, w)`` sRGB -> ``(1, h, w)`` neutral gray of equal luminance."""
    if space == "yuv":
        w = torch.tensor((0.299, 0.587, 0.114), dtype=rgb.dtype).view(3, 1, 1)
        return (rgb * w).sum(0, keepdim=True)
    lin = color.srgb_to_linear(rgb)
    m = color.XYZ_FROM_RGB[1]
    y = (lin[0:1] * m[0] + lin[1:2] * m[1] + lin[2:3] * m[2]).clamp_(0.0, 1.0)
    return color.linear_to_srgb(y).clamp_(0.0, 1.0)


def prepare_noted(
    image: Any,
    *,
    space: str,
    normalize: str,
    percentiles: tuple[float, float],
    rgb: bool | None,
    intensity_range: tuple[float, float] | None,
) -> PreparedImage:
    """:func:`prepare`, with :func:`contrast_notes` and ``featureless`` attached."""
    prep = prepare(
        image, space=space, normalize=normalize, percentiles=percentiles, rgb=rgb,
        intensity_range=intensity_range,
    )  # fmt: skip
    mode = "range" if intensity_range else normalization_mode(np.asarray(image).dtype, normalize)
    prep.featureless = featureless_planes(prep.gray)
    prep.notes += contrast_notes(prep.gray, mode, prep.featureless)
    return prep


# ----------------------------------------------------------------------------- files
