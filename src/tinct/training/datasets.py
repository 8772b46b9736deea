"""Training data: folders of colour images -> batches of L, ab and simulated hints.

Images are decoded once into a uint8 array held in memory (and optionally
cached on disk as ``.npy``), so a training step only does cheap tensor work:
random rescale, crop and flip, conversion to CIELAB, and the SIGGRAPH17 hint
simulation (reference §1.9). Everything is seeded and reproducible.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from tinct.color import rgb_to_lab, rgb_to_luv, rgb_to_yuv

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageBank",
    "file_reason",
    "find_images",
    "held_out_sources",
    "is_near_gray",
    "load_rgb",
    "skipped_message",
    "source_id",
    "split_by_source",
]

_SPACES = {"lab": rgb_to_lab, "luv": rgb_to_luv, "yuv": rgb_to_yuv}

#: File suffixes read as images (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


def find_images(root: str | Path | Sequence[str | Path]) -> list[Path]:
    """All image files below one or more folders (recursive), sorted.

    Only regular files (or links to them) are listed: a FIFO, a device, a folder or a
    broken link with an image's suffix is left out.

    Args:
        root: A folder, an image file, or a sequence of them.

    Returns:
        Sorted list of paths.

    Raises:
        FileNotFoundError: If a root does not exist or holds no image.
    """
    roots = [root] if isinstance(root, (str, Path)) else list(root)
    found: list[Path] = []
    for r in roots:
        p = Path(r).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"no such file or folder: {p}")
        if p.is_file():
            found.append(p)
        else:
            # regular files only: opening a FIFO named like an image waits for ever
            found.extend(
                q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file()
            )
    if not found:
        where = ", ".join(str(r) for r in roots)  # the folders as typed, not a list's repr
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {where}")
    return sorted(found)


_SOURCE_RE = re.compile(r"^(.+?)_(?:x|s)\d")


def source_id(path: str | Path) -> str:
    """The source image a tile was cut from: its file name up to ``_x`` or ``_s``.

    Files without such a suffix (e.g. one image per file) are their own source.

    Args:
        path: A tile's path, e.g. ``.../TCGA-18-5592-01Z-00-DX1_x116_y372.jpg``.

    Returns:
        The source id, e.g. ``"TCGA-18-5592-01Z-00-DX1"``.
    """
    stem = Path(path).stem
    m = _SOURCE_RE.match(stem)
    return m.group(1) if m else stem


def split_by_source(
    paths: Sequence[str | Path], held_fraction: float = 0.25
) -> tuple[list[Path], list[Path]]:
    """Split tiles into ``(train, held_out)`` so that no source image is in both.

    The held-out part is the tiles of the last ``held_fraction`` of the source
    ids in sorted order (at least one source when there are two or more), the
    rule of the domain benchmarks (issue 17): deterministic, and a model never
    sees another tile of a held-out slide or telescope image.

    Args:
        paths: Tile paths (any order).
        held_fraction: Share of source images held out, in ``[0, 1)``.

    Returns:
        ``(train, held_out)``: sorted path lists.
    """
    by_source: dict[str, list[Path]] = {}
    for p in map(Path, paths):
        by_source.setdefault(source_id(p), []).append(p)
    held_ids = held_out_sources(by_source, held_fraction)
    ids = sorted(by_source)
    train = sorted(p for i in ids if i not in held_ids for p in by_source[i])
    held = sorted(p for i in held_ids for p in by_source[i])
    return train, held


def held_out_sources(ids: Iterable[str], held_fraction: float = 0.25) -> set[str]:
    """The source ids held out by :func:`split_by_source`'s rule.

    The last ``round(n * held_fraction)`` of the ``n`` distinct ids in sorted
    order, and at least one when ``held_fraction > 0`` and there are two or
    more. Front ends whose examples are not files (napari layers) name their
    sources themselves and apply the same rule with this function.

    Args:
        ids: Source ids (repeats allowed).
        held_fraction: Share of sources held out, in ``[0, 1)``.

    Returns:
        The held-out ids.
    """
    if not 0 <= held_fraction < 1:
        raise ValueError(f"held_fraction must be in [0, 1), got {held_fraction}")
    unique = sorted(set(ids))
    n_held = round(len(unique) * held_fraction)
    if held_fraction > 0 and len(unique) >= 2:
        n_held = max(1, n_held)
    return set(unique[len(unique) - n_held :]) if n_held else set()


def _square(im: Any, size: int) -> np.ndarray:
    """A PIL image, shorter side resized to ``size``, centre-cropped: ``(size, size, 3)`` uint8."""
    from PIL import Image

    im = im.convert("RGB")
    w, h = im.size
    s = size / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BICUBIC)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _load_rgb(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    return _square(Image.fromarray(load_rgb(path)), size)


def load_rgb(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB, turned as a viewer shows it.

    Read as ``tinct colorize`` reads it (:func:`tinct.engine.imagefiles.read_image`),
    with the engine's bounds: a TIFF by any name through tifffile, anything else with
    Pillow's :func:`~tinct.engine.imagefiles.pillow_formats` only (never EPS:
    Ghostscript), no more pixels than :func:`~tinct.engine.filelimits.max_read_pixels`.
    16-bit values keep their high byte; a stack gives its first image.

    Raises:
        OSError, ValueError: Unreadable, or over the bounds (the callers skip the file).
    """
    from tinct.engine.imagefiles import read_image

    return _rgb8(read_image(path))


