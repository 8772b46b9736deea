"""User models' names and what they were made from (see :mod:`tinct.models.user_store`).

A user model's file carries a ``tinct_user_model`` metadata entry with the
fields of :class:`UserModel`; :func:`user_model_from_info` reads it back,
dropping values of the wrong type. :func:`validate_name` is the naming rule.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["META_KEY", "UserModel", "user_model_from_info", "validate_name"]

log = logging.getLogger("tinct.models.user_store")

#: Metadata key holding a user model's :class:`UserModel` fields (JSON).
META_KEY = "tinct_user_model"
_MAX_NAME = 64
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_RESERVED = frozenset({"gray", "levin"})
_BAD_SUFFIXES = (".safetensors", ".pth", ".pt", ".tmp")


@dataclass(frozen=True)
class UserModel:
    """A registered user model and what it was made from.

    Attributes:
        name: Registry name (the file stem).
        path: The ``.safetensors`` file.
        recipe: The built-in record of its architecture (e.g. ``"tinct-base"``).
        base: The model it was fine-tuned from (name or file).
        data: What it was trained on (folders, layers, number of examples).
        minutes: Training time, in minutes.
        steps: Optimiser steps.
        score: Held-out automatic PSNR of the kept weights, in dB (None if not measured).
        base_score: The same for the base model before training, in dB.
        held_out: Which examples were held out.
        decoder: Automatic decoder chosen on the held-out examples (``""`` = the
            architecture's default); it becomes the record's ``default_decoder``.
        created: ISO 8601 time the file was written.
    """

    name: str
    path: Path
    recipe: str
    base: str = ""
    data: str = ""
    minutes: float = 0.0
    steps: int = 0
    score: float | None = None
    base_score: float | None = None
    held_out: str = ""
    decoder: str = ""
    created: str = ""

    def summary(self) -> str:
        """One sentence for tables, tooltips and ``tinct models``."""
        text = f"User model fine-tuned from {self.base or self.recipe}"
        if self.data:
            text += f" on {self.data}"
        text += f" for {self.minutes:.1f} min ({self.steps} step{'' if self.steps == 1 else 's'})"
        if self.score is not None:
            text += f"; held-out automatic PSNR {self.score:.2f} dB"
            if self.base_score is not None:
                text += f" (base {self.base_score:.2f} dB)"
        return text + "."

    def info(self) -> dict[str, Any]:
        """The fields stored in the file's metadata (all but ``name`` and ``path``)."""
        d = dataclasses.asdict(self)
        del d["name"], d["path"]
        return d


def validate_name(name: str) -> str:
    """A user-model name, lowercased, or a ``ValueError`` saying what is wrong with it.

    Args:
        name: The name the user typed.

    Returns:
        The name in its stored form (stripped, lowercase).

    Raises:
        ValueError: Empty, too long, characters other than ``a-z 0-9 . _ -``
            (no path separators), a leading dot/dash/underscore, a weights-file
            suffix, or a reserved name.
    """
    if not isinstance(name, str):
        raise ValueError(f"a model name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if not key:
        raise ValueError("a model name must not be empty")
    if len(key) > _MAX_NAME:
        raise ValueError(f"a model name has at most {_MAX_NAME} characters, got {len(key)}")
    if not _NAME_RE.match(key) or ".." in key:
        raise ValueError(f"model name {name.strip()!r} {_name_problem(key)}")
    if key.endswith(_BAD_SUFFIXES):
        raise ValueError(f"model name {name!r} must not end in a file suffix")
    if key in _RESERVED:
        raise ValueError(f"model name {name!r} is reserved (an evaluation baseline)")
    return key


def _name_problem(key: str) -> str:
    """What is wrong with a lowercased name that does not match :data:`_NAME_RE`, in words.

    E.g. ``"has a space: a name has letters a-z, digits, '.', '_' and '-' only (capitals
    are stored lowercase)"``; ``"starts with '.': ..."``; ``"has '..' in it"``.
    """
    rule = "a name has letters a-z, digits, '.', '_' and '-' only (capitals are stored lowercase)"
    bad = dict.fromkeys(c for c in key if not re.match(r"[a-z0-9._-]", c))
    if bad:
        said = [_CHAR_NAMES.get(c, repr(c)) for c in bad]
        listed = said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]
        return f"has {listed}: {rule}"
    if not key[0].isalnum():
        return f"starts with {key[0]!r}: a name starts with a letter or digit"
    return "has '..' in it: a name may not hold a path that leads out of its folder"


#: How :func:`_name_problem` says a character a name may not have.
_CHAR_NAMES = {
    " ": "a space",
    "\t": "a tab",
    "/": "a path separator '/'",
    "\\": "a path separator '\\'",
}


def user_model_from_info(name: str, path: Path, recipe: str, info: Any) -> UserModel:
    """A :class:`UserModel` from a file's metadata entry (wrong types are dropped).

    Args:
        name: The model's name.
        path: Its file.
        recipe: The built-in record of its architecture.
        info: The file's ``tinct_user_model`` metadata entry (any JSON value).
    """
    info = info if isinstance(info, Mapping) else {}

    def text(key: str) -> str:
        v = info.get(key, "")
        return v[:500] if isinstance(v, str) else ""

    def number(key: str) -> float | None:
        v = info.get(key)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return float(v) if ok else None

    steps = info.get("steps", 0)
    decoder = text("decoder")
    if decoder:
        from tinct.decode import DECODERS

        if decoder not in ("ab", *DECODERS):
            log.warning("tinct: %s: unknown decoder %r ignored", path, decoder[:40])
            decoder = ""
    return UserModel(
        name=name,
        path=path,
        recipe=recipe,
        base=text("base"),
        data=text("data"),
        minutes=number("minutes") or 0.0,
        steps=int(steps) if isinstance(steps, int) and not isinstance(steps, bool) else 0,
        score=number("score"),
        base_score=number("base_score"),
        held_out=text("held_out"),
        decoder=decoder,
        created=text("created"),
    )
