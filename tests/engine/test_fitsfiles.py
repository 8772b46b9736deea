"""``tinct.engine.fitsfiles``: FITS headers are bounded before astropy parses them."""

import bz2
import gzip
import lzma
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from tinct.engine import fitsfiles as FF
from tinct.engine import imagefiles as F

fits = pytest.importorskip("astropy.io.fits")


def _card(text: str) -> bytes:
    return text.ljust(80).encode("ascii")


def _primary(*cards: str, blank_blocks: int = 0, naxis: tuple[int, ...] = (10, 10)) -> bytes:
    """A primary HDU of 8-bit data with ``cards``, ``blank_blocks`` blocks of blank cards."""
    head = [_card("SIMPLE  =                    T"), _card("BITPIX  =                    8"),
            _card(f"NAXIS   = {len(naxis):20d}")]  # fmt: skip
    head += [_card(f"NAXIS{i + 1:<3d}= {n:20d}") for i, n in enumerate(naxis)]
    text = b"".join(head + [_card(c) for c in cards]) + b" " * (2880 * blank_blocks)
    text += _card("END")
    text += b" " * (-len(text) % 2880)
    size = int(np.prod(naxis)) if naxis else 0
    return text + bytes(size + (-size % 2880))


def test_a_gzipped_header_of_blank_cards_is_refused_unparsed(tmp_path):
    """10 MiB of blank cards in 30 KB of gzip: astropy kept 7 times it (2 GB for 300 MB)."""
    path = tmp_path / "bomb.fits.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(_primary(blank_blocks=10 * 2**20 // 2880))
    assert path.stat().st_size < 100_000
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(F.ImageTooLargeError, match="headers run past 8,388,608 bytes"):
            F.read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20 and time.perf_counter() - t0 < 10
    assert F.fits_shape(path) is None


def test_a_header_without_an_end_is_refused_within_the_bound(tmp_path):
    path = tmp_path / "endless.fits"  # e.g. a link to /dev/zero: blocks for ever, no END
    path.write_bytes(_primary()[:2880].replace(_card("END"), _card("")) + b" " * (9 << 20))
    with pytest.raises(F.ImageTooLargeError, match="headers run past"):
        F.read_image(path)


def test_real_files_read_through_every_compression(tmp_path):
    from astropy.table import Table

    image = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    table = fits.BinTableHDU(Table({"x": np.arange(100), "y": np.arange(100.0)}))
    hdus = {
        "plain": [fits.PrimaryHDU(image)],
        "extension": [fits.PrimaryHDU(), fits.ImageHDU(image)],
        "table_first": [fits.PrimaryHDU(), table, fits.ImageHDU(image)],
        "compressed": [fits.PrimaryHDU(), fits.CompImageHDU(image)],
    }
    long = fits.Header([("HISTORY", "x" * 60)] * 3000)  # a long header (240 KB) is fine
    hdus["long_header"] = [fits.PrimaryHDU(image, header=long)]
    for name, hdu_list in hdus.items():
        plain = tmp_path / f"{name}.fits"
        fits.HDUList(hdu_list).writeto(plain)
        raw = plain.read_bytes()
        (tmp_path / f"{name}.fits.gz").write_bytes(gzip.compress(raw))
        (tmp_path / f"{name}_bz.fits").write_bytes(bz2.compress(raw))
        (tmp_path / f"{name}_xz.fits").write_bytes(lzma.compress(raw))
        for path in (plain, tmp_path / f"{name}.fits.gz", tmp_path / f"{name}_bz.fits",
                     tmp_path / f"{name}_xz.fits"):  # fmt: skip
            np.testing.assert_array_equal(F.read_image(path), image, err_msg=str(path))
            assert F.fits_shape(path) == (20, 30)


def test_zipped_fits_is_refused(tmp_path):
    """astropy reads a zip's first member whole into memory: a zip bomb."""
    path = tmp_path / "zipped.fits"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.fits", _primary())
    with pytest.raises(OSError, match="zip- or LZW-compressed"):
        F.read_image(path)


def test_headers_astropy_could_read_elsewhere_are_refused(tmp_path):
    """An END-like card, or a structural keyword given twice: astropy's two parsers may
    disagree on where a header ends or its data, so its next header could go unbounded."""
    loose = tmp_path / "loose_end.fits"
    loose.write_bytes(_primary("END     = 1"))
    twice = tmp_path / "twice.fits"
    twice.write_bytes(_primary("NAXIS1  =                 9999"))
    for path, match in ((loose, "looks like END"), (twice, "NAXIS1 is given twice")):
        with pytest.raises(OSError, match=match):
            F.read_image(path)
    same = tmp_path / "same_twice.fits"  # given twice with the same value: harmless
    same.write_bytes(_primary("NAXIS1  =                   10"))
    assert F.read_image(same).shape == (10, 10)


def test_only_so_many_hdus_before_the_image(tmp_path):
    path = tmp_path / "many.fits"
    fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU() for _ in range(30)]).writeto(path)
    with pytest.raises(F.ImageTooLargeError, match="no image among its first 20 HDUs"):
        FF.scan_headers(path, max_hdus=20)
    assert FF.scan_headers(path) == 31  # the end of the file: no image, astropy says so
    with pytest.raises(OSError, match="no image data"):
        F.read_image(path)


def _edit_cards(raw: bytes, **values: int) -> bytes:
    """``raw`` with the integer cards named (``ZNAXIS1=64``) given new values in place."""
    out = bytearray(raw)
    for key, value in values.items():
        at = out.index(f"{key:<8}= ".encode())
        out[at : at + 80] = _card(f"{key:<8}= {value:20d}")
    return bytes(out)


def test_a_gzip_tile_inflates_no_further_than_its_tile(tmp_path):
    """A 40 KB tile-compressed file declaring 64 x 64 pixels, its one gzip tile holding
    4096 x 4096: astropy inflated the whole tile (95 MB at peak; 1 MB of tile is 1 GB)."""
    source = tmp_path / "wide.fits"
    hdu = fits.CompImageHDU(np.zeros((4096, 4096), np.int16), compression_type="GZIP_1",
                            tile_shape=(4096, 4096))  # fmt: skip
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(source)
    bomb = tmp_path / "bomb.fits"
    bomb.write_bytes(_edit_cards(source.read_bytes(), ZNAXIS1=64, ZNAXIS2=64, ZTILE1=64,
                                 ZTILE2=64))  # fmt: skip
    assert bomb.stat().st_size < 50_000
    tracemalloc.start()
    try:
        with pytest.raises(F.ImageTooLargeError) as caught:
            F.read_image(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (
        f"{bomb}: a compressed tile inflates to more than the 32,768 bytes a tile may hold"
    )
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MB spent on a 64 x 64 image"


@pytest.mark.parametrize("kind", ["GZIP_1", "GZIP_2", "RICE_1", "PLIO_1", "HCOMPRESS_1"])
@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32])
def test_tile_compressed_images_read_as_astropy_reads_them(tmp_path, kind, dtype):
    if kind == "PLIO_1" and dtype is not np.int16:
        pytest.skip("PLIO holds small integers only")
    rng = np.random.default_rng(1)
    data = (rng.random((52, 70)) * 1000).astype(dtype)
    path = tmp_path / "tiles.fits"
    hdu = fits.CompImageHDU(data, compression_type=kind, tile_shape=(16, 32))
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    np.testing.assert_array_equal(F.read_image(path), fits.getdata(path, 1))
    np.testing.assert_array_equal(F.read_image(path), fits.getdata(path, 1))  # patched once