def _rgb8(data: np.ndarray) -> np.ndarray:
    """A decoded image's first plane as uint8 RGB (alpha dropped, gray repeated)."""
    while data.ndim > 3 or (data.ndim == 3 and data.shape[-1] not in (2, 3, 4)):
        data = data[0]  # the first plane of a stack
    if data.ndim == 3 and data.shape[-1] == 2:
        data = data[..., 0]  # gray and alpha
    data = data[..., :3] if data.ndim == 3 else np.repeat(data[..., None], 3, axis=-1)
    if data.dtype == np.uint16:
        return (data >> 8).astype(np.uint8)
    if data.dtype != np.uint8:  # floats and wider integers: clipped to 0..255, as Pillow does
        data = np.clip(np.nan_to_num(data.astype(np.float64)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(data)


def is_near_gray(ab: Tensor, threshold: float = 5.0) -> Tensor:
    """SIGGRAPH17's gray test: (max-min of a) + (max-min of b) below a threshold.

    Args:
        ab: ``(B, 2, H, W)`` CIELAB chrominance.
        threshold: In ab units (5 in the reference recipe).

    Returns:
        ``(B,)`` bool, True for near-gray images.
    """
    flat = ab.flatten(2)
    spread = (flat.amax(2) - flat.amin(2)).sum(1)
    return spread < threshold


def file_reason(path: str | Path, exc: BaseException) -> str:
    """Why ``path`` could not be read, in words that do not name it again.

    The readers' messages name the file (``'PATH: not an image file ...'``,
    ``'PATH declares 80 x 80 = ...'``, ``'cannot identify image file 'PATH''``); the
    name is taken out, so a line that names the file names it once.

    Args:
        path: The file.
        exc: What reading it raised.

    Returns:
        The first line of the reason, e.g. ``'no such file or directory'``.
    """
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = exc.strerror  # e.g. [Errno 2] No such file or directory: 'PATH'
        return text[:1].lower() + text[1:]
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    for name in (f"'{path}'", f'"{path}"', str(path)):
        for lead in (f"{name}: ", f"{name} is ", f"{name} "):
            if text.startswith(lead):
                text = text[len(lead) :]
        text = text.replace(f" {name}", "")
    return text.strip(" :") or type(exc).__name__


def skipped_message(
    skipped: Sequence[tuple[Path, str]], shown: int = 3, kind: str = "unreadable"
) -> str:
    """One line naming the files a run left out, each once with its reason.

    E.g. ``skipped 2 unreadable images: a.png: no such file or directory; b.png: ...``
    (the reasons as :func:`file_reason` gives them).
    """
    n = len(skipped)
    names = "; ".join(f"{p}: {why}" for p, why in skipped[:shown])
    more = f"; and {n - shown} more" if n > shown else ""
    return f"skipped {n} {kind} image{'s' * (n != 1)}: {names}{more}"


def _stamp(path: Path) -> str:
    """A file's size and modification time: an edited file is decoded again, not cached."""
    try:
        st = path.stat()
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _cached(cache: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The decoded array stored at ``cache`` if it is one of ``shape`` (never unpickled).

    A file that is missing, not a regular file (a FIFO would block the load for ever),
    unreadable (cut off, not ``.npy``, an object array) or of another shape or dtype is
    ``None``: the images are decoded again and it is replaced.
    """
    from tinct.engine.filelimits import check_regular_file

    try:
        check_regular_file(cache)
        arr = np.load(cache, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != np.uint8:
        return None
    return arr


class ImageBank:
    """A set of colour images decoded once to ``(N, S, S, 3)`` uint8.

    Each image is resized so its shorter side is ``size`` and centre-cropped
    to a square. With ``cache_dir`` the decoded array is stored as ``.npy``
    keyed by the file list (names, sizes and modification times), so later runs start in
    a second; a cache file that is unreadable or of another shape is decoded afresh.

    Args:
        paths: Image files.
        size: Side of the stored squares, in pixels.
        cache_dir: Folder for the decoded-array cache, or None.
        progress: Show a progress bar while decoding; or ``progress(done, total)``,
            called before each file is decoded (a front end's progress line).
        cancel: Object with ``is_set()`` (:mod:`tinct.cancel`), checked before each
            image is decoded, so that a folder of hundreds stops within one image.

    Attributes:
        paths: The files that were read (unreadable ones are left out).
        skipped: ``(path, reason)`` of each file that could not be read; a run
            goes on without them (and the decoded array is then not cached).

    Raises:
        ValueError: Not one of the files can be read.
        tinct.cancel.Cancelled: ``cancel`` was set while the files were decoded.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        size: int = 256,
        cache_dir: str | Path | None = None,
        progress: bool | Callable[[int, int], None] = True,
        cancel: Any = None,
    ) -> None:
        self.paths = list(paths)
        self.size = size
        self.skipped: list[tuple[Path, str]] = []
        key = hashlib.sha256(
            ("\n".join(f"{p}|{_stamp(p)}" for p in self.paths) + f"|{size}").encode()
        ).hexdigest()[:16]
        cache = Path(cache_dir) / f"bank-{key}.npy" if cache_dir else None
        cached = _cached(cache, (len(self.paths), size, size, 3)) if cache else None
        if cached is not None:
            self.images = cached
            return
        from tqdm import tqdm

        from tinct.cancel import check

        arr = np.empty((len(self.paths), size, size, 3), dtype=np.uint8)
        keep: list[int] = []
        bar = not progress or callable(progress)
        for i, p in enumerate(tqdm(self.paths, desc="decoding images", disable=bar)):
            check(cancel)  # outside the try: a cancelled load is not a skipped file
            if callable(progress):
                progress(i, len(self.paths))
            try:
                arr[i] = _load_rgb(p, size)
                keep.append(i)
            except Exception as exc:  # one bad file never stops the run; it is named
                self.skipped.append((p, file_reason(p, exc)))
        if self.paths and not keep:
            p, why = self.skipped[0]
            raise ValueError(f"cannot read any of the {len(self.paths)} images (first: {p}: {why})")
        if self.skipped:  # not cached: the files may be fixed before the next run
            arr = arr[keep]
            self.paths = [self.paths[i] for i in keep]
            cache = None
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npy")
            np.save(tmp, arr)
            tmp.replace(cache)
        self.images = arr

    @classmethod
    def from_arrays(cls, images: Sequence[np.ndarray], size: int = 256) -> ImageBank:
        """A bank of in-memory images, resized and centre-cropped as files are.

        Args:
            images: ``(H, W, 3)`` uint8 RGB arrays (not modified); arrays that
                are already ``(size, size, 3)`` are copied as they are. One
                ``(N, size, size, 3)`` uint8 array is used as it is (no copy).
            size: Side of the stored squares, in pixels.

        Returns:
            The bank (``paths`` is empty).

        Raises:
            ValueError: An array is not ``(H, W, 3)`` uint8, or there are none.
        """
        from PIL import Image

        if len(images) == 0:
            raise ValueError("ImageBank.from_arrays needs at least one image")
        if (
            isinstance(images, np.ndarray)
            and images.dtype == np.uint8
            and images.shape[1:] == (size, size, 3)
        ):
            bank = cls.__new__(cls)
            bank.paths, bank.size, bank.images, bank.skipped = [], size, images, []
            return bank
        arr = np.empty((len(images), size, size, 3), dtype=np.uint8)
        for i, im in enumerate(images):
            im = np.asarray(im)
            if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise ValueError(
                    f"image {i}: expected an (H, W, 3) uint8 array, got {im.shape} {im.dtype}"
                )
            arr[i] = im if im.shape[:2] == (size, size) else _square(Image.fromarray(im), size)
        bank = cls.__new__(cls)
        bank.paths, bank.size, bank.images, bank.skipped = [], size, arr, []
        return bank

    def __len__(self) -> int:
        return len(self.images)
