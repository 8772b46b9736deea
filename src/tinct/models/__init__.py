"""The tinct model zoo: registry, model families and ``load_model``.

Importing this package registers every family (explicit imports below, one
module per family). Use :func:`list_models` / :func:`get_record` to browse
and :func:`load_model` to get a ready network with ``model.record`` attached.
"""

from __future__ import annotations

# isort: off
# Registration order = listing order: tinct's own models, the pretrained
# ports, the trainable recipes, the classical baseline.
from tinct.models import compact  # noqa: F401
from tinct.models import zhang  # noqa: F401
from tinct.models import melas_kyriazi  # noqa: F401
from tinct.models import hwang_zhou  # noqa: F401
from tinct.models import larsson  # noqa: F401
from tinct.models import sun_shen  # noqa: F401
from tinct.models import classical  # noqa: F401

# isort: on
from tinct.models import user_store
from tinct.models.base import ColorModel, ModelOutput
from tinct.models.loading import count_parameters, load_model, weights_status
from tinct.models.registry import (
    ModelConfig,
    ModelRecord,
    UnknownModelError,
    Weights,
    get_record,
    list_models,
    register_model,
    unregister_model,
)

user_store.refresh()  # the user's fine-tuned models, after every built-in name

__all__ = [
    "ColorModel",
    "ModelConfig",
    "ModelOutput",
    "ModelRecord",
    "UnknownModelError",
    "Weights",
    "count_parameters",
    "get_record",
    "list_models",
    "load_model",
    "register_model",
    "unregister_model",
    "weights_status",
]
