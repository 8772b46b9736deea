"""tinct.engine.tifffiles: what a TIFF's pages may be before tifffile sorts them."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from tinct.engine.filelimits import ImageTooLargeError
from tinct.engine.imagefiles import read_image, tiff_shape
from tinct.engine.tifffiles import MAX_PAGES


def test_one_stack_of_more_pages_than_the_bound_is_read(tmp_path):
    path = tmp_path / "stack.tif"  # tifffile's shaped layout: one series however long
    tifffile.imwrite(path, np.arange(MAX_PAGES * 3, dtype=np.uint8).reshape(-1, 1, 1) * np.ones(
        (1, 2, 2), np.uint8), photometric="minisblack")  # fmt: skip
    assert tiff_shape(path) == (MAX_PAGES * 3, 2, 2)
    assert read_image(path)[-1, 0, 0] == (MAX_PAGES * 3 - 1) % 256


def test_pages_each_their_own_series_are_bounded(tmp_path, monkeypatch):
    from tinct.engine import tifffiles

    monkeypatch.setattr(tifffiles, "MAX_PAGES", 5)
    path = tmp_path / "loose.tif"
    with tifffile.TiffWriter(path) as tif:
        for i in range(6):
            tif.write(np.full((2, 2), i, np.uint8), contiguous=False, photometric="minisblack")
    for read in (tiff_shape, read_image):
        with pytest.raises(ImageTooLargeError, match="holds 6 pages that are not one stack"):
            read(path)
    with tifffile.TiffWriter(path) as tif:  # at the bound: read as tifffile reads it
        for i in range(5):
            tif.write(np.full((2, 2), i, np.uint8), contiguous=False, photometric="minisblack")
    assert read_image(path).shape == (2, 2)


def test_an_imagej_stack_is_one_stack(tmp_path, monkeypatch):
    from tinct.engine import tifffiles

    monkeypatch.setattr(tifffiles, "MAX_PAGES", 2)
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, np.zeros((6, 4, 4), np.uint8), imagej=True, metadata={"axes": "ZYX"})
    assert len(tifffile.TiffFile(path).pages) == 6  # six pages, one ImageJ stack
    assert tiff_shape(path) == (6, 4, 4) and read_image(path).shape == (6, 4, 4)
