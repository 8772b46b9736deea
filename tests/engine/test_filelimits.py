"""``tinct.engine.filelimits.open_regular``: a file is checked on the descriptor that is read.

A FIFO named like an image waits for a writer when it is opened; checking the path and
then opening it left a gap in which the path could be swapped for one (the reader then
hung). Each reader now opens without blocking, checks the opened descriptor and reads it.
"""

import json
import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from engine_helpers import finishes_despite_fifo
from tinct import regularfiles
from tinct.engine import filelimits
from tinct.engine import imagefiles as F
from tinct.engine.hints import read_hints_file

fits = pytest.importorskip("astropy.io.fits")

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")


def _outcome(fn, fifo) -> BaseException | object:
    """What ``fn()`` raised or returned; fails the test if it blocked on ``fifo``."""
    got: list[object] = []

    def run() -> None:
        try:
            got.append(fn())
        except BaseException as exc:  # recorded for the assertion
            got.append(exc)

    if not finishes_despite_fifo(run, fifo, 20):
        pytest.fail(f"blocked on the FIFO {fifo.name}")
    return got[0]


def _swap_after_check(monkeypatch, path) -> None:
    """Make the regular-file check pass on ``path``, then put a FIFO in its place."""
    original = filelimits.check_regular_file

    def check_then_swap(p) -> None:
        original(p)
        if os.fspath(p) == os.fspath(path) and not path.is_fifo():
            path.unlink()
            os.mkfifo(path)

    monkeypatch.setattr(regularfiles, "check_regular_file", check_then_swap)  # open_regular's
    monkeypatch.setattr(filelimits, "check_regular_file", check_then_swap)
    for module in ("tinct.engine.hints", "tinct.scale.file_task"):  # callers of the check
        monkeypatch.setattr(f"{module}.check_regular_file", check_then_swap, raising=False)


@pytest.mark.parametrize("name", ["a.png", "b.tif", "c.fits", "h.json", "shape.tif"])
def test_a_file_swapped_for_a_fifo_after_the_check_is_refused_not_waited_on(
    tmp_path, monkeypatch, name
):
    """read_hints_file checked the path, then opened it: a FIFO put there hung it."""
    from tinct.engine.fitsfiles import read_fits

    gray = (np.arange(48, dtype=np.uint8) * 5).reshape(6, 8)
    path = tmp_path / name
    read = {"a.png": F.read_image, "b.tif": F.read_image, "c.fits": read_fits,
            "h.json": read_hints_file, "shape.tif": F.tiff_shape}[name]  # fmt: skip
    if name.endswith(".png"):
        Image.fromarray(gray).save(path)
    elif name.endswith(".tif"):
        tifffile.imwrite(path, gray)
    elif name.endswith(".fits"):
        fits.PrimaryHDU(gray).writeto(path)
    else:
        path.write_text(json.dumps([[1, 2, 0, 0, 255]]))
    _swap_after_check(monkeypatch, path)
    got = _outcome(lambda: read(path), path)
    assert isinstance(got, OSError), got
    assert str(got) == f"{path} is not a regular file (a FIFO, a device or a broken link)"


@pytest.mark.parametrize("name", ["fifo.png", "fifo.tif", "fifo.fits", "fifo.jpg"])
def test_read_image_refuses_a_fifo_promptly(tmp_path, name):
    """read_image itself opened a FIFO (only tinct batch checked first): it waited for ever."""
    fifo = tmp_path / name
    os.mkfifo(fifo)
    for read in (F.read_image, F.tiff_shape):
        got = _outcome(lambda read=read: read(fifo), fifo)
        assert isinstance(got, OSError) and "is not a regular file" in str(got), got
    assert _outcome(lambda: F.fits_shape(fifo), fifo) is None
    assert _outcome(lambda: F.is_tiff(fifo), fifo) is name.endswith(".tif")


def test_regular_files_read_as_before(tmp_path):
    """Through the checked descriptor, each reader returns what the libraries read."""
    gray = (np.arange(48, dtype=np.uint8) * 5).reshape(6, 8)
    png, tif, fit, fgz = (tmp_path / n for n in ("a.png", "b.tif", "c.fits", "d.fits.gz"))
    Image.fromarray(gray).save(png)
    tifffile.imwrite(tif, np.stack([gray, 255 - gray]))
    fits.PrimaryHDU(gray.astype(np.int16)).writeto(fit)
    fits.PrimaryHDU(gray.astype(np.int16)).writeto(fgz)
    with Image.open(png) as im:
        np.testing.assert_array_equal(F.read_image(png), np.asarray(im))
    np.testing.assert_array_equal(F.read_image(tif), tifffile.imread(tif))
    assert F.tiff_shape(tif) == (2, 6, 8)
    for f in (fit, fgz):
        np.testing.assert_array_equal(F.read_image(f), fits.getdata(f))
        assert F.fits_shape(f) == (6, 8)
    hints = tmp_path / "h.csv"
    hints.write_text("row,col,r,g,b\n1,2,0,0,255\n")
    assert [(h.row, h.col) for h in read_hints_file(hints)] == [(1, 2)]
    with filelimits.open_regular(png) as fh:
        assert os.get_blocking(fh.fileno())  # O_NONBLOCK cleared for the reader
        assert fh.read() == png.read_bytes()


def test_without_o_nonblock_files_still_open(tmp_path, monkeypatch):
    """Where the system has no O_NONBLOCK (Windows), the file is opened and read plainly."""
    path = tmp_path / "a.bin"
    path.write_bytes(b"\x00\x01tinct")
    monkeypatch.setattr(regularfiles, "_OPEN_FLAGS", os.O_RDONLY)
    monkeypatch.delattr(os, "O_NONBLOCK")
    monkeypatch.delattr(os, "set_blocking")
    with filelimits.open_regular(path) as fh:
        assert fh.read() == b"\x00\x01tinct"


def test_what_cannot_be_opened_is_named_once(tmp_path):
    """A missing file, a folder and a broken link: one line each, naming the path."""
    with pytest.raises(FileNotFoundError, match=r"^no such file: .*missing\.png$"):
        filelimits.open_regular(tmp_path / "missing.png")
    with pytest.raises(OSError, match="is not a regular file"):
        filelimits.open_regular(tmp_path)
    (tmp_path / "broken.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(OSError, match=r"broken\.png is not a regular file"):
        filelimits.open_regular(tmp_path / "broken.png")
