"""``tinct.engine.imagefiles``: pixels read the way a viewer shows them, within bounds."""

import struct
import tracemalloc
import zlib

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


def _rgb(h: int = 6, w: int = 10) -> np.ndarray:
    return np.dstack([_pattern(h, w), _pattern(h, w)[::-1], 255 - _pattern(h, w)])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_miniswhite_tiff_reads_as_gray_levels(tmp_path, dtype):
    top = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    gray = (_pattern() / 255.0 * top).astype(dtype)
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, (top - gray).astype(dtype), photometric="miniswhite")
    got = F.read_image(path)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, gray, atol=1e-6)


def test_palette_tiff_reads_as_its_colours(tmp_path):
    path = tmp_path / "palette.tif"
    Image.fromarray(_rgb()).quantize(16).save(path)
    with Image.open(path) as im:
        shown = np.asarray(im.convert("RGB"))
    got = F.read_image(path)
    assert got.shape == (6, 10, 3)
    np.testing.assert_array_equal(got, shown)


def test_cmyk_tiff_reads_as_rgb_not_a_negative_with_alpha(tmp_path):
    path = tmp_path / "print.tif"
    Image.fromarray(_rgb()).convert("CMYK").save(path)
    got = F.read_image(path)
    assert got.shape == (6, 10, 3)
    assert np.abs(got.astype(int) - _rgb()).max() <= 2


@pytest.mark.parametrize("photometric", ["minisblack", "miniswhite"])
def test_bilevel_tiff_reads_as_black_and_white(tmp_path, photometric):
    ink = np.zeros((6, 10), bool)
    ink[:, :4] = True
    path = tmp_path / "fax.tif"
    tifffile.imwrite(path, ink, photometric=photometric)
    with Image.open(path) as im:
        shown = np.asarray(im.convert("L"))
    got = F.read_image(path)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, shown)
    assert set(np.unique(got)) == {0, 255}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("planarconfig", ["separate", None])  # None: tifffile's (3, H, W) default
def test_planar_rgb_tiff_reads_as_one_colour_image(tmp_path, dtype, planarconfig):
    rgb = (_rgb().astype(np.uint32) * (257 if dtype == np.uint16 else 1)).astype(dtype)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig=planarconfig)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].planarconfig == tifffile.PLANARCONFIG.SEPARATE
    got = F.read_image(path)
    assert got.dtype == dtype and got.shape == (6, 10, 3)
    np.testing.assert_array_equal(got, rgb)
    assert F.tiff_shape(path) == (6, 10, 3)
    if dtype == np.uint8:  # as Pillow shows it
        with Image.open(path) as im:
            np.testing.assert_array_equal(got, np.asarray(im.convert("RGB")))


def test_planar_rgba_tiff_keeps_its_alpha_last(tmp_path):
    rgba = np.dstack([_rgb(), np.full((6, 10), 200, np.uint8)])
    path = tmp_path / "planar_a.tif"
    tifffile.imwrite(path, np.moveaxis(rgba, -1, 0), photometric="rgb",
                     planarconfig="separate", extrasamples=["unassalpha"])  # fmt: skip
    np.testing.assert_array_equal(F.read_image(path), rgba)
    assert F.tiff_shape(path) == (6, 10, 4)


def test_planar_rgb_stack_and_orientation(tmp_path):
    stack = np.stack([_rgb(), 255 - _rgb()])
    path = tmp_path / "planar_stack.tif"
    tifffile.imwrite(path, np.moveaxis(stack, -1, 1), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(F.read_image(path), stack)
    turned = tmp_path / "planar_turned.tif"
    tifffile.imwrite(turned, np.moveaxis(_rgb(), -1, 0), photometric="rgb",
                     planarconfig="separate", extratags=[(274, "H", 1, 6, True)])  # fmt: skip
    np.testing.assert_array_equal(F.read_image(turned), np.rot90(_rgb(), -1))


@pytest.mark.parametrize("planarconfig", [None, "separate"])
def test_gray_planes_stay_a_stack(tmp_path, planarconfig):
    """Three MINISBLACK pages (or three gray samples in one page) are three gray images."""
    planes = np.stack([_pattern(), _pattern()[::-1], 255 - _pattern()])
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, planes, photometric="minisblack", planarconfig=planarconfig)
    np.testing.assert_array_equal(F.read_image(path), planes)
    assert F.tiff_shape(path) == (3, 6, 10)


