"""Colorization with Dask: lazy arrays larger than memory, Zarr stores, per-worker models.

:func:`colorize_dask` turns a Dask array of gray planes into a lazy Dask RGB
array. Nothing runs until the result is computed (or written with
:func:`colorize_zarr`), and every task reuses one :class:`~tinct.engine.colorizer.Colorizer`
per process (:func:`worker_colorizer`), so a worker loads the model once, not
once per chunk. The same per-process cache serves ``tinct batch``
(:mod:`tinct.scale.batch`).

Two layouts:

* **Stacks** ``(..., H, W)`` whose planes fit in one block (``H * W <= block**2``):
  the last two axes are rechunked to whole planes and each chunk is colorized
  plane by plane with :func:`dask.array.map_blocks`. The result equals
  :meth:`Colorizer.colorize` on the whole stack (up to float rounding of the
  network, see ``docs/scaling.md``), because planes are independent.
* **Huge planes** (``H * W > block**2``): planes are cut into ``block x block``
  blocks that are colorized with ``overlap`` pixels of context on every side;
  the halo is then cropped away. This is *not* the same computation as a
  whole-image pass: each block's network only sees its block plus halo (the
  global colour context of the whole plane is lost) and the network input of a
  block is the block resized to the model's input size. The overlap hides
  seams by giving pixels near a block border the same surroundings they have
  in the full image, so the two sides of a border are predicted from almost
  the same context; a colour decision that depends on distant structure can
  still differ from block to block. Larger ``block`` and ``overlap`` mean
  fewer, less visible seams at the cost of memory per task.

Intensity normalisation is global: when ``normalize`` resolves to
``"percentile"`` the intensity range of the *whole* array is computed first
(one pass over a strided subsample, as the engine does for big arrays), so
every chunk maps intensities exactly as a whole-array call would.

Dask and Zarr are optional dependencies (``pip install tinct[distributed]``);
they are imported only when these functions run.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinct.engine.hints import Hint
from tinct.scale.workers import worker_colorizer

if TYPE_CHECKING:
    import dask.array as da

    from tinct.engine.options import ColorizeOptions

__all__ = ["DEFAULT_BLOCK", "colorize_dask", "colorize_zarr", "estimate_bytes", "should_use_dask"]

#: Side of the square blocks huge planes are cut into (planes up to
#: ``DEFAULT_BLOCK**2`` pixels are colorized whole).
DEFAULT_BLOCK = 4096
#: Bytes of working memory an eager :meth:`Colorizer.colorize` needs per pixel
#: on top of the input and output arrays (float32 gray, working-grid upsampling
#: buffers and the affine coefficients; measured generously).
WORK_BYTES_PER_PIXEL = 24
#: Samples used to estimate the intensity range (the engine uses the same count).
RANGE_SAMPLES = 4_000_000

# ----------------------------------------------------------------------------- memory


def estimate_bytes(shape: Sequence[int], dtype: Any, *, rgb: bool = False) -> int:
    """Peak memory (bytes) of an eager :meth:`Colorizer.colorize` on an array.

    A rough upper bound: input + output (uint8 RGB for uint8 input, float32
    RGB otherwise) + :data:`WORK_BYTES_PER_PIXEL` per pixel. The network pass
    itself works at the model's input size and is not counted.

    Args:
        shape: Array shape ``(..., H, W)`` (or ``(..., H, W, C)`` with ``rgb``).
        dtype: Array dtype.
        rgb: The last axis holds colour channels.

    Returns:
        Estimated bytes.
    """
    dt = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    channels = shape[-1] if rgb else 1
    pixels = math.prod(shape[:-1] if rgb else shape)
    out_item = 1 if dt == np.uint8 else 4
    return pixels * (channels * dt.itemsize + 3 * out_item + WORK_BYTES_PER_PIXEL)


def _memory_budget() -> int:
    """A quarter of the physical memory (1 GiB when it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 1 << 30
    return max(1 << 28, int(total) // 4)


def should_use_dask(
    shape: Sequence[int], dtype: Any, budget_bytes: int | None = None, *, rgb: bool = False
) -> bool:
    """Whether an eager colorization of this array would exceed a memory budget.

    Front ends (the napari widget) call this to decide between
    :meth:`Colorizer.colorize` and :func:`colorize_dask`. Only the size
    matters here; an input that is already a Dask array can go to
    :func:`colorize_dask` whatever its size.

    Args:
        shape: Array shape.
        dtype: Array dtype.
        budget_bytes: Memory allowed for the eager call; ``None`` = a quarter
            of the machine's physical memory.
        rgb: The last axis holds colour channels.

    Returns:
        ``True`` when :func:`estimate_bytes` exceeds the budget.
    """
    budget = _memory_budget() if budget_bytes is None else int(budget_bytes)
    return estimate_bytes(shape, dtype, rgb=rgb) > budget


# ----------------------------------------------------------------------------- per-process model


# ----------------------------------------------------------------------------- dask arrays


@dataclasses.dataclass(frozen=True)
class _Job:
    """What every block task needs (small and picklable)."""

    model: str
    device: str
    precision: str
    pretrained: bool
    options: ColorizeOptions
    hints: tuple[Hint, ...]
    lo: float | None  # global intensity range (None: let the engine map it)
    hi: float | None
    threads: int | None

    def colorize(self, block: np.ndarray, hints: Sequence[Hint]) -> np.ndarray:
        c = worker_colorizer(
            self.model, self.device, self.precision, pretrained=self.pretrained,
            threads=self.threads,
        )  # fmt: skip
        opts = self.options
        if self.lo is not None and self.hi is not None:
            block = _normalise(block, self.lo, self.hi)
            opts = dataclasses.replace(opts, normalize="dtype", intensity_range=None)
        return c.colorize(block, hints=list(hints), options=opts, rgb=False)


def _normalise(block: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``[lo, hi]`` to ``[0, 1]`` in float32 as :func:`tinct.engine.inputs.prepare` does."""
    scale = np.float32(1.0 / (hi - lo))
    x = (block.astype(np.float32) - np.float32(lo)) * scale
    return np.clip(x, 0.0, 1.0, out=x)


def _global_range(array: da.Array, opts: ColorizeOptions) -> tuple[float | None, float | None]:
    """The intensity range of the whole array when it needs a data pass, else ``(None, None)``."""
    import dask

    from tinct.engine.inputs import normalization_mode

    if opts.intensity_range is not None:
        return float(opts.intensity_range[0]), float(opts.intensity_range[1])
    if normalization_mode(array.dtype, opts.normalize) == "dtype":
        return None, None
    step = max(1, math.ceil(array.size / RANGE_SAMPLES))
    # a strided subsample across planes and pixels (exact when the array is small)
    if step == 1:
        sample = array.reshape(-1)
    else:
        per_axis = max(1, round(step ** (1.0 / array.ndim)))
        sample = array[tuple(slice(None, None, per_axis) for _ in range(array.ndim))].reshape(-1)
    (values,) = dask.compute(sample)
    from tinct.engine.inputs import _range

    lo, hi = _range(np.asarray(values), "percentile", opts.percentiles)
    return lo, hi


def _plane_task(block: np.ndarray, job: _Job) -> np.ndarray:
    return job.colorize(block, job.hints)


def _halo_task(
    block: np.ndarray,
    job: _Job,
    starts: tuple[tuple[int, ...], tuple[int, ...]],
    sizes: tuple[tuple[int, ...], tuple[int, ...]],
    depth: int,
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    """Colorize one block with its halo and crop the halo off."""
    iy, ix = block_info[0]["chunk-location"][-2:] if block_info else (0, 0)
    top = depth if iy > 0 else 0
    left = depth if ix > 0 else 0
    r0 = starts[0][iy] - top
    c0 = starts[1][ix] - left
    H, W = block.shape[-2:]
    hints = [
        dataclasses.replace(h, row=h.row - r0, col=h.col - c0)
        for h in job.hints
        if 0 <= h.row - r0 < H and 0 <= h.col - c0 < W
    ]
    out = job.colorize(block, hints)
    h, w = sizes[0][iy], sizes[1][ix]
    return out[..., top : top + h, left : left + w, :]


def colorize_dask(
    array: Any,
    *,
    model: str | Path = "tinct-base",
    hints: Sequence[Hint] = (),
    temperature: float | None = None,
    decoder: str | None = None,
    mrf_weight: float | None = None,
    mrf_iters: int | None = None,
    tile: int | None = None,
    normalize: str = "auto",
    percentiles: tuple[float, float] = (0.5, 99.5),
    device: str = "auto",
    precision: str = "auto",
    pretrained: bool = True,
    options: ColorizeOptions | None = None,
    block: int = DEFAULT_BLOCK,
    overlap: int | None = None,
    threads: int | None = None,
) -> da.Array:
    """Lazily colorize a Dask (or NumPy) array of gray planes.

    Args:
        array: ``(..., H, W)`` gray planes; a NumPy array is wrapped with
            :func:`dask.array.from_array`. Any integer or float dtype.
        model: Registry name or ``.safetensors`` path; loaded once per worker
            process (the path must be readable by every worker).
        hints: Colour hints in plane pixel coordinates, applied to every plane
            (for huge planes each block receives the hints inside it).
        temperature: Decoder temperature; ``None`` = model default.
        decoder: Decoder name; ``None`` = model default.
        mrf_weight: MRF smoothing strength (0 = off); ``None`` = model default.
        mrf_iters: MRF iterations.
        tile: Engine tiling inside each block (see :class:`ColorizeOptions`).
        normalize: ``"auto"``, ``"dtype"`` or ``"percentile"``; a percentile
            range is computed over the whole array (this reads the data once
            when the function is called).
        percentiles: ``(low, high)`` for percentile normalisation.
        device: Device on the workers (``"auto"``: CUDA > MPS > CPU).
        precision: Network precision.
        pretrained: Load trained weights (``False``: random weights, tests).
        options: Base options; the keyword arguments above that differ from
            their defaults override it.
        block: Planes with at most ``block**2`` pixels are colorized whole;
            larger planes are cut into ``block x block`` blocks.
        overlap: Halo of the blocks in pixels (huge planes only); ``None`` =
            ``block // 4`` (at least 64). Must be smaller than ``block``.
        threads: Torch threads per worker process (``None``: leave as is).

    Returns:
        A lazy ``(..., H, W, 3)`` Dask array: uint8 for uint8 input, float32 in
        ``[0, 1]`` otherwise. Chunks: the input's leading-axis chunks, whole
        planes (or blocks) on the last two axes and 3 channels.

    Raises:
        ValueError: Fewer than two dimensions, a last axis of 3 or 4 (RGB(A)
            input is not supported), bad options, or an overlap not smaller
            than the block.
        TypeError: A non-numeric or bool dtype.
    """
    import dask.array as da

    from tinct.engine.options import ColorizeOptions

    x = array if isinstance(array, da.Array) else da.from_array(np.asarray(array))
    if x.ndim < 2:
        raise ValueError(f"colorize_dask needs (..., H, W) planes, got shape {x.shape}")
    if x.ndim >= 3 and x.shape[-1] in (3, 4):
        raise ValueError(
            f"shape {x.shape} looks like RGB(A) planes; colorize_dask takes gray planes "
            "(..., H, W): convert first (e.g. array.mean(axis=-1))"
        )
    dt = np.dtype(x.dtype)
    if not (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)) or dt.kind == "b":
        raise TypeError(f"image dtype {dt} is not supported (use integers or floats)")
    base = options or ColorizeOptions()
    given = {
        "temperature": temperature, "decoder": decoder, "mrf_weight": mrf_weight,
        "mrf_iters": mrf_iters, "tile": tile,
        "normalize": None if normalize == "auto" else normalize,
        "percentiles": None if tuple(percentiles) == (0.5, 99.5) else tuple(percentiles),
        "device": None if device == "auto" else device,
        "precision": None if precision == "auto" else precision,
    }  # fmt: skip
    opts = base.replace(**{k: v for k, v in given.items() if v is not None})
    model_name = str(model) if options is None or model != "tinct-base" else base.model
    lo, hi = _global_range(x, opts)
    job = _Job(
        model_name, opts.device, opts.precision, bool(pretrained), opts,
        tuple(hints), lo, hi, threads,
    )  # fmt: skip
    out_dtype = np.uint8 if dt == np.uint8 else np.float32
    height, width = x.shape[-2:]
    nd = x.ndim
    if height * width <= block * block:
        x = x.rechunk({nd - 2: height, nd - 1: width})
        return x.map_blocks(
            _plane_task, job, dtype=out_dtype, chunks=(*x.chunks, (3,)), new_axis=nd,
            meta=np.empty((0,) * (nd + 1), out_dtype),
        )  # fmt: skip
    depth = max(64, block // 4) if overlap is None else int(overlap)
    if not 0 <= depth < block:
        raise ValueError(f"overlap must be in [0, block), got {depth} for block {block}")
    x = x.rechunk({nd - 2: block, nd - 1: block})
    cy, cx = x.chunks[-2:]
    if min(cy) < depth or min(cx) < depth:  # the last block is thinner than the halo
        x = x.rechunk(
            {nd - 2: _even_chunks(height, block, depth), nd - 1: _even_chunks(width, block, depth)}
        )
        cy, cx = x.chunks[-2:]
    starts = (tuple(np.cumsum((0, *cy[:-1])).tolist()), tuple(np.cumsum((0, *cx[:-1])).tolist()))
    padded = da.overlap.overlap(x, depth={nd - 2: depth, nd - 1: depth}, boundary="none")
    return padded.map_blocks(
        _halo_task, job, starts, (cy, cx), depth, dtype=out_dtype, chunks=(*x.chunks, (3,)),
        new_axis=nd, meta=np.empty((0,) * (nd + 1), out_dtype),
    )  # fmt: skip


def _even_chunks(n: int, block: int, depth: int) -> tuple[int, ...]:
    """Chunk sizes near ``block`` covering ``n`` with every chunk at least ``depth``."""
    k = max(1, math.ceil(n / block))
    while k > 1 and n // k < depth:
        k -= 1
    base, extra = divmod(n, k)
    return tuple(base + (1 if i < extra else 0) for i in range(k))


# ----------------------------------------------------------------------------- zarr


def colorize_zarr(
    src: Any,
    dst: str | Path,
    *,
    component: str | None = None,
    overwrite: bool = False,
    compute: bool = True,
    **kwargs: Any,
) -> Any:
    """Colorize a Zarr array (or any array) into a new Zarr array.

    Reads lazily with :func:`dask.array.from_zarr`, colorizes with
    :func:`colorize_dask` and writes with :func:`dask.array.to_zarr`, so the
    data never has to fit in memory; with a ``dask.distributed`` client
    active, the work runs on its workers.

    Args:
        src: Path/URL of a Zarr array (or group with ``component``), a Zarr
            array, a Dask array or a NumPy array.
        dst: Path/URL of the output Zarr array (``(..., H, W, 3)``).
        component: Array inside a Zarr group, for ``src`` and ``dst``.
        overwrite: Replace an existing ``dst``.
        compute: Write now (``True``) or return the delayed write.
        **kwargs: :func:`colorize_dask` arguments (``model``, ``temperature``, ...).

    Returns:
        ``None`` after writing, or the delayed write when ``compute=False``.

    Raises:
        FileExistsError: ``dst`` holds a Zarr array or group and ``overwrite`` is False.
    """
    import dask.array as da
    from zarr.errors import ContainsArrayError, ContainsGroupError

    if isinstance(src, (str, Path)):
        x = da.from_zarr(str(src), component=component)
    elif isinstance(src, da.Array):
        x = src
    elif type(src).__module__.startswith("zarr"):
        x = da.from_zarr(src)
    else:
        x = da.from_array(np.asarray(src))
    out = colorize_dask(x, **kwargs)
    try:
        return da.to_zarr(out, str(dst), component=component, overwrite=overwrite, compute=compute)
    except (ContainsArrayError, ContainsGroupError):  # zarr says "in store LocalStore(...)"
        where = f"{dst} (component {component!r})" if component else str(dst)
        raise FileExistsError(f"{where} exists; pass overwrite=True to replace it") from None
