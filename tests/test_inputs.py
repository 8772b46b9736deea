"""tinct.inputs: the normalisation policy for scientific data, FITS files, contrast warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinct
from tinct import inputs
from tinct.fits import read_fits


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
    with pytest.warns(inputs.InputWarning, match="nearly constant"):
        tinct.colorize(np.full((32, 32), 77, np.uint8), device="cpu")
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
    arr = inputs.read_image(path)
    assert arr.shape == (40, 60) and np.isfinite(arr).all()
    assert arr[0, 0] == np.nanmin(data)
    out = tinct.colorize(arr, device="cpu")
    assert out.shape == (40, 60, 3) and mean_l(out) > 20


def test_fits_size_is_checked_before_the_data_is_read(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    path = tmp_path / "big.fits"
    fits.PrimaryHDU(np.zeros((64, 64), np.float32)).writeto(path)
    with pytest.raises(ValueError, match="exceed the limit"):
        read_fits(path, max_pixels=1000)
    empty = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU()]).writeto(empty)
    with pytest.raises(OSError, match="no image data"):
        inputs.read_image(empty)


def test_fits_through_the_cli_and_batch_suffixes(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    from PIL import Image

    from tinct.cli import main
    from tinct.cli.colorize import IMAGE_SUFFIXES

    assert ".fits" in IMAGE_SUFFIXES  # tinct batch picks FITS files up too
    path = tmp_path / "m31.fits"
    fits.PrimaryHDU((np.random.default_rng(0).random((48, 64)) * 1e4).astype(">i4")).writeto(path)
    assert main(["colorize", str(path), "-o", str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert np.asarray(Image.open(tmp_path / "out" / "m31_colorized.png")).shape == (48, 64, 3)