# --------------------------------------------------------------------------- bounds


def _one_strip_tiff(width: int, height: int, inflated: int) -> bytes:
    """A deflate TIFF of width x height 8-bit gray in one strip that inflates to ``inflated``."""
    z = zlib.compressobj(9)
    data = b"".join(z.compress(bytes(1 << 20)) for _ in range(inflated >> 20)) + z.flush()
    start = 8 + 2 + 12 * 9 + 4  # the strip follows the header and the one IFD of 9 tags
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 1),
            (273, 4, start), (277, 3, 1), (278, 4, height), (279, 4, len(data))]  # fmt: skip
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, 1) + packed
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + data


def _peak_of(read) -> int:
    tracemalloc.start()
    try:
        read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _read_or_refused(path) -> np.ndarray | None:
    """The image, or None when it is refused with one line naming the file."""
    try:
        return F.read_image(path)
    except OSError as exc:
        assert str(exc).startswith(f"{path}: not a TIFF file that can be read: "), exc
        assert "\n" not in str(exc)
        return None


def test_a_strip_that_inflates_past_its_image_costs_only_the_image(tmp_path):
    """A 16 x 16 TIFF whose one strip inflates to 64 MiB (1 GiB from a 1 MB file): read
    (tinct's bounded decoders, without imagecodecs) or refused in one line (imagecodecs
    stops at the size and raises), never inflated."""
    path = tmp_path / "strip.tif"
    path.write_bytes(_one_strip_tiff(16, 16, 64 << 20))
    assert path.stat().st_size < 100_000
    got: list[np.ndarray | None] = []
    peak = _peak_of(lambda: got.append(_read_or_refused(path)))
    assert peak < 8 << 20  # tifffile's own zlib decoder inflated all of it
    if got[0] is not None:
        np.testing.assert_array_equal(got[0], 0)


def test_tiles_larger_than_their_image_are_refused_before_decoding(tmp_path):
    path = tmp_path / "tile.tif"  # one 4096 x 4096 tile (16 MiB decoded) for 16 x 16 pixels
    tifffile.imwrite(path, np.zeros((16, 16), np.uint8), tile=(4096, 4096), compression="zlib")
    with pytest.raises(F.ImageTooLargeError, match=r"tiles of 4096 x 4096 values .* 16 x 16"):
        F.read_image(path)
    small = tmp_path / "small.tif"  # a small image in one ordinary tile reads
    tifffile.imwrite(small, _pattern(100, 90), tile=(256, 256), compression="zlib")
    np.testing.assert_array_equal(F.read_image(small), _pattern(100, 90))


def test_samples_beyond_colour_count_as_pixels(tmp_path):
    """64 samples a pixel are 64 values to hold: 32 x 32 x 64 is over a 10,240-pixel limit."""
    many = tmp_path / "samples.tif"
    tifffile.imwrite(many, np.zeros((32, 32, 64), np.uint8), photometric="minisblack",
                     planarconfig="contig")  # one page of 64 samples a pixel  # fmt: skip
    with pytest.raises(F.ImageTooLargeError, match="32 x 32 x 64"):
        F.read_image(many, max_pixels=32 * 32 * 10)
    cmyka = tmp_path / "cmyka.tif"  # CMYK and alpha: 5 samples are still one pixel each
    tifffile.imwrite(cmyka, np.zeros((20, 10, 5), np.uint8), photometric="separated",
                     extrasamples=["unassalpha"])  # fmt: skip
    assert F.read_image(cmyka, max_pixels=200).shape == (20, 10, 4)


