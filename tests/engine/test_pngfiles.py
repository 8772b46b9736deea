"""``tinct.engine.pngfiles``: 16-bit colour PNGs written and read with every sample kept."""

import struct

import numpy as np
import pytest
from PIL import Image

from tinct.engine import imagefiles as F
from tinct.engine import pngfiles as P


def _ramp(h: int = 12, w: int = 9, c: int = 3) -> np.ndarray:
    """Distinct 16-bit samples whose low bytes differ (Pillow keeps only the high byte)."""
    return (np.arange(h * w * c, dtype=np.uint32) * 197 % 65536).astype(np.uint16).reshape(h, w, c)


def _with_chunk(data: bytes, kind: bytes, body: bytes) -> bytes:
    """The PNG ``data`` with one more chunk just before its first IDAT."""
    at = data.index(b"IDAT") - 4
    return data[:at] + P._chunk(kind, body) + data[at:]


@pytest.mark.parametrize("channels", [3, 4])
def test_what_write_png16_writes_read_image_reads_back_exactly(tmp_path, channels):
    """Pillow alone read these files as 8-bit RGB: every sample lost its low byte."""
    image = _ramp(c=channels)
    path = tmp_path / "deep.png"
    P.write_png16(path, image)
    got = F.read_image(path)
    assert got.dtype == np.uint16 and got.shape == image.shape
    np.testing.assert_array_equal(got, image)


def test_a_libpng_file_with_every_row_filter_reads_exactly(tmp_path):
    """libpng's adaptive filtering (Paeth, Average, Up, Sub) on noise, RGB 16 bits."""
    imagecodecs = pytest.importorskip("imagecodecs")
    image = np.random.default_rng(0).integers(0, 65536, (61, 47, 3)).astype(np.uint16)
    path = tmp_path / "libpng.png"
    path.write_bytes(imagecodecs.png_encode(image, level=9))
    np.testing.assert_array_equal(F.read_image(path), image)


def test_gray_with_alpha_and_a_transparent_colour_come_back_as_rgba(tmp_path):
    """Gray + alpha has three equal channels, as Pillow's 8-bit gray + alpha does; a tRNS
    colour becomes alpha 0 where it is and 65535 elsewhere."""
    imagecodecs = pytest.importorskip("imagecodecs")
    gray = (np.arange(40, dtype=np.uint16) * 1601).reshape(5, 8)
    alpha = np.full((5, 8), 40000, np.uint16)
    path = tmp_path / "la.png"
    path.write_bytes(imagecodecs.png_encode(np.dstack([gray, alpha])))
    got = F.read_image(path)
    assert got.shape == (5, 8, 4) and got.dtype == np.uint16
    for c in range(3):
        np.testing.assert_array_equal(got[..., c], gray)
    np.testing.assert_array_equal(got[..., 3], alpha)
    image = _ramp(4, 4)
    keyed = tmp_path / "keyed.png"
    P.write_png16(keyed, image)
    key = tuple(int(v) for v in image[1, 2])
    keyed.write_bytes(_with_chunk(keyed.read_bytes(), b"tRNS", struct.pack(">HHH", *key)))
    got = F.read_image(keyed)
    np.testing.assert_array_equal(got[..., :3], image)
    assert got[1, 2, 3] == 0 and (got[..., 3] == 0).sum() == 1 and got[0, 0, 3] == 65535


def test_the_exif_orientation_of_a_deep_png_is_applied(tmp_path):
    image = _ramp(3, 5)
    exif = Image.Exif()
    exif[F.ORIENTATION_TAG] = 6  # stored sideways: shown turned 90 degrees clockwise
    path = tmp_path / "turned.png"
    P.write_png16(path, image)
    body = exif.tobytes()
    body = body[6:] if body.startswith(b"Exif\0\0") else body
    path.write_bytes(_with_chunk(path.read_bytes(), b"eXIf", body))
    np.testing.assert_array_equal(F.read_image(path), np.rot90(image, -1))


def test_is_deep_colour_tells_from_the_header_alone(tmp_path):
    deep = tmp_path / "deep.png"
    P.write_png16(deep, _ramp())
    assert P.is_deep_colour(deep.read_bytes()[:26])
    for mode, array in (
        ("I;16", np.zeros((4, 4), np.uint16)),
        ("RGB", np.zeros((4, 4, 3), np.uint8)),
    ):
        shallow = tmp_path / f"{mode[0]}.png"
        Image.fromarray(array).save(shallow)  # 16-bit gray (Pillow reads it) and 8-bit RGB
        assert not P.is_deep_colour(shallow.read_bytes()[:26])
    assert not P.is_deep_colour(b"")
    assert not P.is_deep_colour(deep.read_bytes()[:20])
    assert not P.is_deep_colour(b"II*\0" + bytes(30))


def test_a_broken_deep_png_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "cut.png"
    P.write_png16(path, _ramp(40, 40))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError) as caught:
        F.read_image(path)
    assert str(caught.value).startswith(f"{path}: not a readable PNG file (")
    assert "\n" not in str(caught.value)


def test_a_deep_png_larger_than_its_pixels_can_be_is_refused_before_it_is_read(tmp_path):
    """A 2 x 2 image followed by more than its slack of trailing bytes is not read whole."""
    path = tmp_path / "padded.png"
    P.write_png16(path, _ramp(2, 2))
    with path.open("ab") as fh:
        fh.truncate(path.stat().st_size + P.SLACK_BYTES + 100)  # sparse: costs no disk
    with pytest.raises(OSError, match="larger than a 2 x 2 PNG can be"):
        F.read_image(path)


def test_the_size_a_deep_png_declares_is_checked_before_it_is_decoded(tmp_path):
    path = tmp_path / "big.png"
    P.write_png16(path, _ramp(30, 40))
    with pytest.raises(F.ImageTooLargeError, match="40 x 30"):
        F.read_image(path, max_pixels=1000)
