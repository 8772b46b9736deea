"""``tinct models``: list the model zoo with targets, inputs, size and weight status."""

from __future__ import annotations

import argparse
import json
from typing import Any

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
            "trained (train it yourself: `tinct train --recipe NAME`), and their licence."
        ),
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def models_table() -> list[dict[str, str]]:
    """One row per registered model, values as display strings (keys = column names)."""
    from tinct.catalog import entry_for
    from tinct.models import count_parameters, list_models

    rows = []
    for record in list_models():
        entry = entry_for(record)
        cfg = record.config
        target = cfg.target
        if cfg.target == "channel":
            target = f"channel {cfg.bins_per_channel}x2"
        if cfg.target != "regression" and "ab" in cfg.heads:
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


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON with ``--json``); returns 0."""
    rows = models_table()
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return 0
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in _COLUMNS}
    print("  ".join(c.upper().ljust(widths[c]) for c in _COLUMNS).rstrip())
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in _COLUMNS).rstrip())
    if any(r["weights"] == "train it yourself" for r in rows):
        print("\ntrain it yourself: `tinct train --recipe NAME`, then load the .safetensors file.")
    return 0
