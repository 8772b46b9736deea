"""tinct.training.eval_files: the images of an evaluation folder."""

import numpy as np
import pytest
from PIL import Image

from tinct.training.eval_files import read_all, read_rgb


def test_a_hostile_file_in_an_evaluation_folder_is_skipped_and_named(tmp_path, monkeypatch):
    """An EPS named .jpg ran Ghostscript and a TIFF tile bomb named .png went to libtiff."""
    import tifffile
    from PIL import EpsImagePlugin

    ran = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: ran.append(a))
    good = tmp_path / "good.png"
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(good)
    eps = tmp_path / "eps.jpg"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\nshowpage\n%%EOF\n")
    bomb = tmp_path / "bomb.png"  # 16 x 16 pixels in one 4096 x 4096 tile
    tifffile.imwrite(bomb, np.zeros((16, 16), np.uint8), tile=(4096, 4096), compression="zlib")
    lines: list[str] = []
    kept, images = read_all([bomb, eps, good], lines.append)
    assert ran == [] and kept == [good]
    np.testing.assert_array_equal(images[0], rgb)
    assert len(lines) == 1 and lines[0].startswith("skipped 2 unreadable images: ")
    assert f"{bomb}: " in lines[0] and f"{eps}: " in lines[0] and "tiles of 4096" in lines[0]
    assert lines[0].count(str(bomb)) == 1 and lines[0].count(str(eps)) == 1


def test_each_skipped_file_is_named_once(tmp_path):
    """'dot.png (... 'dot.png' ...)': the reason named the file a second time."""
    good = tmp_path / "good.png"
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(good)
    broken, dot = tmp_path / "broken.png", tmp_path / "dot.png"
    broken.write_bytes(b"not a png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(dot)
    lines: list[str] = []
    kept, _ = read_all([broken, tmp_path / "gone.png", dot, good], lines.append)
    assert kept == [good]
    assert lines == [
        f"skipped 3 unreadable images: {broken}: not an image file of a format tinct reads; "
        f"{tmp_path}/gone.png: no such file; {dot}: 1x1 pixels, smaller than 2x2"
    ]
    with pytest.raises(ValueError) as caught:
        read_rgb(broken)
    assert str(caught.value) == (
        f"cannot read image {broken}: not an image file of a format tinct reads"
    )
