"""tinct: neural colorization of grayscale images for napari, GIMP and the command line.

The public API is small and imported lazily, so ``import tinct`` stays cheap
(no Qt, no network, no model weights touched)::

    import tinct
    rgb = tinct.colorize(gray)                      # one shot, default model
    c = tinct.Colorizer("tinct-base")               # keep a model loaded
    rgb = c.colorize(gray, hints=[tinct.Hint(10, 20, color=(255, 0, 0))])
    tinct.finetune(folders=["my_tiles/"], name="my-model", minutes=3)  # a user model
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "ColorizeOptions",
    "Colorizer",
    "FineTuneJob",
    "Hint",
    "__version__",
    "colorize",
    "colorize_dask",
    "finetune",
    "list_models",
    "load_model",
]

_LAZY = {
    "Colorizer": "tinct.engine.colorizer",
    "colorize": "tinct.engine.shared",
    "ColorizeOptions": "tinct.engine.options",
    "Hint": "tinct.engine.hints",
    "list_models": "tinct.models",
    "load_model": "tinct.models",
    "colorize_dask": "tinct.scale.distributed",
    "finetune": "tinct.training.finetuning",
    "FineTuneJob": "tinct.training.finetuning",
}


#: Sub-modules reachable as attributes of the package (``tinct.catalog.model_decoders``).
_MODULES = {"catalog": "tinct.models.catalog"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tinct' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
