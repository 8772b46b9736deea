"""``tinct models``: list the model zoo with targets, inputs, size and weight status.

User models (fine-tuned with ``tinct train --name`` or the napari Train widget)
are listed too, with what they were made from; ``--remove NAME`` deletes one.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tinct.models.targets import get_target

__all__ = ["models_table", "register", "run"]

_COLUMNS = ("name", "display name", "target", "inputs", "params", "weights", "licence")


def register(subparsers: Any) -> None:
    """Add the ``models`` sub-command."""
    p = subparsers.add_parser(
        "models",
        help="list the available colorization models",
        description=(
            "List every registered model: what it predicts, which inputs it uses, its size, "
            "whether its weights are bundled, downloaded, downloadable, built in or still to be "
            "trained (train it yourself: `tinct train --recipe NAME`), and their licence. "
            "User models (`tinct train --name NAME`, the napari Train widget) follow, with their "
            "base model, data, training minutes and held-out automatic PSNR."
        ),
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--remove", metavar="NAME", help="delete the user model NAME (built-in models stay)"
    )
    p.set_defaults(func=run)


_USER_COLUMNS = ("name", "base", "minutes", "steps", "held-out dB", "base dB", "data")


def _db(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def user_models_table() -> list[dict[str, str]]:
    """One row per user model: what it was made from (keys = :data:`_USER_COLUMNS`, ``path``)."""
    from tinct.models import user_store

    return [
        {
            "name": um.name,
            "base": um.base or um.recipe,
            "minutes": f"{um.minutes:.1f}",
            "steps": str(um.steps),
            "held-out dB": _db(um.score),
            "base dB": _db(um.base_score),
            "data": um.data,
            "path": str(um.path),
        }
        for um in user_store.list_user_models()
    ]


def _print_table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> None:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())


def models_table() -> list[dict[str, str]]:
    """One row per registered model, values as display strings (keys = column names)."""
    from tinct.models import count_parameters, list_models
    from tinct.models.catalog import entry_for

    rows = []
    for record in list_models():
        entry = entry_for(record)
        cfg = record.config
        kind = get_target(cfg.target)
        target = kind.describe(cfg.bins_per_channel)
        if kind.has_logits and "ab" in cfg.heads:
            target += " + ab"
        inputs = [cfg.color_space.upper()[0] if cfg.color_space != "yuv" else "Y"]
        if cfg.hints:
            inputs.append("hints (required)" if cfg.hints_required else "hints")
        if cfg.global_hint:
            inputs.append("global hint")
        n = count_parameters(record)
        rows.append(
            {
                "name": record.name,
                "display name": record.display_name,
                "target": f"{target} ({cfg.color_space})",
                "inputs": " + ".join(inputs),
                "params": f"{n / 1e6:.2f} M" if n else "-",
                "weights": entry.status,
                "licence": entry.license,
            }
        )
    return rows


def _remove(name: str) -> int:
    from tinct.cli._options import UsageError
    from tinct.models import UnknownModelError, user_store

    if not name.strip():
        raise UsageError("--remove", "is empty; name the user model to delete (tinct models)")
    try:
        path = user_store.remove_user_model(name)
    except UnknownModelError as exc:
        raise UsageError("--remove", str(exc)) from None
    print(f"removed user model {name.strip().lower()} ({path})")
    return 0


def run(args: argparse.Namespace) -> int:
    """Print the tables (or JSON with ``--json``), or remove a user model; returns 0."""
    if getattr(args, "remove", None) is not None:  # --remove '' is a mistake, not no flag
        return _remove(args.remove)
    from tinct.models import user_store

    rows, users = models_table(), user_models_table()
    if getattr(args, "json", False):
        details = {u["name"]: u for u in users}
        for row in rows:
            if row["name"] in details:
                row["user_model"] = details[row["name"]]  # type: ignore[assignment]
        print(json.dumps(rows, indent=2))
        return 0
    _print_table(rows, _COLUMNS)
    if any(r["weights"] == "train it yourself" for r in rows):
        print("\ntrain it yourself: `tinct train --recipe NAME`, then load the .safetensors file.")
    if users:
        print(f"\nuser models (in {user_store.user_models_dir()}):")
        _print_table(users, _USER_COLUMNS)
    return 0
