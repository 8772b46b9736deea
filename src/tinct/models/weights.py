"""Model weight files: download, verification, caching and tinct's own format.

* Published weights (e.g. Zhang et al.'s ``.pth`` files) are fetched once with
  pooch: downloaded under a temporary name, checked against the full sha256
  of the registry record, then moved into the cache folder. The cache is
  ``pooch.os_cache("tinct")`` (e.g. ``~/.cache/tinct`` on Linux) unless the
  environment variable ``TINCT_CACHE`` names another folder. Nothing is
  created at import time.
* Official ``.pth`` files are plain ``state_dict``s and are read with
  ``torch.load(..., weights_only=True)``: no arbitrary object is unpickled.
* tinct's own weights are ``.safetensors`` files whose string metadata holds
  the registry name (``model``), the :class:`~tinct.models.ModelConfig`
  (``config``), builder arguments and metrics as JSON. The metadata is
  bounded (at most 1 MiB a value, JSON nested at most 32 deep) and read,
  with the tensors' shapes, before any tensor (:func:`read_weights_header`),
  so a file that asks for a huge model is refused before it is built.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from tinct.models.registry import ModelRecord, Weights

__all__ = [
    "CACHE_ENV",
    "WeightsUnavailableError",
    "bundled_path",
    "cache_dir",
    "fetch",
    "load_record_weights",
    "load_state_dict_file",
    "load_weights",
    "read_weights_header",
    "save_weights",
    "sha256sum",
]

#: Environment variable overriding the download cache folder.
CACHE_ENV = "TINCT_CACHE"
#: Version of the metadata layout written by :func:`save_weights`.
FORMAT_VERSION = "1"
#: Longest metadata value accepted, in characters.
MAX_METADATA_VALUE = 1 << 20
_MAX_METADATA_DEPTH = 32
_BUNDLED_DIR = Path(__file__).resolve().parents[1] / "weights"


class WeightsUnavailableError(RuntimeError):
    """Weights cannot be obtained (offline, not published, or not trained yet)."""


def cache_dir() -> Path:
    """Folder holding downloaded weights (``$TINCT_CACHE`` or the OS cache); not created here."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("tinct"))


def bundled_path(file_name: str) -> Path:
    """Path of a weights file shipped inside the package (it may not exist)."""
    return _BUNDLED_DIR / file_name


def sha256sum(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Lowercase hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def fetch(weights: Weights, *, progress: bool = True) -> Path:
    """Local path of a weights file, downloading and verifying it if needed.

    Bundled files are looked up inside the package (and hash-checked when the
    record has a sha256). Downloadable files come from the cache when present
    with the right hash; otherwise they are downloaded with pooch to a
    temporary name, hash-checked and moved into place, so a corrupt or partial
    download never stays in the cache. A user model's file is read from its
    folder, checked against the sha256 recorded when it was registered.

    Args:
        weights: The registry's weights record.
        progress: Show a tqdm progress bar while downloading.

    Returns:
        Path of the verified file.

    Raises:
        WeightsUnavailableError: A bundled or user-model file is missing, or the download
            failed (offline); the message says which URL to fetch and the exact
            path to put the file at.
        ValueError: The file's sha256 does not match the record.
    """
    if weights.local_path is not None:  # a user model
        path = weights.local_path
        if not path.is_file():
            raise WeightsUnavailableError(
                f"the user model file {path} is gone (removed since tinct listed it)"
            )
        if weights.sha256 is not None and sha256sum(path) != weights.sha256:
            raise ValueError(f"sha256 of {path} does not match the one recorded for it")
        return path
    if weights.bundled:
        path = bundled_path(weights.file_name)
        if not path.is_file():
            raise WeightsUnavailableError(
                f"bundled weights {weights.file_name!r} are not in this installation of tinct "
                f"(expected at {path}); they have not been trained yet. Train them with "
                "`tinct train` and load the resulting .safetensors file with "
                "tinct.load_model(path), or use pretrained=False"
            )
        if weights.sha256 is not None and sha256sum(path) != weights.sha256:
            raise ValueError(f"sha256 of bundled weights {path} does not match the registry")
        return path

    import pooch

    folder = cache_dir()
    target = folder / weights.file_name
    assert weights.url is not None and weights.sha256 is not None  # guaranteed by Weights
    if progress and not target.is_file() and sys.stderr.isatty():
        print(f"downloading {weights.url} to {target}", file=sys.stderr)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # its "Downloading data from" line is ours, on a terminal
    try:
        local = pooch.retrieve(
            url=weights.url,
            known_hash=f"sha256:{weights.sha256}",
            fname=weights.file_name,
            path=folder,
            progressbar=progress,
        )
    except ValueError as exc:  # pooch's hash mismatch
        raise ValueError(
            f"downloaded {weights.url} but its sha256 does not match the registry "
            f"({weights.sha256}); the file was discarded. {exc}"
        ) from exc
    except Exception as exc:  # network errors: requests, urllib, OSError...
        size = f", {weights.size:,} bytes" if weights.size else ""
        raise WeightsUnavailableError(
            f"could not download {weights.url} ({_short_reason(exc)}); to install it by hand, "
            f"save that file as {target} (sha256 {weights.sha256}{size}; ${CACHE_ENV} sets "
            "the folder)"
        ) from exc
    finally:
        logger.setLevel(level)
    return Path(local)


def _short_reason(exc: BaseException) -> str:
    """Why a download failed, in a few words (requests' messages run to hundreds of characters)."""
    text = str(exc)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    if any(k in text for k in ("NameResolution", "resolve", "getaddrinfo", "Name or service")):
        return "no network: the host name could not be resolved"
    if any(k in text for k in ("Connection refused", "Max retries", "timed out", "Unreachable")):
        return "no network: the server could not be reached"
    line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return line if len(line) <= 80 else line[:77] + "..."


def load_state_dict_file(path: str | Path, fmt: str | None = None) -> dict[str, Tensor]:
    """Read a ``state_dict`` from a ``.pth`` (weights only) or ``.safetensors`` file.

    Args:
        path: The file.
        fmt: ``"pth"`` or ``"safetensors"``; guessed from the suffix if ``None``.

    Returns:
        Tensor name -> CPU tensor.

    Raises:
        ValueError: The file is not a flat mapping of tensors.
    """
    path = Path(path)
    fmt = fmt or ("safetensors" if path.suffix == ".safetensors" else "pth")
    if fmt == "safetensors":
        return load_weights(path)[0]
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path} is not a plain state_dict of tensors")
    return dict(obj)


