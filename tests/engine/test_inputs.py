"""tinct.engine.inputs: normalisation of hostile but finite arrays, the pixel limit of every reader,
the default normalisation for scientific data, FITS files and contrast warnings.

Files that declare a huge size are refused before a single pixel is decoded
(checked with tracemalloc); every finite input normalises to finite gray levels
in [0, 1] that keep the order of the input values.
"""

import struct
import sys
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

import tinct
from engine_helpers import gradient_image
from tinct.engine import imagefiles as F
from tinct.engine import inputs
from tinct.engine import inputs as I
from tinct.engine.colorizer import Colorizer
from tinct.engine.imagefiles import read_fits

F64_MAX = np.finfo(np.float64).max


def ramp(lo, hi, dtype=np.float64, shape=(16, 32)):
    """A left-to-right ramp from lo to hi (computed without overflowing)."""
    t = np.linspace(0.0, 1.0, shape[1])
    row = lo * (1 - t) + hi * t if np.isfinite(hi - lo) else lo - lo * t + hi * t
    return np.broadcast_to(row.astype(dtype), shape).copy()


def gray_of(image, **kw):
    return I.prepare(image, **kw).gray[:, 0].double().numpy()


# --------------------------------------------------------------------------- extremes

RAMPS = {
    "f64 0..1e300": ramp(0.0, 1e300),
    "f64 -1e308..1e308": ramp(-1e308, 1e308),
    "f64 -max..max": ramp(-F64_MAX, F64_MAX),
    "f64 1e300 offset, tiny range": ramp(1e300, 1e300 * (1 + 1e-12)),
    "f64 subnormal": ramp(1e-310, 5e-310),
    "f64 smallest subnormals": ramp(0.0, 5e-324 * 31),
    "f64 huge offset, unit range": ramp(1e15, 1e15 + 31),
    "f32 -3e38..3e38": ramp(-3e38, 3e38, np.float32),
    "f32 subnormal": ramp(1e-41, 1e-40, np.float32),
    "f16 extremes": ramp(-65504, 65504, np.float16),
    "i64 near 2**62": (2**62 + np.arange(32, dtype=np.int64) * 2**20)[None].repeat(16, 0),
    "i64 full range": ramp(-(2.0**63), 2.0**63 - 2**11, np.int64),
    "u64 full range": np.linspace(0, 2**64 - 2**12, 32, dtype=np.uint64)[None].repeat(16, 0),
    "i8 extremes": np.linspace(-128, 127, 32).astype(np.int8)[None].repeat(16, 0),
}


@pytest.mark.parametrize("name", sorted(RAMPS))
def test_extreme_ramps_normalise_to_finite_ordered_gray(name):
    image = RAMPS[name]
    image.setflags(write=False)  # and it is never written
    gray = gray_of(image, normalize="percentile")  # "auto" keeps floats in [0, 1] as they are
    assert np.isfinite(gray).all(), name
    assert gray.min() >= 0.0 and gray.max() <= 1.0
    row = gray[0, 0]
    assert (np.diff(row) >= 0).all(), (name, row)  # the order of the values is kept
    assert row[0] <= 0.02 and row[-1] >= 0.98, (name, row[[0, -1]])  # and the full range used
    assert len(np.unique(np.round(row, 4))) >= 16, (name, row)  # distinct values stay distinct


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        (1e17, np.float64, 0.5),
        (-1e300, np.float64, 0.5),
        (F64_MAX, np.float64, 0.5),
        (5e-324, np.float64, 5e-324),  # inside [0, 1]: kept
        (0.3, np.float64, 0.3),
        (2**62, np.int64, 0.5),
        (-(2**63), np.int64, 0.5),
        (2**64 - 1, np.uint64, 0.5),
        (3e38, np.float32, 0.5),
        (1.0, np.float32, 1.0),
    ],
)
def test_constant_images_are_mid_gray_or_their_own_value(value, dtype, expected):
    image = np.full((8, 9), value, dtype=dtype)
    gray = gray_of(image)
    np.testing.assert_allclose(gray, np.float32(expected), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["u2", "i4", "f8", "f4", "i8", "u8"])
@pytest.mark.parametrize("normalize", ["auto", "dtype", "percentile"])
def test_big_endian_is_normalised_exactly_like_native(dtype, normalize):
    rng = np.random.default_rng(0)
    native = (rng.random((12, 20)) * 60000).astype("=" + dtype)
    big = native.astype(">" + dtype)
    assert big.dtype.byteorder in (">", "|") or sys.byteorder == "big"
    np.testing.assert_array_equal(
        gray_of(big, normalize=normalize), gray_of(native, normalize=normalize)
    )


