"""The one bounded cache of loaded colorizers, and the one-shot :func:`colorize`.

Every front end that keeps models loaded takes them from here: the one-shot
:func:`tinct.colorize`, the bridge backend, Dask workers and the napari widget.
The cache is a process-wide LRU of at most :data:`CACHE_SIZE` colorizers (each
holds its network), keyed by what makes two colorizers differ: the model
(:func:`~tinct.engine.runtime.model_key`: a resolved path, or a name with its
user-model file signature), the device, the precision and further
:class:`~tinct.engine.colorizer.Colorizer` arguments, or a caller's own key
for colorizers it makes itself (:func:`get_or_make`). :func:`clear` empties it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinct.engine.colorizer import Colorizer
from tinct.engine.hints import Hint
from tinct.engine.options import ColorizeOptions
from tinct.engine.runtime import model_key

__all__ = [
    "CACHE_SIZE",
    "clear",
    "colorize",
    "colorizer_key",
    "contains",
    "entries",
    "get_colorizer",
    "get_or_make",
]

#: Most colorizers (and so networks) kept loaded in one process.
CACHE_SIZE = 4

_CACHE: OrderedDict[Hashable, tuple[str, Any]] = OrderedDict()
_LOCK = threading.RLock()


def get_or_make(key: Hashable, make: Callable[[], Any], *, model: str = "") -> Any:
    """The cached value under ``key``, made with ``make()`` on a miss (LRU, bounded).

    Args:
        key: What identifies the colorizer (include everything that changes it).
        make: Builds it on a miss (called with the cache's lock held, so one
            model is never loaded twice at once).
        model: The model name the entry serves (for :func:`clear`).

    Returns:
        The cached or new colorizer.
    """
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key][1]
        value = make()
        _CACHE[key] = (str(model).lower(), value)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
        return value


def contains(key: Hashable) -> bool:
    """Whether ``key`` is cached (a model under it needs no loading)."""
    with _LOCK:
        return key in _CACHE


def colorizer_key(
    model: str | Path, device: str = "auto", precision: str = "auto", **kwargs: Any
) -> tuple[Any, ...]:
    """The cache key :func:`get_colorizer` uses for these arguments."""
    return ("colorizer", model_key(model), str(device), str(precision), *sorted(kwargs.items()))


def get_colorizer(
    model: str | Path = "tinct-base", device: str = "auto", precision: str = "auto", **kwargs: Any
) -> Colorizer:
    """A shared :class:`~tinct.engine.colorizer.Colorizer`, loaded on first use.

    Args:
        model: Registry name or weights file.
        device: Device name (``"auto"``, ``"cpu"``, ``"cuda:1"``, ...).
        precision: Network precision.
        **kwargs: Further constructor arguments (``pretrained``, ``cache_size``, ...).

    Returns:
        The colorizer (thread-safe; its calls are serialised by its own lock).
    """
    key = colorizer_key(model, device, precision, **kwargs)
    return get_or_make(key, lambda: Colorizer(model, device, precision, **kwargs), model=str(model))


def entries() -> list[str]:
    """The model names of the cached colorizers, least recently used first."""
    with _LOCK:
        return [name for name, _ in _CACHE.values()]


def clear(model: str | Callable[[str], bool] | None = None) -> None:
    """Drop cached colorizers: all, those of one model, or those whose model name matches.

    Args:
        model: ``None`` (everything), a model name, or ``predicate(name) -> bool``.
    """
    with _LOCK:
        if model is None:
            _CACHE.clear()
            return
        match = model if callable(model) else (lambda name: name == str(model).lower())
        for key in [k for k, (name, _) in _CACHE.items() if match(name)]:
            del _CACHE[key]


def colorize(
    image: Any,
    hints: Sequence[Hint] = (),
    *,
    model: str | Path | None = None,
    device: str | None = None,
    precision: str | None = None,
    options: ColorizeOptions | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Colorize with a shared colorizer from the cache (one per model/device/precision).

    Args:
        image: Gray or RGB(A) array or stack (see :meth:`Colorizer.colorize`).
        hints: Colour hints.
        model: Model name or weights path (default: ``options.model``, i.e. ``"tinct-base"``).
        device: Device (default: ``options.device``, i.e. ``"auto"``).
        precision: Precision (default: ``options.precision``).
        options: Options for the call.
        **kwargs: Further :meth:`Colorizer.colorize` arguments (``reference``,
            ``temperature``, ``decoder``, ``mrf_weight``, ``tile``, ...).

    Returns:
        The colorized image (see :meth:`Colorizer.colorize`).
    """
    opts = options or ColorizeOptions()
    c = get_colorizer(model or opts.model, device or opts.device, precision or opts.precision)
    return c.colorize(image, hints, options=options, **kwargs)
