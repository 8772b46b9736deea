"""User models: networks the user fine-tuned, kept in their data folder, registered by name.

A user model is one tinct ``.safetensors`` file, ``<folder>/<name>.safetensors``,
in the user-model folder: ``$TINCT_USER_MODELS`` when set, else
``platformdirs.user_data_dir("tinct")/models`` (``~/.local/share/tinct/models``
on Linux). Importing :mod:`tinct.models` registers every valid file there under
its name, so it is listed by ``tinct models`` and usable by name everywhere:
``tinct.load_model(name)``, ``tinct.Colorizer(name)``, ``--model NAME``, the
napari widget and ``tinct serve`` (hence the GIMP plug-in). A lookup of an
unknown name rescans the folder when it changed, so a model trained in another
process is found without a restart.

Every file is checked as any weights file from outside is
(:mod:`tinct.models._from_file`: bounded metadata, a config the registry
accepts, tensors that match the architecture it names), hashed when registered
and verified against that hash when loaded; nothing is unpickled. A file that
fails is skipped with a logged warning, never breaking the import.

Names: lowercase ``[a-z0-9][a-z0-9._-]*``, at most 64 characters, not ending in
a weights-file suffix, and never the name of a built-in model or of an
evaluation baseline (``gray``, ``levin``).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tinct.models import registry
from tinct.models._user_meta import META_KEY, UserModel, user_model_from_info, validate_name

__all__ = [
    "MAX_USER_MODELS",
    "USER_MODELS_ENV",
    "UserModel",
    "check_new_name",
    "file_signature",
    "generation",
    "get_user_model",
    "is_user_model",
    "list_user_models",
    "refresh",
    "refresh_if_changed",
    "remove_user_model",
    "save_user_model",
    "user_models_dir",
    "validate_name",
]

log = logging.getLogger(__name__)

#: Environment variable naming the user-model folder (tests, portable installs).
USER_MODELS_ENV = "TINCT_USER_MODELS"
#: Most files registered from the folder (the first ones in sorted order).
MAX_USER_MODELS = 256
_SUFFIX = ".safetensors"

_LOCK = threading.RLock()
#: path -> ((mtime_ns, size), UserModel) of the files registered now.
_KNOWN: dict[str, tuple[tuple[int, int], UserModel]] = {}
_LISTING: tuple[Any, ...] | None = None
#: Set by the first :func:`refresh`, which :mod:`tinct.models` runs once every
#: built-in family is registered: no lookup scans the folder before that, so a
#: user file can never take a built-in name.
_READY = False
#: Bumped whenever a rescan changes the registered user models.
_GENERATION = 0


def user_models_dir() -> Path:
    """The user-model folder (``$TINCT_USER_MODELS`` or the platform data folder); not created."""
    env = os.environ.get(USER_MODELS_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("tinct")) / "models"


def check_new_name(name: str, *, replace: bool = False) -> str:
    """Validate a name for a new user model: not built in, not taken unless ``replace``.

    Returns:
        The name in its stored form.

    Raises:
        ValueError: Invalid name, a built-in model's name, or an existing user
            model's name without ``replace``.
    """
    key = validate_name(name)
    with _LOCK:
        refresh_if_changed()
        if _is_builtin(key):
            raise ValueError(f"{key!r} is the name of a built-in model; choose another name")
        if key in _by_name() and not replace:
            raise ValueError(f"a user model named {key!r} exists already (replace it, or rename)")
    return key


def _is_builtin(name: str) -> bool:
    rec = registry._REGISTRY.get(name)
    return rec is not None and not _is_user_record(rec)


def _is_user_record(rec: registry.ModelRecord) -> bool:
    return rec.weights is not None and rec.weights.folder is not None


def _by_name() -> dict[str, UserModel]:
    return {um.name: um for _, um in _KNOWN.values()}


def list_user_models() -> list[UserModel]:
    """The registered user models, sorted by name (rescanning the folder if it changed)."""
    with _LOCK:
        refresh_if_changed()
        return sorted(_by_name().values(), key=lambda u: u.name)


def get_user_model(name: str) -> UserModel:
    """The user model registered as ``name``.

    Raises:
        tinct.models.UnknownModelError: No user model of that name.
    """
    key = str(name).strip().lower()
    with _LOCK:
        found = _by_name().get(key)
        if found is None and refresh_if_changed():
            found = _by_name().get(key)
    if found is None:
        known = ", ".join(sorted(_by_name())) or "none"
        raise registry.UnknownModelError(f"no user model {name!r}; user models: {known}")
    return found


def is_user_model(name: str) -> bool:
    """True when ``name`` is a registered user model (no rescan)."""
    return str(name).strip().lower() in _by_name()


def file_signature(name: str) -> str | None:
    """``"<mtime_ns>-<size>"`` of a user model's file (a cache key part), else None."""
    um = _by_name().get(str(name).strip().lower())
    if um is None:
        return None
    try:
        st = um.path.stat()
    except OSError:
        return None
    return f"{st.st_mtime_ns}-{st.st_size}"


def _listing(folder: Path) -> tuple[Any, ...]:
    try:
        entries = sorted(
            (e.name, e.stat().st_mtime_ns, e.stat().st_size)
            for e in os.scandir(folder)
            if e.name.endswith(_SUFFIX) and e.is_file()
        )
    except OSError:
        entries = []
    return (str(folder), *entries[:MAX_USER_MODELS])


def generation() -> int:
    """A number that changes whenever the registered user models do (rescanning first).

    Front ends that cache a model list (the bridge server's) compare it to know
    when to list again.
    """
    with _LOCK:
        refresh_if_changed()
        return _GENERATION