@pytest.mark.parametrize(
    "image",
    [
        gradient_image(dtype=np.uint16).astype(">u2"),  # big-endian (FITS, some TIFFs)
        gradient_image(dtype=np.float64) * 1e-3 + 1e5,  # tiny range on a huge offset
        gradient_image(dtype=np.uint16).astype(np.int64),
    ],
)
def test_prepare_is_exact_for_wide_and_foreign_dtypes(image):
    from tinct.engine.inputs import prepare

    image.setflags(write=False)
    lo, hi = np.percentile(image.astype(np.float64), (0.5, 99.5))
    expected = np.clip((image.astype(np.float64) - lo) / (hi - lo), 0, 1)
    gray = prepare(image, normalize="percentile").gray[0, 0].double().numpy()
    np.testing.assert_allclose(gray, expected, atol=1e-6)


def test_extreme_rgb_and_alpha():
    rgb = np.stack([ramp(-1e308, 1e308)] * 3 + [ramp(0, 1)], -1)  # float64 RGBA
    prep = I.prepare(rgb)
    gray = prep.gray.numpy()
    assert np.isfinite(gray).all() and (np.diff(gray[0, 0, 0]) >= 0).all()
    assert prep.alpha is not None and np.isfinite(prep.alpha).all()
    ints = np.zeros((4, 5, 4), np.int64)
    ints[..., 3] = np.iinfo(np.int64).max
    ints[..., :3] = -(2**63)
    prep = I.prepare(ints)
    assert np.isfinite(prep.gray.numpy()).all()
    np.testing.assert_allclose(prep.alpha, 1.0)


@pytest.mark.parametrize("shape", [(16, 32), (16, 32, 3), (2, 16, 32)])
@pytest.mark.parametrize("normalize", ["auto", "dtype", "percentile"])
def test_float64_input_is_never_written(shape, normalize):
    """float64 is normalised in float64; that pass wrote into the caller's array."""
    image = np.random.default_rng(0).random(shape) * 1000
    before = image.copy()
    I.prepare(image, normalize=normalize)
    np.testing.assert_array_equal(image, before)


def test_a_read_only_array_is_read_quietly_and_leaves_other_threads_warnings_alone(
    monkeypatch,
):
    """torch's read-only warning is dropped in the reading thread only.

    It was silenced with ``catch_warnings``, whose "ignore" filter is the whole
    process's: a note another thread raised while the array was read was lost.
    """
    import threading

    import torch

    from tinct.engine.thread_warnings import collect_warnings

    image = ramp(0, 255, np.uint8)
    image.flags.writeable = False
    reading, warned = threading.Event(), threading.Event()
    real = torch.from_numpy

    def from_numpy(array):
        if not array.flags.writeable:  # the neighbour warns while this thread reads
            reading.set()
            warned.wait(10)
        return real(array)

    monkeypatch.setattr(torch, "from_numpy", from_numpy)
    other: list = []

    def neighbour():
        with collect_warnings(UserWarning) as caught:
            reading.wait(10)
            warnings.warn("the neighbour's own note", UserWarning, stacklevel=1)
            warned.set()
        other.extend(str(w.message) for w in caught)

    t = threading.Thread(target=neighbour)
    t.start()
    with collect_warnings(Warning) as mine:
        I.prepare(image)
    t.join(10)
    assert [str(w.message) for w in mine] == []
    assert other == ["the neighbour's own note"]