def load_record_weights(record: ModelRecord, *, progress: bool = True) -> dict[str, Tensor]:
    """Fetch (if needed), verify and read the weights of a registry record.

    Raises:
        WeightsUnavailableError: The record has no weights or they cannot be obtained.
    """
    if record.weights is None:
        raise WeightsUnavailableError(f"model {record.name!r} has no trained weights to load")
    path = fetch(record.weights, progress=progress)
    return load_state_dict_file(path, record.weights.format)


def save_weights(
    model: torch.nn.Module, path: str | Path, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write a model's ``state_dict`` as a tinct ``.safetensors`` file.

    The metadata always holds ``model`` (registry name), ``config`` (the
    :class:`~tinct.models.ModelConfig` as JSON) and ``builder_kwargs`` when the
    model carries a ``.record``; entries of ``metadata`` (e.g. ``metrics``,
    ``train_config``) are added, JSON-encoded unless already strings, and
    override those.

    Args:
        model: The network (usually with ``.record`` from :func:`tinct.load_model`).
        path: Destination file (``.safetensors``).
        metadata: Extra JSON-serialisable metadata.

    Returns:
        The path written.
    """
    from safetensors.torch import save_file

    meta: dict[str, str] = {"format": "tinct", "format_version": FORMAT_VERSION}
    record = getattr(model, "record", None)
    if record is not None:
        meta["model"] = record.name
        meta["config"] = json.dumps(record.config.to_dict(), sort_keys=True)
        meta["builder_kwargs"] = json.dumps(dict(record.kwargs), sort_keys=True)
    for key, value in (metadata or {}).items():
        meta[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    save_file(state, str(path), metadata=meta)
    return path


def read_weights_header(path: str | Path) -> tuple[dict[str, tuple[int, ...]], dict[str, Any]]:
    """The tensor shapes and the metadata of a ``.safetensors`` file, without its tensors.

    Args:
        path: The file.

    Returns:
        ``(shapes, metadata)``: tensor name -> shape, and the metadata with
        values that are valid JSON decoded (``config`` becomes a dict).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a regular file (a FIFO, a device: refused at once), over
            :data:`~tinct.models._weights_file.MAX_WEIGHTS_BYTES`, not a safetensors
            file, or metadata beyond the bounds.
    """
    from tinct.models._weights_file import read_header

    path = Path(path)
    shapes, raw = read_header(path)  # a FIFO or a device is refused, never waited on
    return shapes, _decoded_metadata(raw, path)


def _decoded_metadata(raw: Mapping[str, str], path: Path) -> dict[str, Any]:
    """The metadata with its JSON values decoded, each bounded (size, nesting)."""
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        if len(value) > MAX_METADATA_VALUE:
            raise ValueError(
                f"{path}: metadata entry {key[:40]!r} has {len(value):,} characters, more than "
                f"the limit of {MAX_METADATA_VALUE:,}"
            )
        meta[key] = _decode_metadata(value, key, path)
    return meta


def _decode_metadata(value: str, key: str, path: Path) -> Any:
    """A metadata value as JSON if it is JSON (bounded nesting), else the string."""
    try:
        decoded = json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value
    except RecursionError:
        decoded = None  # deeper than the interpreter allows: refused below
    else:
        stack = [(decoded, 0)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, (dict, list)):
                if depth >= _MAX_METADATA_DEPTH:
                    break
                stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                       else item))  # fmt: skip
        else:
            return decoded
    raise ValueError(f"{path}: metadata entry {key[:40]!r} nests deeper than {_MAX_METADATA_DEPTH}")


def load_weights(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a tinct ``.safetensors`` file.

    Args:
        path: File written by :func:`save_weights`.

    Returns:
        ``(state_dict, metadata)``; metadata values that are valid JSON are
        decoded (``config`` and ``metrics`` become dicts).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a regular file (a FIFO, a device: refused at once), over
            :data:`~tinct.models._weights_file.MAX_WEIGHTS_BYTES`, not a safetensors
            file, or metadata beyond the bounds.
    """
    from tinct.models._weights_file import read_whole

    path = Path(path)
    state, (_, raw) = read_whole(path)  # header and tensors from one read of one file
    return state, _decoded_metadata(raw, path)
