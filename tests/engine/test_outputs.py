"""tinct.engine.outputs: output names of inputs with two-part suffixes."""

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

    import pytest

    from tinct.engine.outputs import atomic_output

    dest = tmp_path / "afile" / "out.png"
    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(NotADirectoryError) as err, atomic_output(dest) as tmp:
        tmp.write_bytes(b"x")  # said '[Errno 20] Not a directory: '.../.out.tinct-tmp-....png''
    assert str(err.value) == f"cannot write {dest}: Not a directory"
    assert err.value.errno == errno.ENOTDIR
    with pytest.raises(ValueError), atomic_output(tmp_path / "b.png"):  # others pass through
        raise ValueError("not a file error")
