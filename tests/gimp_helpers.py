"""Running GIMP 3 in the Debian trixie chroot for the end-to-end tests (test_gimp_e2e.py).

``chroot_path()`` builds the chroot once (``scripts/gimp_chroot.sh``) or skips the test;
``run_gimp()`` runs ``scripts/gimp_e2e_driver.py`` in GIMP's batch mode there (with
``scripts/gimp_e2e_support.py`` beside it), ``messages_during()`` reads what GIMP printed
of the messages shown during one of its cases.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gimp_chroot.sh"
DRIVER = ROOT / "scripts" / "gimp_e2e_driver.py"
SUPPORT = ROOT / "scripts" / "gimp_e2e_support.py"


def chroot_path() -> Path:
    """The built and mounted chroot; skips the test where it cannot be had."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("the GIMP end-to-end test needs root (it uses chroot)")
    if shutil.which("chroot") is None:
        pytest.skip("no chroot binary")
    try:
        proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        pytest.skip("building the GIMP chroot took more than 30 minutes")
    if proc.returncode != 0:
        pytest.skip(f"the GIMP chroot cannot be built: {proc.stderr.strip()[-800:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_gimp(chroot: Path, inside: str, port: int, phase: str = "first", **env: str):
    """Run the driver in GIMP; returns (process, {case: record}, context text)."""
    lib = chroot / inside.lstrip("/") / "lib"  # the driver imports its support module here
    lib.mkdir(exist_ok=True)
    shutil.copy(SUPPORT, lib / SUPPORT.name)
    variables = [
        f"TINCT_E2E_LIB={inside}/lib",
        "PATH=/usr/bin:/bin",
        f"HOME={inside}/home",
        f"GIMP3_DIRECTORY={inside}/cfg",
        f"TINCT_CONFIG_DIR={inside}",  # registration asks the server from bridge.json here
        "LANG=C.UTF-8",
        f"TINCT_E2E_PORT={port}",
        f"TINCT_E2E_DEAD_PORT={free_port()}",
        f"TINCT_E2E_TOKEN_FILE={inside}/bridge.json",
        f"TINCT_E2E_OUT={inside}/out",
        f"TINCT_E2E_PHASE={phase}",
        *(f"{k}={v}" for k, v in env.items()),
    ]
    cmd = ["chroot", str(chroot), "/usr/bin/env", "-i", *variables, "timeout", "110",
           "gimp-console-3.0", "-i", "-d", "-f", "--batch-interpreter", "python-fu-eval",
           "-b", "-", "--quit"]  # fmt: skip
    t0 = time.monotonic()
    with open(DRIVER, "rb") as stdin:
        proc = subprocess.run(cmd, stdin=stdin, capture_output=True, timeout=120)
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    results = {}
    for line in out.splitlines():
        if line.startswith("TINCT-E2E "):
            rec = json.loads(line[len("TINCT-E2E ") :])
            results[rec["case"]] = rec
    context = f"rc={proc.returncode} ({time.monotonic() - t0:.1f}s)\n{out[-3000:]}\n{err[-3000:]}"
    return proc, results, context


_GLIB_LOG = re.compile(
    r"^\([^\n()]+:\d+\): [\w-]+-(?:WARNING|CRITICAL|DEBUG|INFO|MESSAGE) \*\*: [^\n]*$", re.M
)


def messages_during(proc: subprocess.CompletedProcess, case: str) -> list[str]:
    """The messages GIMP printed while the driver ran ``case`` (between its two markers).

    In batch mode GIMP prints each ``Gimp.message`` to its stderr as
    ``<domain>-Warning: <text>`` (the plug-in's domain is its menu label, "Tinct
    Colorize"), a blank line after; the driver brackets a case
    with ``TINCT-E2E-MARK begin <case>`` and ``... end <case>``. GLib's own log records
    (``(name:pid): LibGimp-WARNING **: ...``, such as a plug-in process's
    ``gimp_flush(): error: Broken pipe`` as it exits after GIMP closed its pipe) are GIMP's
    noise, not messages a user is shown, and are dropped.
    """
    err = _GLIB_LOG.sub("", proc.stderr.decode(errors="replace"))
    begin, end = f"TINCT-E2E-MARK begin {case}\n", f"TINCT-E2E-MARK end {case}\n"
    if begin not in err or end not in err:
        return []
    inside = err[err.index(begin) + len(begin) : err.index(end)]
    found = re.split(r"^[^\n]+?-Warning: ", inside, flags=re.M)[1:]
    return [m.strip() for m in found if m.strip()]
