"""tinct.engine.outputs: output names (two-part suffixes), failed writes, bit depth."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from tinct.engine.outputs import IMAGE_SUFFIXES, input_stem, input_suffix, output_path_for


def test_a_gzipped_fits_file_is_named_by_its_stem_without_both_suffixes(tmp_path):
    """field.fits.gz gave out/field.fits_colorized.png (Path.stem drops only .gz)."""
    assert input_suffix("a/field.FITS.gz") == ".fits.gz"
    assert input_stem("a/field.fits.gz") == "field"
    assert input_stem("a/m31.fit.gz") == "m31"
    assert output_path_for("a/field.fits.gz", tmp_path) == tmp_path / "field_colorized.png"
    assert output_path_for("cube.fits.gz", "o", stack=True).name == "cube_colorized.tif"
    assert ".fits.gz" in IMAGE_SUFFIXES


def test_ordinary_names_keep_their_last_suffix_only():
    assert input_suffix("x.tar.png") == ".png"
    assert input_stem("x.tar.png") == "x.tar"
    assert input_stem("archive.gz") == "archive"  # .gz alone is no image suffix
    assert input_stem("v1.2_scan.jpeg") == "v1.2_scan"


def test_a_failed_write_names_the_destination_not_the_temporary_file(tmp_path):
    import errno

    from tinct.engine.outputs import atomic_output

    dest = tmp_path / "afile" / "out.png"
    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(NotADirectoryError) as err, atomic_output(dest) as tmp:
        tmp.write_bytes(b"x")  # said '[Errno 20] Not a directory: '.../.out.tinct-tmp-....png''
    assert str(err.value) == f"cannot write {dest}: Not a directory"
    assert err.value.errno == errno.ENOTDIR
    with pytest.raises(ValueError), atomic_output(tmp_path / "b.png"):  # others pass through
        raise ValueError("not a file error")


# --------------------------------------------------------------------------- bit depth


@pytest.mark.parametrize("channels", [3, 4])
def test_a_16_bit_png_reads_back_exactly_with_an_independent_decoder(tmp_path, channels):
    from depth_helpers import png_bits, read_png
    from tinct.engine.pngfiles import write_png16

    rng = np.random.default_rng(channels)
    image = rng.integers(0, 65536, (7, 11, channels), dtype=np.uint16)
    image[0, 0] = 0
    image[-1, -1] = 65535
    write_png16(tmp_path / "x.png", image)
    assert png_bits(tmp_path / "x.png") == 16
    np.testing.assert_array_equal(read_png(tmp_path / "x.png"), image)
    with pytest.raises(ValueError, match="uint16"):
        write_png16(tmp_path / "y.png", image.astype(np.uint8))


@pytest.mark.parametrize(
    ("depth", "dtype", "name", "stack", "bits"),
    [
        ("auto", np.uint16, "o.png", False, 16),
        ("auto", np.uint16, "o.tif", False, 16),
        ("auto", np.uint16, "o.TIFF", False, 16),
        ("auto", np.int32, "o.png", False, 16),  # any integer of more than 8 bits
        ("auto", np.uint16, "o.jpg", False, None),  # JPEG, WebP, BMP, GIF: 8 bits
        ("auto", np.uint16, "o.webp", False, None),
        ("auto", np.uint16, "o.bmp", False, None),
        ("auto", np.uint16, "o.tif", True, None),  # a stack: float32 TIFF, as before
        ("auto", np.uint8, "o.png", False, None),  # 8-bit: as before
        ("auto", np.float32, "o.png", False, None),  # float: 8 bits, as before
        ("8", np.uint16, "o.png", False, 8),
        ("8", np.uint16, "o.tif", True, 8),
        ("16", np.uint8, "o.png", False, 16),
        ("16", np.float32, "o.tif", True, 16),
    ],
)  # fmt: skip
def test_output_depth_rule(depth, dtype, name, stack, bits):
    from tinct.engine.outputs import output_depth

    assert output_depth(depth, np.dtype(dtype), name, stack=stack) == bits


@pytest.mark.parametrize("name", ["o.jpg", "o.JPEG", "o.webp", "o.bmp", "o.gif", "o.mp4", "o"])
def test_16_bits_for_a_format_that_holds_8_is_refused(name):
    from tinct.engine.outputs import OutputDepthError, check_output_depth, output_depth

    with pytest.raises(OutputDepthError, match=r"holds 8 bits a channel; 16 bits need a \.png"):
        output_depth("16", np.uint16, name)
    check_output_depth("auto", name)
    check_output_depth("8", name)
    with pytest.raises(ValueError, match="one of auto, 8, 16"):
        check_output_depth("12", "o.png")


def test_a_float_result_goes_to_16_bits_directly_not_through_8(tmp_path):
    from depth_helpers import read_png
    from tinct.engine.outputs import write_result

    ramp = np.linspace(0.0, 1.0, 40 * 50, dtype=np.float32).reshape(40, 50)
    result = np.stack([ramp, ramp**2, 1.0 - ramp], -1)
    write_result(tmp_path / "o.png", result, depth=16)
    got = read_png(tmp_path / "o.png")
    np.testing.assert_array_equal(got, (result * 65535.0 + 0.5).astype(np.uint16))
    assert len(np.unique(got[..., 0])) > 256
    write_result(tmp_path / "o.tif", result, depth=16)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o.tif"), got)
    write_result(tmp_path / "u8.png", (result * 255).astype(np.uint8), depth=16)
    u8 = read_png(tmp_path / "u8.png")
    assert (u8 % 257 == 0).all() and u8.max() == 65535  # 255 stays white


def test_a_16_bit_tiff_keeps_alpha_as_an_extra_sample(tmp_path):
    from tinct.engine.outputs import write_result

    rgba = np.random.default_rng(0).random((6, 9, 4)).astype(np.float32)
    write_result(tmp_path / "a.tif", rgba, depth=16)
    with tifffile.TiffFile(tmp_path / "a.tif") as tf:
        page = tf.pages[0]
        assert (page.dtype, page.shape, page.photometric.name) == (
            np.uint16, (6, 9, 4), "RGB"
        )  # fmt: skip
        assert [int(s) for s in page.extrasamples] == [2]  # unassociated alpha
        np.testing.assert_array_equal(page.asarray(), (rgba * 65535 + 0.5).astype(np.uint16))


def test_the_default_writes_as_before_byte_for_byte(tmp_path):
    """depth None and 8 write an image as write_image always did (Pillow, 8 bits)."""
    from tinct.engine.outputs import write_result

    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    f32 = rng.random((10, 12, 4)).astype(np.float32)
    for name, result in (("u8.png", u8), ("f.png", f32), ("f.jpg", f32), ("u8.tif", u8)):
        before = tmp_path / f"before_{name}"
        arr = result if result.dtype == np.uint8 else (result * 255.0 + 0.5).astype(np.uint8)
        Image.fromarray(arr[..., :3] if name.endswith(".jpg") else arr).save(before)
        for depth in (None, 8):
            write_result(tmp_path / name, result, depth=depth)
            assert (tmp_path / name).read_bytes() == before.read_bytes(), (name, depth)


def test_a_stacks_tiff_is_as_before_unless_a_depth_is_forced(tmp_path):
    from tinct.engine.outputs import write_result

    stack = np.random.default_rng(2).random((2, 5, 6, 3)).astype(np.float32)
    write_result(tmp_path / "s.tif", stack)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "s.tif"), stack)  # float32
    write_result(tmp_path / "s16.tif", stack, depth=16)
    s16 = tifffile.imread(tmp_path / "s16.tif")
    assert s16.dtype == np.uint16 and s16.shape == stack.shape
    write_result(tmp_path / "s8.tif", stack, depth=8)
    s8 = tifffile.imread(tmp_path / "s8.tif")
    np.testing.assert_array_equal(s8, (stack * 255 + 0.5).astype(np.uint8))
