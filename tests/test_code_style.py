"""The code is ruff clean, lint and format, as the house rules ask (pyproject's ``[tool.ruff]``).

Run here so that CI holds every commit to it, not only the commits whose author ran ruff.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["src", "tests", "scripts", "benchmarks"]


def _ruff() -> list[str]:
    """The ruff of this environment (the ``dev`` extra installs it)."""
    beside = Path(sys.executable).with_name("ruff")
    found = str(beside) if beside.exists() else shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    return [found]


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_finds_nothing(args):
    run = subprocess.run(
        [*_ruff(), *args, *CHECKED], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, f"ruff {' '.join(args)}:\n{run.stdout[-4000:]}{run.stderr[-2000:]}"
