"""``tinct.engine.imagefiles``: pixels read the way a viewer shows them."""

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from tinct.engine import imagefiles as F


def _pattern(h: int = 6, w: int = 10) -> np.ndarray:
    """A non-square, asymmetric gray image: every pixel a different value."""
    return (np.arange(h * w, dtype=np.uint8) * 4).reshape(h, w)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_does(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.png"
    exif = Image.Exif()
    exif[F.ORIENTATION_TAG] = orientation
    Image.fromarray(_pattern()).save(path, exif=exif.tobytes())
    with Image.open(path) as im:
        shown = np.asarray(ImageOps.exif_transpose(im))
    got = F.read_image(path)
    assert got.shape == shown.shape
    np.testing.assert_array_equal(got, shown)


def test_a_sideways_phone_jpeg_comes_out_upright(tmp_path):
    upright = np.zeros((40, 60), np.uint8)
    upright[:10] = 255  # a bright sky on top
    exif = Image.Exif()
    exif[F.ORIENTATION_TAG] = 6  # stored turned 90 degrees anticlockwise
    path = tmp_path / "phone.jpg"
    Image.fromarray(np.rot90(upright)).save(path, exif=exif.tobytes(), quality=95)
    got = F.read_image(path)
    assert got.shape == (40, 60)
    assert got[:10].mean() > 200 and got[15:].mean() < 50


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_tiff_orientation_tag_is_applied_to_rows_and_columns(tmp_path, orientation):
    rgb = np.dstack([_pattern(), _pattern()[::-1], 255 - _pattern()])
    path = tmp_path / "o.tif"
    tifffile.imwrite(path, rgb, photometric="rgb", extratags=[(274, "H", 1, orientation, True)])
    k = {3: 2, 6: -1, 8: 1}[orientation]  # numpy's rot90 turns anticlockwise
    np.testing.assert_array_equal(F.read_image(path), np.rot90(rgb, k))


def test_unknown_orientation_values_leave_the_pixels_as_stored():
    image = _pattern()
    for value in (0, 1, 9, 65535):
        assert F.oriented(image, value) is image