def test_a_read_only_memmap_of_float64_is_read_not_written(tmp_path):
    """Writing into a read-only memory map (np.load(mmap_mode="r")) killed the process."""
    import subprocess

    path = tmp_path / "f64.npy"
    np.save(path, np.random.default_rng(0).random((16, 32)) * 1000)
    code = (
        "import numpy as np; from tinct.engine import inputs; "
        f"a = np.load({str(path)!r}, mmap_mode='r'); g = inputs.prepare(a).gray; "
        "print(float(g.min()), float(g.max()))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.returncode  # -11 (SIGSEGV) before
    assert proc.stdout.split() == ["0.0", "1.0"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_blank_pixels_take_the_minimum_and_leave_the_rest_alone(bad):
    """A NaN/inf pixel (outside a survey's footprint) is shown as the image's minimum, with a
    note; the other pixels normalise exactly as without it, and the input is not modified."""
    image = ramp(-3.0, 50.0)
    clean = I.prepare(image)
    holed = image.copy()
    holed[3, 4] = bad
    holed[0, :] = np.nan  # a blank border row
    before = holed.copy()
    prep = I.prepare_noted(holed, space="lab", normalize="auto", percentiles=(0.5, 99.5),
                           rgb=None, intensity_range=None)  # fmt: skip
    np.testing.assert_array_equal(holed, before)
    g, ref = prep.gray[0, 0].numpy(), clean.gray[0, 0].numpy()
    assert np.isfinite(g).all()
    assert g[3, 4] == 0.0 and (g[0] == 0.0).all()  # the minimum maps to black
    keep = np.ones(g.shape, bool)
    keep[3, 4] = keep[0] = False
    # percentiles of the finite pixels: the ramp without its first row, nearly the same range
    np.testing.assert_allclose(g[keep], ref[keep], atol=0.02)
    assert any("blank" in n and str(g.shape[1] + 1) in n for n in prep.notes)


def test_blank_pixels_in_rgb_and_alpha():
    rgba = np.dstack([ramp(0.0, 1.0)] * 3 + [np.ones((16, 32))])
    rgba[2, 2, 1] = np.nan
    rgba[5, 5, 3] = np.inf
    prep = I.prepare(rgba)
    assert np.isfinite(prep.gray.numpy()).all() and np.isfinite(prep.alpha).all()
    assert prep.alpha[0, 5, 5] == 1.0


def test_an_image_without_a_finite_pixel_is_a_clear_error():
    with pytest.raises(ValueError, match="no finite pixel"):
        I.prepare(np.full((4, 4), np.nan))
    rgba = np.full((4, 4, 4), np.nan)
    rgba[..., 3] = 1.0  # a finite alpha does not make the colour finite
    with pytest.raises(ValueError, match="no finite pixel"):
        I.prepare(rgba)


def test_extreme_inputs_through_the_engine():
    """Finite, sensible colour from the whole pipeline (untrained tinct-base)."""

    c = Colorizer("tinct-base", device="cpu", pretrained=False)
    for name in ("f64 -max..max", "f64 1e300 offset, tiny range", "i64 near 2**62",
                 "f32 -3e38..3e38"):  # fmt: skip
        out = c.colorize(np.tile(RAMPS[name], (2, 1)))
        assert out.dtype == np.float32 and np.isfinite(out).all(), name
        assert out.min() >= 0 and out.max() <= 1
        lum = out.mean(-1)
        assert lum[:, -1].mean() > lum[:, 0].mean() + 0.3, name  # dark to bright survives
    flat = c.colorize(np.full((32, 32), 1e17))
    assert np.isfinite(flat).all() and np.ptp(flat.mean(-1)) < 0.05


# --------------------------------------------------------------------------- invalid arrays


def _virtual(shape):
    """A huge zero-strided uint8 array that takes no memory."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape, (0,) * len(shape))


BAD_INPUTS = [
    (np.zeros((0, 10)), ValueError, "empty"),
    (np.zeros((1, 1)), ValueError, "at least 2x2"),
    (np.zeros((1, 10)), ValueError, "at least 2x2"),
    (np.zeros(10), ValueError, "at least 2 dimensions"),
    (np.array(3.0), ValueError, "at least 2 dimensions"),
    (np.full((4, 4), np.nan), ValueError, "no finite pixel"),
    (np.array([[np.nan, np.inf], [-np.inf, np.nan]]), ValueError, "no finite pixel"),
    (np.zeros((4, 4), bool), TypeError, "bool"),
    (np.zeros((4, 4), complex), TypeError, "complex"),
    (np.array([["a", "b"], ["c", "d"]]), TypeError, "not numeric"),
    (np.zeros((4, 4), object), TypeError, "not numeric"),
    (_virtual((70000, 4)), ValueError, "too large"),
    (_virtual((50000, 50000)), ValueError, "too large"),
]  # fmt: skip


@pytest.mark.parametrize(("image", "exc", "match"), BAD_INPUTS)
def test_bad_inputs(tiny, image, exc, match):
    with pytest.raises(exc, match=match):
        tiny.colorize(image)


# --------------------------------------------------------------------------- readers


def _png(width, height):
    """A PNG whose header declares width x height; its data is a few bytes."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64)))
            + chunk(b"IEND", b""))  # fmt: skip


def _tiff(width, height):
    """A little-endian baseline TIFF that declares width x height, with 300 bytes of data."""
    data = zlib.compress(bytes(100_000))
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 1),
               (273, 4, 0), (277, 3, 1), (278, 4, height), (279, 4, len(data))]  # fmt: skip
    ifd_size = 2 + 12 * len(entries) + 4
    offset = 8 + ifd_size
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = offset if tag == 273 else value
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, 1) + packed
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + data