def refresh_if_changed() -> bool:
    """Rescan the folder if its listing (names, times, sizes) changed; True if it did."""
    with _LOCK:
        if not _READY or _listing(user_models_dir()) == _LISTING:
            return False
        refresh()
        return True


def refresh() -> list[UserModel]:
    """Rescan the user-model folder and bring the registry in line with it.

    New or changed files are read and registered, files that went away are
    unregistered, unchanged ones are kept as they are. A file that is not a
    valid user model is skipped with a logged warning.

    Returns:
        The registered user models, sorted by name.
    """
    global _LISTING, _READY, _GENERATION
    with _LOCK:
        _READY = True
        before = {p: sig for p, (sig, _) in _KNOWN.items()}
        folder = user_models_dir()
        listing = _listing(folder)
        present = {str(folder / name): (mtime, size) for name, mtime, size in listing[1:]}
        _LISTING = listing  # first: lookups made while registering do not rescan
        for path in [p for p, (sig, _) in _KNOWN.items() if present.get(p) != sig]:
            _forget(path)
        for path, sig in present.items():
            if path not in _KNOWN:
                try:
                    _register(Path(path), sig)
                except Exception as exc:  # one broken file never breaks the others
                    log.warning("tinct: skipping user model file %s: %s", path, exc)
        if {p: sig for p, (sig, _) in _KNOWN.items()} != before:
            _GENERATION += 1
        return sorted(_by_name().values(), key=lambda u: u.name)


def _forget(path: str) -> None:
    _, um = _KNOWN.pop(path)
    rec = registry._REGISTRY.get(um.name)
    if rec is not None and _is_user_record(rec):
        registry.unregister_model(um.name)


def _register(path: Path, sig: tuple[int, int]) -> UserModel:
    """Check one file and register it; raises ValueError for anything amiss."""
    from tinct.models import weights as _w
    from tinct.models._from_file import check_against_tensors, record_from_metadata

    name = validate_name(path.stem)
    if path.stem != name:
        raise ValueError("the file name is not a valid lowercase model name")
    if name in registry._REGISTRY:
        raise ValueError(f"{name!r} is already a registered model")
    shapes, meta = _w.read_weights_header(path)
    base = registry._REGISTRY.get(str(meta.get("model", "")))
    if base is None or _is_user_record(base):
        raise ValueError(f"its metadata names no built-in model ({meta.get('model')!r})")
    record = record_from_metadata(meta, path)
    check_against_tensors(record, shapes, path)
    um = user_model_from_info(name, path, record.name, meta.get(META_KEY))
    if um.decoder:  # the user model's own decoding default (the file's config never sets it)
        record = dataclasses.replace(
            record, config=dataclasses.replace(record.config, default_decoder=um.decoder)
        )
    metrics = (("heldout_psnr_auto", um.score),) if um.score is not None else ()
    registry.register_model(
        dataclasses.replace(
            record,
            name=name,
            display_name=f"{name} (user model)",
            description=um.summary(),
            weights=registry.Weights(
                file_name=path.name,
                folder=str(path.parent),
                sha256=_w.sha256sum(path),
                size=sig[1],
                license="yours (trained from your examples)",
                citation=record.weights.citation if record.weights else record.paper,
                format="safetensors",
                metrics=metrics,
            ),
            notes=f"user model in {path.parent}",
        )
    )
    _KNOWN[str(path)] = (sig, um)
    return um


def save_user_model(
    model: torch.nn.Module,
    name: str,
    info: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
    *,
    replace: bool = False,
) -> UserModel:
    """Write a trained network as a user model and register it.

    The file is written under a temporary name and moved into place, so a
    half-written file is never listed.

    Args:
        model: The network, with ``.record`` (from :func:`tinct.load_model`).
        name: The new model's name (see :func:`validate_name`).
        info: :class:`UserModel` fields: ``recipe`` (required: the built-in
            architecture), ``base``, ``data``, ``minutes``, ``steps``,
            ``score``, ``base_score``, ``held_out``, ``decoder``.
        metadata: Further metadata for the file (training configuration, metrics).
        replace: Overwrite an existing user model of that name.

    Returns:
        The registered model.

    Raises:
        ValueError: Bad or taken name, or ``info`` without a built-in ``recipe``.
    """
    from tinct.models.weights import save_weights

    key = check_new_name(name, replace=replace)
    recipe = str(info.get("recipe", ""))
    base = registry._REGISTRY.get(recipe)
    if base is None or _is_user_record(base):
        raise ValueError(f"info['recipe'] must name a built-in model, got {recipe!r}")
    fields = {f.name for f in dataclasses.fields(UserModel)} - {"name", "path"}
    stored = {k: v for k, v in info.items() if k in fields}
    stored.setdefault("created", datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{key}{_SUFFIX}"
    tmp = folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        save_weights(model, tmp, {**(metadata or {}), "model": recipe, META_KEY: stored})
        with _LOCK:
            os.replace(tmp, final)
            refresh()
    finally:
        tmp.unlink(missing_ok=True)
    return get_user_model(key)


def remove_user_model(name: str) -> Path:
    """Unregister a user model and delete its file; returns the deleted path.

    Raises:
        tinct.models.UnknownModelError: No user model of that name (built-in
            models are never removed).
    """
    key = str(name).strip().lower()
    with _LOCK:
        if _is_builtin(key) and not is_user_model(key):
            known = ", ".join(sorted(_by_name())) or "none"
            raise registry.UnknownModelError(
                f"{key!r} is a built-in model, which stays; only user models are removed "
                f"(user models: {known})"
            )
        um = get_user_model(name)
        um.path.unlink(missing_ok=True)
        refresh()
    return um.path


registry.on_unknown_name(refresh_if_changed)  # a model trained since the last scan