def test_a_tiff_by_any_name_is_read_and_bounded_as_a_tiff(tmp_path):
    """Pillow opens a TIFF named .png with libtiff, which spent 1 GB on one large tile."""
    bomb = tmp_path / "tile.png"
    tifffile.imwrite(bomb, np.zeros((16, 16), np.uint8), tile=(4096, 4096), compression="zlib")
    with pytest.raises(F.ImageTooLargeError, match="tiles of 4096 x 4096"):
        F.read_image(bomb)
    planes = np.stack([_pattern(), 255 - _pattern()])
    named = tmp_path / "stack.jpg"  # and read as tifffile reads it: a stack of two planes
    tifffile.imwrite(named, planes, photometric="minisblack")
    np.testing.assert_array_equal(F.read_image(named), planes)


def test_eps_is_never_rendered_with_ghostscript(tmp_path, monkeypatch):
    """Pillow renders EPS (also in a file named .jpg) by running Ghostscript on it."""
    from PIL import EpsImagePlugin

    ran = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: ran.append(a))
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\nshowpage\n%%EOF\n")
    with pytest.raises(OSError):
        F.read_image(path)
    assert ran == [] and "EPS" not in F.pillow_formats() and "PNG" in F.pillow_formats()


def test_a_file_that_is_no_image_is_named_once_with_a_clear_reason(tmp_path):
    """A TIFF without pages said 'list index out of range'; Pillow named its file object."""
    header_only = tmp_path / "empty.tif"
    header_only.write_bytes(b"II*\0garbage")
    no_pixels = tmp_path / "blank.png"  # a TIFF by its first bytes, whose page has no pixels
    no_pixels.write_bytes(b"II*\0\x08\0\0\0\0\0")
    text = tmp_path / "notes.png"
    text.write_bytes(b"not an image at all")
    for path, reason in (
        (header_only, "not a TIFF file that can be read: no image in it"),
        (no_pixels, "not a TIFF file that can be read: no pixels in it"),
        (text, "not an image file of a format tinct reads"),
    ):
        with pytest.raises(OSError) as caught:
            F.read_image(path)
        assert str(caught.value) == f"{path}: {reason}"


def _ome_naming(path, other: str) -> None:
    """A one-page OME-TIFF whose XML says its second plane is in the file ``other``."""
    u1, u2 = "urn:uuid:11111111-1111-1111-1111-111111111111", "urn:uuid:2222-2222"
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" UUID="{u1}">'
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" '
        'SizeX="8" SizeY="6" SizeC="1" SizeZ="2" SizeT="1">'
        '<Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
        f'<TiffData IFD="0" PlaneCount="1" FirstZ="0"><UUID FileName="{path.name}">{u1}</UUID>'
        f'</TiffData><TiffData IFD="0" PlaneCount="1" FirstZ="1"><UUID FileName="{other}">{u2}'
        "</UUID></TiffData></Pixels></Image></OME>"
    )
    tifffile.imwrite(path, np.full((6, 8), 7, np.uint8), description=xml, metadata=None)


def test_a_tiff_never_opens_the_other_files_its_metadata_names(tmp_path):
    """An OME-TIFF's XML names other files by any path: tinct read them (a FIFO or the
    terminal named there hung it; another user's TIFF became part of the image)."""
    import os

    from engine_helpers import finishes_despite_fifo

    secret = tmp_path / "elsewhere" / "secret.tif"
    secret.parent.mkdir()
    tifffile.imwrite(secret, np.full((6, 8), 99, np.uint8))
    named = tmp_path / "names_secret.ome.tif"
    _ome_naming(named, str(secret))
    assert 99 not in F.read_image(named)
    np.testing.assert_array_equal(F.read_image(named), np.full((6, 8), 7, np.uint8))
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "plane2.tif"
        os.mkfifo(fifo)
        tricked = tmp_path / "names_fifo.ome.tif"
        _ome_naming(tricked, fifo.name)
        got: list[object] = []
        if not finishes_despite_fifo(lambda: got.append(F.read_image(tricked)), fifo, 20):
            pytest.fail("read_image opened the FIFO an OME-TIFF names")
        assert got and got[0].shape == (6, 8)
    whole = tmp_path / "stack.ome.tif"  # a one-file OME-TIFF keeps its axes
    tifffile.imwrite(whole, np.zeros((2, 3, 6, 8), np.uint16), metadata={"axes": "ZCYX"})
    assert F.read_image(whole).shape == (2, 3, 6, 8) == F.tiff_shape(whole)