def _patched(fmt, width, height):
    """A real small file of ``fmt`` with its header edited to claim width x height."""
    buf = __import__("io").BytesIO()
    Image.new("L", (16, 8)).save(buf, fmt)
    data = bytearray(buf.getvalue())
    if fmt == "BMP":
        struct.pack_into("<ii", data, 18, width, height)
    elif fmt == "JPEG":
        sof = data.index(b"\xff\xc0")
        struct.pack_into(">HH", data, sof + 5, height, width)
    elif fmt == "GIF":
        struct.pack_into("<HH", data, 6, width, height)
        desc = data.index(b",", 13)  # image descriptor
        struct.pack_into("<HH", data, desc + 5, width, height)
    return bytes(data)


BOMBS = {
    "png": lambda: _png(50_000, 50_000),
    "tif": lambda: _tiff(50_000, 50_000),
    "bmp": lambda: _patched("BMP", 50_000, 50_000),
    "jpg": lambda: _patched("JPEG", 60_000, 60_000),
    "gif": lambda: _patched("GIF", 50_000, 50_000),
}


#: (file kind, reader): TIFF through tifffile, the other formats through Pillow.
READERS = [("tif", "tifffile"), ("png", "pillow"), ("bmp", "pillow"), ("jpg", "pillow"),
           ("gif", "pillow")]  # fmt: skip


@pytest.mark.parametrize(("suffix", "reader"), READERS)
def test_declared_size_is_refused_before_decoding(tmp_path, suffix, reader, monkeypatch):
    path = tmp_path / f"bomb.{suffix}"
    path.write_bytes(BOMBS[suffix]())
    assert path.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(F.ImageTooLargeError) as info:
            F.read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value)
    assert peak < 20 * 2**20  # nothing near the declared gigabytes was allocated


@pytest.mark.parametrize(("suffix", "reader"), [*READERS, ("webp", "pillow")])
def test_the_limit_is_configurable_for_every_reader(tmp_path, suffix, reader, monkeypatch):
    fmt = {"tif": "TIFF", "jpg": "JPEG"}.get(suffix, suffix.upper())
    path = tmp_path / f"img.{suffix}"
    Image.fromarray(np.arange(40 * 30, dtype=np.uint32).reshape(30, 40).astype(np.uint8)).save(
        path, fmt
    )
    assert F.read_image(path).shape[:2] == (30, 40)
    assert F.read_image(path, max_pixels=1200).shape[:2] == (30, 40)
    with pytest.raises(F.ImageTooLargeError, match=r"40 x 30|30 x 40"):
        F.read_image(path, max_pixels=1199)
    monkeypatch.setenv(F.MAX_READ_PIXELS_ENV, "1000")
    assert F.max_read_pixels() == 1000
    with pytest.raises(F.ImageTooLargeError, match="TINCT_MAX_IMAGE_PIXELS"):
        F.read_image(path)
    monkeypatch.setenv(F.MAX_READ_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match="positive integer"):
        F.read_image(path)


def test_tiff_stacks_count_every_plane(tmp_path):
    import tifffile

    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((5, 20, 10), np.uint16))
    assert F.read_image(path).shape == (5, 20, 10)
    with pytest.raises(F.ImageTooLargeError, match="5 x 20 x 10"):
        F.read_image(path, max_pixels=999)
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((20, 10, 3), np.uint8), photometric="rgb")
    assert F.read_image(rgb, max_pixels=200).shape == (20, 10, 3)  # samples are not pixels


# --------------------------------------------------------------------------- scientific data


def twelve_bit_cell() -> np.ndarray:
    """scikit-image's ``cell`` as a 12-bit camera frame stored in uint16 (values 100-4000)."""
    from skimage import data

    cell = data.cell().astype(np.float64)
    cell = (cell - cell.min()) / (cell.max() - cell.min())
    return (100 + cell * 3900).round().astype(np.uint16)


def mean_l(rgb: np.ndarray) -> float:
    from skimage.color import rgb2lab

    return float(rgb2lab(rgb[..., :3]).mean(axis=(0, 1))[0])


def test_policy_keeps_8_bit_and_scales_everything_else_by_percentiles():
    assert inputs.normalization_mode(np.uint8) == "dtype"
    for dt in (np.uint16, np.int32, np.float32, np.float64):
        assert inputs.normalization_mode(dt) == "percentile"
    assert inputs.normalization_mode(np.uint16, "dtype") == "dtype"


