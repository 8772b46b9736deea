"""``tinct serve``'s limit flags: infinite or absurd values are usage errors naming the flag."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-megapixels", "inf"),
        ("--max-megapixels", "1e30"),
        ("--max-frame-mb", "99999999"),
        ("--read-timeout", "inf"),
        ("--idle-timeout", "1e12"),
    ],
)
def test_unbounded_limits_are_refused(flag, value):
    proc = subprocess.run(
        [sys.executable, "-m", "tinct", "serve", flag, value, "--untrained"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert flag in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
