"""Models from tinct ``.safetensors`` files, checked before anything is built.

A weights file's metadata names the registry record it was trained from and
may override that record's :class:`~tinct.models.ModelConfig` (except its
decoding defaults, :data:`~tinct.models.registry.DECODING_DEFAULTS`, which stay
the record's) and builder arguments. Since the file may come from anywhere, :func:`read_model_file`
bounds all of it before spending memory: the config's fields are typed and
bounded (:class:`ModelConfig` itself checks them), builder arguments must be
ones the builder takes, with small JSON values, and the network they describe
is first built on the ``meta`` device (no memory) to check its parameter count
and that its tensors are exactly the file's.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tinct.models.registry import DECODING_DEFAULTS, ModelConfig, ModelRecord, get_record

__all__ = ["MAX_PARAMETERS", "read_model_file"]

#: Most parameters a model from a file may have (1 GiB of float32).
MAX_PARAMETERS = 2**28
_MAX_KWARG_NUMBER = 1e5
_MAX_KWARG_ITEMS = 64


def read_model_file(path: Path) -> tuple[ModelRecord, dict[str, Tensor], dict[str, Any]]:
    """The record a weights file describes, its state dict and its metadata.

    Args:
        path: A tinct ``.safetensors`` file (:func:`tinct.models.weights.save_weights`).

    Returns:
        ``(record, state_dict, metadata)``; the record has the file's config and
        builder arguments and no weights entry.

    Raises:
        ValueError: Not a tinct weights file, or metadata beyond the bounds, or
            metadata that does not describe the file's tensors; raised before the
            tensors are read or the model is built.
        tinct.models.UnknownModelError: The metadata names no registered model.
    """
    from tinct.models import weights as _w

    shapes, meta = _w.read_weights_header(path)
    record = record_from_metadata(meta, path)
    check_against_tensors(record, shapes, path)
    state, _ = _w.load_weights(path)
    return record, state, meta


def record_from_metadata(meta: Mapping[str, Any], path: Path) -> ModelRecord:
    """The registry record named by the metadata, with its config and kwargs applied."""
    name = meta.get("model")
    if not isinstance(name, str):
        raise ValueError(f"{path} is not a tinct weights file (no 'model' in its metadata)")
    base = get_record(name)
    config = base.config
    if "config" in meta:
        if not isinstance(meta["config"], Mapping):
            raise ValueError(f"{path}: metadata 'config' must be a JSON object")
        # the file describes the network; how to decode it is the record's alone (every
        # field is still bounded: a file with absurd values is refused, not half-read)
        shape = {k: v for k, v in meta["config"].items() if k not in DECODING_DEFAULTS}
        try:
            ModelConfig.from_dict({**config.to_dict(), **meta["config"]})
            config = ModelConfig.from_dict({**config.to_dict(), **shape})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: metadata 'config' is not a valid config: {exc}") from None
    kwargs = dict(base.kwargs)
    if "builder_kwargs" in meta:
        kwargs.update(_builder_kwargs(meta["builder_kwargs"], base, path))
    return dataclasses.replace(base, config=config, kwargs=kwargs, weights=None)


def _builder_kwargs(raw: Any, base: ModelRecord, path: Path) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: metadata 'builder_kwargs' must be a JSON object")
    try:
        params = inspect.signature(base.builder).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    out = {}
    for key, value in raw.items():
        if not takes_any and key not in params:
            raise ValueError(f"{path}: {base.name!r} takes no builder argument {key[:40]!r}")
        _check_kwarg(key, value, path)
        out[key] = _tuplify(value)
    return out


def _check_kwarg(key: str, value: Any, path: Path) -> None:
    items = value if isinstance(value, list) else [value]
    if len(items) > _MAX_KWARG_ITEMS:
        raise ValueError(f"{path}: builder argument {key!r} has more than {_MAX_KWARG_ITEMS} items")
    for item in items:
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, (int, float)):
            if not abs(item) <= _MAX_KWARG_NUMBER:
                raise ValueError(
                    f"{path}: builder argument {key!r} = {item!r} is beyond +-{_MAX_KWARG_NUMBER:g}"
                )
        elif not (isinstance(item, str) and len(item) <= 64):
            raise ValueError(f"{path}: builder argument {key!r} must hold numbers or short strings")


def check_against_tensors(record: ModelRecord, shapes: Mapping[str, tuple[int, ...]],
                          path: Path) -> None:  # fmt: skip
    """Build the network on the meta device and compare it with the file's tensors."""
    try:
        with torch.device("meta"):
            model = record.build()
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    except Exception as exc:
        raise ValueError(
            f"{path}: its metadata does not build a {record.name!r} model: {exc}"
        ) from None
    n = sum(p.numel() for p in model.parameters())
    if n > MAX_PARAMETERS:
        raise ValueError(
            f"{path}: its metadata describes a model of {n:,} parameters, more than the limit "
            f"of {MAX_PARAMETERS:,}; refused before building it"
        )
    if expected != dict(shapes):
        missing = sorted(set(expected) - set(shapes))[:3]
        extra = sorted(set(shapes) - set(expected))[:3]
        wrong = sorted(k for k in set(expected) & set(shapes) if expected[k] != shapes[k])[:3]
        raise ValueError(
            f"{path}: its metadata does not match its tensors (missing {missing}, unexpected "
            f"{extra}, other shape {wrong}); refused before building the model"
        )


def _tuplify(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value
