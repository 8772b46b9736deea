"""The code is ruff clean (lint and format) and its type hints hold (mypy), as pyproject's
``[tool.ruff]`` and ``[tool.mypy]`` ask.

Run here so that CI holds every commit to them, not only the commits whose author ran them.
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


@pytest.mark.slow
def test_mypy_finds_nothing(tmp_path):
    """The annotations hold (pyproject's non-strict ``[tool.mypy]``); about 25 s from cold."""
    beside = Path(sys.executable).with_name("mypy")
    if not beside.exists():
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    run = subprocess.run(
        [str(beside), "--cache-dir", str(tmp_path / "cache"), "src/tinct"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, f"mypy:\n{run.stdout[-6000:]}{run.stderr[-2000:]}"
