"""The ``tinct`` command's errors: a table of user mistakes run as a user runs them.

Every mistake runs in a subprocess (``python -m tinct ...``). None may print a
traceback; a usage error exits with 2 and prints one line that names the flag
(or argument) at fault; a runtime failure (an unwritable folder, a corrupt
image among the inputs) exits with 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
#: A folder nobody can create anything in, not even root.
NOWHERE = "/proc/tinct-no-such-dir"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rgb = np.dstack([np.tile(np.arange(48, dtype=np.uint8) * 5, (32, 1))] * 3)
    Image.fromarray(rgb[..., 0]).save(d / "a.png")
    Image.fromarray(rgb[..., 0]).save(d / "a.jpg")
    Image.fromarray(rgb).save(d / "colour.png")
    (d / "notimage.png").write_bytes(b"this is not an image")
    (d / "notes.txt").write_text("hello")
    (d / "empty.csv").write_text("")
    (d / "header_only.csv").write_text("row,col,r,g,b\n")
    (d / "bad_header.csv").write_text("row,col,hue\n1,2,3\n")
    (d / "hints.csv").write_text("row,col,r,g,b\n5,5,255,0,0\n")
    (d / "bigsize.json").write_text('[{"row": 5, "col": 5, "color": [255, 0, 0], "size": 1e308}]')
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (d / "a_file").write_text("not a folder")
    (d / "a.mp4").write_bytes(b"not a video")  # refused before it is read
    for sub in ("in", "empty", "corrupt", "allbroken", "self", "nested"):
        (d / sub).mkdir()
    Image.fromarray(rgb[..., 0]).save(d / "small.png")
    Image.fromarray(rgb[..., 0]).save(d / "self" / "small_colorized.png")  # small.png's output
    Image.fromarray(rgb[..., 0]).save(d / "nested" / "n.png")
    tifffile.imwrite(d / "stack.tif", np.zeros((3, 32, 48), np.uint8), photometric="minisblack")
    Image.fromarray(np.linspace(0, 65535, 32 * 48).reshape(32, 48).astype(np.uint16)).save(
        d / "deep16.png"
    )
    from astropy.io import fits  # the dev extra has it (the fits extra for users)

    fits.PrimaryHDU(np.zeros((3, 32, 48), np.float32)).writeto(d / "cube.fits")  # a cube
    os.mkfifo(d / "fifo.png")
    Image.fromarray(rgb).save(d / "in" / "x.png")
    Image.fromarray(rgb).save(d / "corrupt" / "good.png")
    (d / "corrupt" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (d / "allbroken" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return d


def _cases(d: Path) -> list[tuple[str, list[str], int, str]]:
    """(case id, arguments, exit status, text the one error line must contain)."""
    a, colour, out = str(d / "a.png"), str(d / "colour.png"), str(d / "out")
    col = ["colorize", a, "-o", out]
    batch = ["batch", str(d / "in"), str(d / "bout")]
    ev = ["evaluate", "--models", "gray", "--data", str(d / "in"), "--out", str(d / "rep")]
    tr = ["train", "--data", str(d / "in"), "--out", str(d / "run"), "--steps", "1"]
    return [
        ("unknown-command", ["frobnicate"], 2, "frobnicate"),
        ("colorize-no-input", ["colorize"], 2, "IN"),
        ("colorize-no-output", ["colorize", a], 2, "-o"),
        ("colorize-missing-input", ["colorize", str(d / "nope.png"), "-o", out], 2, "IN"),
        ("negative-temperature", [*col, "--temperature", "-1"], 2, "--temperature"),
        ("text-temperature", [*col, "--temperature", "warm"], 2, "--temperature"),
        ("unknown-decoder", [*col, "--decoder", "nope"], 2, "--decoder"),
        ("decoder-model-lacks", [*col, "--decoder", "larsson"], 2, "--decoder"),
        ("tiny-tile", [*col, "--tile", "5"], 2, "--tile"),
        ("overlap-not-below-tile", [*col, "--tile", "64", "--tile-overlap", "64"], 2,
         "--tile-overlap"),
        ("percentiles-reversed", [*col, "--percentiles", "90", "10"], 2, "--percentiles"),
        ("unknown-normalize", [*col, "--normalize", "zscore"], 2, "--normalize"),
        ("unknown-device", [*col, "--device", "gpu"], 2, "--device"),
        ("mrf-iters-huge", [*col, "--mrf-iters", "1e9"], 2, "--mrf-iters"),
        ("unknown-model", [*col, "--model", "no-such-model"], 2, "--model"),
        ("missing-weights-file", [*col, "--model", str(d / "x.safetensors")], 2, "--model"),
        ("not-a-weights-file", [*col, "--model", str(d / "notes.txt.safetensors")], 2,
         "--model"),
        ("model-without-weights", [*col, "--model", "tinct-small"], 2, "--model"),
        ("levin-without-hints", [*col, "--model", "levin"], 2, "--hints"),
        ("missing-hints-file", [*col, "--hints", str(d / "nope.csv")], 2, "--hints"),
        ("empty-hints-file", [*col, "--hints", str(d / "empty.csv")], 2, "--hints"),
        ("header-only-hints", [*col, "--hints", str(d / "header_only.csv")], 2, "--hints"),
        ("bad-hints-header", [*col, "--hints", str(d / "bad_header.csv")], 2, "--hints"),
        ("hint-size-overflows", [*col, "--hints", str(d / "bigsize.json")], 2, "--hints"),
        ("hints-nested-deeply", [*col, "--hints", str(d / "deep.json")], 2, "--hints"),
        ("hints-a-directory", [*col, "--hints", str(d / "in")], 2, "is a directory"),
        ("reference-not-an-image", [*col, "--reference", str(d / "notimage.png")], 2,
         "--reference"),
        ("reference-text-file", [*col, "--reference", str(d / "notes.txt")], 2, "--reference"),
        ("reference-gray", [*col, "--reference", a], 2, "--reference"),
        ("output-name-clash", ["colorize", a, str(d / "a.jpg"), "-o", out], 2, "IN"),
        ("video-into-an-image", ["colorize", str(d / "a.mp4"), "-o", str(d / "v.png")], 2,
         "-o"),
        ("image-into-a-video", ["colorize", a, "-o", str(d / "v.mp4")], 2, "-o"),
        ("output-suffix-typo", ["colorize", a, "-o", str(d / "out.pgn")], 2, "-o"),
        ("video-image-name-clash", ["colorize", a, str(d / "a.mp4"), "-o", out], 2, "IN"),
        ("output-folder-is-a-file", ["colorize", a, colour, "-o", str(d / "a_file")], 2, "-o"),
        ("several-inputs-into-a-file-name", ["colorize", a, colour, "-o", str(d / "many.png")], 2,
         "-o: 2 inputs need an output folder"),
        ("output-unwritable", ["colorize", a, "-o", f"{NOWHERE}/o.png"], 1, "cannot create"),
        ("output-is-the-input", ["colorize", a, "-o", a], 2, "-o: would overwrite the input"),
        ("output-is-another-input", ["colorize", str(d / "self" / "small_colorized.png"),
                                     str(d / "small.png"), "-o", str(d / "self")], 2,
         "-o: would overwrite the input"),
        ("fits-output", ["colorize", a, "-o", str(d / "o.fits")], 2, "-o"),
        ("colorize-16-bit-jpeg", ["colorize", str(d / "deep16.png"), "-o", str(d / "d.jpg"),
                                  "--output-depth", "16"], 2, "--output-depth"),
        ("unknown-output-depth", [*col, "--output-depth", "12"], 2, "--output-depth"),
        ("stack-into-a-jpeg", ["colorize", str(d / "stack.tif"), "-o", str(d / "s.jpg")], 2,
         "-o"),
        ("fits-cube-into-a-png", ["colorize", str(d / "cube.fits"), "-o", str(d / "c.png")], 2,
         "-o: " + str(d / "cube.fits") + " is a stack of 3 images"),
        ("input-is-a-directory", ["colorize", str(d / "in"), "-o", out], 2,
         "IN: " + str(d / "in") + " is a directory"),
        ("input-is-a-fifo", ["colorize", str(d / "fifo.png"), "-o", out], 2,
         "is not a regular file"),
        ("reference-is-a-directory", [*col, "--reference", str(d / "in")], 2,
         "--reference: " + str(d / "in") + " is a directory"),
        ("one-corrupt-input", ["colorize", a, str(d / "notimage.png"), "-o", out, "-q"], 1,
         "notimage.png"),
        ("batch-missing-input", ["batch", str(d / "nope"), str(d / "bout")], 2, "IN_DIR"),
        ("batch-empty-input", ["batch", str(d / "empty"), str(d / "bout")], 2, "IN_DIR"),
        ("batch-onto-a-file", ["batch", str(d / "in"), str(d / "a_file")], 2, "OUT_DIR"),
        ("batch-unwritable", ["batch", str(d / "in"), f"{NOWHERE}/out"], 1, "cannot create"),
        ("batch-unknown-model", [*batch, "--model", "no-such-model"], 2, "--model"),
        ("batch-zero-workers", [*batch, "--workers", "0"], 2, "--workers"),
        ("batch-huge-workers", [*batch, "--workers", "100000"], 2, "--workers"),
        ("batch-huge-threads", [*batch, "--threads-per-worker", "100000"], 2,
         "--threads-per-worker"),
        ("batch-into-itself", ["batch", str(d / "nested"), str(d / "nested")], 2, "OUT_DIR"),
        ("batch-around-itself", ["batch", str(d / "nested"), str(d)], 2, "OUT_DIR"),
        ("batch-hints-only-model", [*batch, "--model", "levin"], 2, "--model"),
        ("batch-bogus-scheduler", [*batch, "--scheduler", "bogus"], 2, "--scheduler"),
        ("batch-out-under-a-file", ["batch", str(d / "in"), str(d / "a_file" / "x")], 2,
         "OUT_DIR: cannot create"),
        ("evaluate-out-under-a-file", [*ev[:-1], str(d / "a_file" / "x")], 2, "--out"),
        ("train-out-under-a-file", [*tr[:4], str(d / "a_file" / "x"), *tr[5:]], 2, "--out"),
        ("colorize-out-under-a-file", ["colorize", a, "-o", str(d / "a_file" / "x.png")], 2,
         "-o"),
        ("demo-unknown-suffix", ["demo", "-o", str(d / "x.xyz")], 2, "-o"),
        ("demo-no-suffix", ["demo", "-o", str(d / "x")], 2, "has no suffix"),
        ("demo-out-under-a-file", ["demo", "-o", str(d / "a_file" / "x.png")], 2, "-o"),
        ("gimp-dir-is-a-file", ["gimp", "install", "--gimp-dir", str(d / "a_file")], 2,
         "--gimp-dir"),
        ("demo-hints-only-model", ["demo", "-o", str(d / "d.png"), "--model", "levin"], 2,
         "--model"),
        ("evaluate-missing-data", ["evaluate", "--data", str(d / "nope"), "--out", "r"], 2,
         "--data"),
        ("evaluate-empty-data", ["evaluate", "--data", str(d / "empty"), "--out", "r"], 2,
         "--data"),
        ("evaluate-unknown-model", [*ev[:2], "no-such-model", *ev[3:]], 2, "--models"),
        ("evaluate-missing-weights", [*ev[:2], str(d / "w.safetensors"), *ev[3:]], 2,
         "--models"),
        ("evaluate-temporal", [*ev, "--temporal"], 2, "--temporal"),
        ("evaluate-negative-hints", [*ev, "--hints=-1"], 2, "--hints"),
        ("evaluate-text-hints", [*ev, "--hints", "some"], 2, "--hints"),
        ("evaluate-huge-hints", [*ev, "--hints", "99999999999999999999"], 2, "--hints"),
        ("evaluate-more-hints-than-pixels", [*ev, "--hints", "0,65537"], 2, "--hints"),
        ("evaluate-zero-limit", [*ev, "--limit", "0"], 2, "--limit"),
        ("evaluate-negative-seed", [*ev, "--seed", "-1"], 2, "--seed"),
        ("evaluate-out-is-a-file", [*ev[:-1], str(d / "a_file")], 2, "--out"),
        ("evaluate-unwritable-out", [*ev[:-1], f"{NOWHERE}/rep"], 1, "cannot create"),
        ("evaluate-no-readable-image", ["evaluate", "--models", "gray", "--data",
                                        str(d / "allbroken"), "--out", str(d / "rep2")], 1,
         "broken.png"),
        ("train-no-budget", tr[:-2], 2, "--steps"),
        ("train-unknown-recipe", [*tr, "--recipe", "nope"], 2, "--recipe"),
        ("train-untrainable-recipe", [*tr, "--recipe", "levin"], 2, "--recipe"),
        ("train-empty-data", ["train", "--data", str(d / "empty"), "--out", "r", "--steps", "1"],
         2, "--data"),
        ("train-zero-batch", [*tr, "--batch-size", "0"], 2, "--batch-size"),
        ("train-huge-crop", [*tr, "--crop", "100000"], 2, "--crop"),
        ("train-huge-batch", [*tr, "--batch-size", "100000000"], 2, "--batch-size"),
        ("train-batch-pixels", [*tr, "--batch-size", "1024", "--crop", "1024"], 2,
         "--batch-size"),
        ("train-negative-seed", [*tr, "--seed", "-1"], 2, "--seed"),
        ("train-no-readable-image", ["train", "--data", str(d / "allbroken"), "--out",
                                 str(d / "run2"), "--steps", "1", "--device", "cpu"], 1,
         "broken.png"),
        ("train-bad-name", ["train", "--data", str(d / "in"), "--steps", "1", "--name",
                            "../evil"], 2, "--name"),
        ("train-builtin-name", ["train", "--data", str(d / "in"), "--steps", "1", "--name",
                                "tinct-base"], 2, "--name"),
        ("train-replace-without-name", [*tr, "--replace"], 2, "--replace"),
        ("train-no-out-no-name", tr[:3] + tr[5:], 2, "--out"),
        ("train-name-resume", ["train", "--data", str(d / "in"), "--steps", "1", "--name",
                               "fresh", "--resume"], 2, "--resume"),
        ("train-name-untrained-base", ["train", "--data", str(d / "in"), "--steps", "1",
                                       "--name", "fresh", "--recipe", "tinct-small"], 2,
         "--recipe"),
        ("models-remove-builtin", ["models", "--remove", "tinct-base"], 2, "--remove"),
        ("serve-port-out-of-range", ["serve", "--port", "99999"], 2, "--port"),
        ("serve-unknown-model", ["serve", "--model", "no-such-model"], 2, "--model"),
        ("serve-unknown-device", ["serve", "--device", "gpu"], 2, "--device"),
        ("serve-no-pixels", ["serve", "--max-megapixels", "0"], 2, "--max-megapixels"),
        ("serve-no-hints", ["serve", "--max-hints", "0"], 2, "--max-hints"),
        ("serve-no-connections", ["serve", "--max-connections", "0"], 2, "--max-connections"),
        ("serve-no-idle", ["serve", "--idle-timeout", "-1"], 2, "--idle-timeout"),
        ("demo-unknown-model", ["demo", "--model", "no-such-model"], 2, "--model"),
        ("demo-unwritable", ["demo", "-o", f"{NOWHERE}/d.png"], 1, "cannot create"),
        ("models-unknown-flag", ["models", "--bogus"], 2, "--bogus"),
    ]  # fmt: skip


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TINCT_DEBUG": ""}
    return subprocess.run(
        [sys.executable, "-m", "tinct", *args],
        capture_output=True, text=True, timeout=300, cwd=cwd, env=env,
    )  # fmt: skip


@pytest.mark.slow
def test_user_mistakes_never_print_a_traceback(files):
    cases = _cases(files)
    assert len(cases) >= 30
    with ThreadPoolExecutor(max_workers=3) as pool:
        procs = list(pool.map(lambda c: _run(c[1], files), cases))
    problems = []
    for (case, args, code, needle), proc in zip(cases, procs, strict=True):
        text = proc.stdout + proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
        why = []
        if "Traceback" in text:
            why.append("traceback")
        if proc.returncode != code:
            why.append(f"exit {proc.returncode}, expected {code}")
        if code == 2 and (len(proc.stderr.strip().splitlines()) != 1 or needle not in proc.stderr):
            why.append(f"not one line naming {needle!r}")
        if code == 1 and not any(needle in ln for ln in proc.stderr.splitlines()):
            why.append(f"no line naming {needle!r}")
        if code == 2 and not lines:
            why.append("no 'error:' line")
        if why:
            problems.append(f"{case}: {', '.join(why)}\n    tinct {' '.join(args)}\n    "
                            + proc.stderr.strip()[-600:].replace("\n", "\n    "))  # fmt: skip
    assert not problems, "\n".join(problems)
