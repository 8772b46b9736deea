"""tinct.scale.planning: which finished outputs a resumed batch keeps."""

import numpy as np
import tifffile
from PIL import Image

from tinct.scale.planning import is_complete


def test_outputs_are_checked_with_the_bounds_of_inputs(tmp_path, monkeypatch):
    """is_complete decoded outputs with tifffile.imread (no bounds) and every Pillow format."""
    from PIL import EpsImagePlugin

    good = tmp_path / "good_colorized.tif"
    tifffile.imwrite(good, np.zeros((16, 16, 3), np.uint8), photometric="rgb")
    assert is_complete(good)
    for name in ("tile_colorized.tif", "tile_colorized.png"):  # 16 MiB decoded for 16 x 16
        bomb = tmp_path / name
        tifffile.imwrite(bomb, np.zeros((16, 16), np.uint8), tile=(4096, 4096), compression="zlib")
        assert not is_complete(bomb), name
    ran = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: ran.append(a))
    eps = tmp_path / "eps_colorized.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\nshowpage\n%%EOF\n")
    assert not is_complete(eps) and ran == []
    png = tmp_path / "big_colorized.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(png)
    assert is_complete(png)
    monkeypatch.setenv("TINCT_MAX_IMAGE_PIXELS", "100")  # over the pixel limit: not decoded
    assert not is_complete(png) and not is_complete(good)


def test_gzipped_fits_files_are_batch_inputs(tmp_path):
    """find_inputs matched Path.suffix, so field.fits.gz ('.gz') was silently left out."""
    from tinct.scale.planning import find_inputs

    for name in ("field.fits.gz", "m31.FIT.GZ", "notes.gz", "scan.png"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in find_inputs(tmp_path)] == ["field.fits.gz", "m31.FIT.GZ", "scan.png"]