def test_twelve_bit_frame_default_matches_percentile_normalisation():
    frame = twelve_bit_cell()
    default = tinct.colorize(frame, device="cpu")
    percentile = tinct.colorize(
        frame, device="cpu", options=tinct.ColorizeOptions(normalize="percentile")
    )
    assert abs(mean_l(default) - mean_l(percentile)) < 10
    assert mean_l(default) > 20  # visible, not the black frame of a 0-65535 scaling


def test_nearly_black_and_nearly_constant_inputs_warn():
    frame = twelve_bit_cell()
    with pytest.warns(inputs.InputWarning, match="nearly black"):
        out = tinct.colorize(frame, device="cpu", options=tinct.ColorizeOptions(normalize="dtype"))
    assert mean_l(out) < 10
    with pytest.warns(inputs.InputWarning, match="nearly constant") as told:
        tinct.colorize(np.full((32, 32), 77, np.uint8), device="cpu")
    assert str(told[0].message).endswith("; if the data varies more, try percentile normalisation")
    sky = np.random.default_rng(0).normal(1e4, 30, (64, 64)).astype(np.float32)  # counts
    opts = tinct.ColorizeOptions(normalize="dtype")  # floats taken as [0, 1]: all white
    with pytest.warns(inputs.InputWarning, match="nearly constant.*try percentile normalisation"):
        tinct.colorize(sky, device="cpu", options=opts)
    with warnings.catch_warnings():
        warnings.simplefilter("error", inputs.InputWarning)
        tinct.colorize(frame, device="cpu")  # the default makes it visible: no warning


def test_intensity_range_maps_values_to_black_and_white():
    a = np.array([[0, 1000], [2000, 4000]], np.uint16)
    prep = inputs.prepare(a, intensity_range=(1000, 2000))
    np.testing.assert_allclose(prep.gray[0, 0].numpy(), [[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="intensity_range"):
        inputs.prepare(a, normalize="range")


def test_fits_file_is_read_with_blank_pixels_as_background(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    data = np.linspace(-5.0, 300.0, 40 * 60).reshape(40, 60).astype(">f4")  # big-endian
    data[:5, :5] = np.nan  # outside the survey footprint
    path = tmp_path / "field.fits"
    fits.PrimaryHDU(data).writeto(path)
    arr = F.read_image(path)
    assert arr.shape == (40, 60) and np.isnan(arr[:5, :5]).all()  # left to the engine
    with pytest.warns(UserWarning, match="25 blank"):  # the reader filled them: no warning
        out = tinct.colorize(arr, device="cpu")
    assert out.shape == (40, 60, 3) and mean_l(out) > 20
    assert out[:5, :5].max() <= 2  # shown as the minimum: black, the background


def test_fits_size_is_checked_before_the_data_is_read(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    path = tmp_path / "big.fits"
    fits.PrimaryHDU(np.zeros((64, 64), np.float32)).writeto(path)
    with pytest.raises(F.ImageTooLargeError, match="more than the limit"):
        read_fits(path, max_pixels=1000)
    with pytest.raises(F.ImageTooLargeError):
        F.read_image(path, max_pixels=1000)  # read_image passes its limit on
    empty = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU()]).writeto(empty)
    with pytest.raises(OSError, match="no image data"):
        F.read_image(empty)


def test_fits_shape_is_read_from_the_headers_in_numpy_order(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    cube = tmp_path / "cube.fits"
    data = np.zeros((3, 20, 30), np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data)]).writeto(cube)  # image in HDU 1
    assert F.fits_shape(cube) == (3, 20, 30) == read_fits(cube).shape
    empty = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU()]).writeto(empty)
    (tmp_path / "text.fits").write_text("not FITS")
    assert F.fits_shape(empty) is None and F.fits_shape(tmp_path / "text.fits") is None


def test_fits_through_the_cli_and_batch_suffixes(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    from PIL import Image

    from tinct.cli import main
    from tinct.engine.outputs import IMAGE_SUFFIXES

    assert ".fits" in IMAGE_SUFFIXES  # tinct batch picks FITS files up too
    path = tmp_path / "m31.fits"
    fits.PrimaryHDU((np.random.default_rng(0).random((48, 64)) * 1e4).astype(">i4")).writeto(path)
    assert main(["colorize", str(path), "-o", str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert np.asarray(Image.open(tmp_path / "out" / "m31_colorized.png")).shape == (48, 64, 3)