def test_a_packbits_strip_unpacks_no_further_than_its_image(tmp_path):
    """tifffile's own PackBits decoder (no imagecodecs) unpacked a whole strip into a list
    of bytes: a 256 KB file of a 16 x 16 image cost 160 MB (a 10 MB one, 6 GB)."""
    rng = np.random.default_rng(0)
    plain = tmp_path / "plain.tif"
    gray = (rng.integers(0, 4, (40, 30)) * 60).astype(np.uint8)  # runs and literals
    Image.fromarray(gray).save(plain, compression="packbits")
    np.testing.assert_array_equal(F.read_image(plain), gray)
    small = tmp_path / "small.tif"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(small, compression="packbits")
    with tifffile.TiffFile(small) as tif:
        tags = tif.pages[0].tags
        at_offset, at_count = tags["StripOffsets"].valueoffset, tags["StripByteCounts"].valueoffset
    runs = b"\x81\x07" * (1 << 17)  # 128 sevens per two bytes: 16 MB from 256 KB
    raw = bytearray(small.read_bytes())
    struct.pack_into("<I", raw, at_offset, len(raw))
    struct.pack_into("<I", raw, at_count, len(runs))
    bomb = tmp_path / "bomb.tif"
    bomb.write_bytes(bytes(raw) + runs)
    got: list[np.ndarray | None] = []
    peak = _peak_of(lambda: got.append(_read_or_refused(bomb)))
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MB spent on a 16 x 16 image"
    if got[0] is not None:  # tinct's own bounded decoder, without imagecodecs
        np.testing.assert_array_equal(got[0], np.full((16, 16), 7, np.uint8))


def test_an_lzw_tiff_reads(tmp_path):
    """Scanners, Photoshop and Fiji write LZW; tifffile decodes it with imagecodecs, a core
    dependency since 2026-12-04 (it also reads 16-bit colour PNGs)."""
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    path = tmp_path / "scan.tif"
    Image.fromarray(gray).save(path, compression="tiff_lzw")
    np.testing.assert_array_equal(F.read_image(path), gray)


_WITHOUT_IMAGECODECS = """
import json, sys, tracemalloc
sys.modules["imagecodecs"] = None  # an install without it (pip install --no-deps)
import numpy as np
from tinct.engine import imagefiles as F
out = {}
for name in sys.argv[1:]:
    tracemalloc.start()
    try:
        image = F.read_image(name)
        out[name] = {"values": sorted(set(image.ravel().tolist())), "shape": image.shape}
    except OSError as exc:
        out[name] = {"error": str(exc)}
    out[name]["peak"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
print(json.dumps(out))
"""


def test_without_imagecodecs_strips_stay_bounded_and_lzw_says_what_to_install(tmp_path):
    """tifffile's own decoders, used when imagecodecs is missing, are tinct's bounded ones
    (a deflate strip that inflates to 64 MiB costs only its image), and an LZW TIFF says
    what to install instead of tifffile's "<COMPRESSION.LZW: 5> requires the 'imagecodecs'
    package", which named neither the file nor the fix."""
    import json
    import subprocess
    import sys

    bomb = tmp_path / "strip.tif"
    bomb.write_bytes(_one_strip_tiff(16, 16, 64 << 20))
    lzw = tmp_path / "scan.tif"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(lzw, compression="tiff_lzw")
    run = subprocess.run(
        [sys.executable, "-c", _WITHOUT_IMAGECODECS, str(bomb), str(lzw)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    got = json.loads(run.stdout)
    assert got[str(bomb)]["values"] == [0] and got[str(bomb)]["shape"] == [16, 16]
    assert got[str(bomb)]["peak"] < 8 << 20
    assert got[str(lzw)]["error"] == (
        f"{lzw}: its LZW compression needs the imagecodecs package (pip install imagecodecs)"
    )
