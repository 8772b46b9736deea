"""Loading a model: build it from its record, fetch and check its weights, count them.

:func:`load_model` takes a registered name (:mod:`tinct.models.registry`) or
the path of a tinct ``.safetensors`` file (:mod:`tinct.models._from_file`);
weights come through :mod:`tinct.models.weights` (bundled, cached or
downloaded, hash-checked).
"""

from __future__ import annotations

from pathlib import Path

import torch

from tinct.models import weights as _w
from tinct.models.base import ColorModel
from tinct.models.registry import ModelRecord, WeightsStatus, get_record

__all__ = ["count_parameters", "load_model", "weights_status"]


def count_parameters(record: ModelRecord) -> int:
    """Number of parameters of ``record``'s network, counted without allocating memory."""
    with torch.device("meta"):
        model = record.build()
    return sum(p.numel() for p in model.parameters())


def weights_status(record: ModelRecord) -> WeightsStatus:
    """Where the record's weights stand on this machine.

    Returns:
        ``"bundled"`` (file ships with tinct), ``"downloaded"`` (in the
        cache), ``"downloadable"`` (URL known, not yet fetched), ``"built in"``
        (no trainable weights needed), ``"user"`` (a model the user trained,
        in the user-model folder) or ``"train it yourself"``.
    """
    w = record.weights
    if w is None:
        return "train it yourself" if record.config.trainable else "built in"
    if w.local_path is not None:
        return "user"
    if w.bundled:
        return "bundled" if _w.bundled_path(w.file_name).is_file() else "train it yourself"
    return "downloaded" if (_w.cache_dir() / w.file_name).is_file() else "downloadable"


def load_model(
    name_or_path: str | Path,
    device: str | torch.device = "cpu",
    pretrained: bool = True,
    *,
    progress: bool = True,
) -> ColorModel:
    """Build a model, load its weights and put it in eval mode.

    Args:
        name_or_path: A registered name (see :func:`~tinct.models.registry.list_models`) or the path
            of a tinct ``.safetensors`` file (written by
            :func:`tinct.models.weights.save_weights`, e.g. by ``tinct train``) whose
            metadata names the record it was trained from. The file's metadata
            sets the network's shape; the decoding defaults
            (:data:`~tinct.models.registry.DECODING_DEFAULTS`) stay the record's.
        device: Torch device for the returned model.
        pretrained: Load the record's trained weights; ``False`` keeps random
            initialisation and never touches the network or the cache.
        progress: Show a download progress bar.

    Returns:
        The network in eval mode with ``model.record`` (the :class:`ModelRecord`,
        with its config updated from the file metadata for a path) attached.

    Raises:
        UnknownModelError: Unknown name.
        tinct.models.weights.WeightsUnavailableError: Weights cannot be obtained
            (offline, not trained yet, no weights published).
        ValueError: Hash mismatch or a file that is not a tinct weights file.
    """
    path = Path(name_or_path)
    if isinstance(name_or_path, Path) or path.suffix == ".safetensors":
        from tinct.models._from_file import read_model_file

        record, state, meta = read_model_file(path)  # checked before anything is built
        model = record.build()
        model.load_state_dict(state, strict=True)
        model.weights_metadata = meta  # type: ignore[assignment]
    else:
        record = get_record(str(name_or_path))
        model = record.build()
        if pretrained and record.weights is not None:
            state = _w.load_record_weights(record, progress=progress)
            model.load_state_dict(state, strict=True)
        elif pretrained and record.config.trainable:
            raise _w.WeightsUnavailableError(
                f"model {record.name!r} has no published weights: train it yourself with "
                f"`tinct train --recipe {record.name}` and load the resulting .safetensors file "
                "with tinct.load_model(path), or use pretrained=False for random weights"
            )
    model.record = record  # type: ignore[assignment]
    return model.to(device).eval()
