import numpy as np
import pytest
import torch
from PIL import Image

from tinct.training.datasets import ImageBank, find_images, is_near_gray
from tinct.training.sampling import BatchSampler, global_hint_from_ab, simulate_hints


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    for i in range(5):
        arr = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
        Image.fromarray(arr).save(sub / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_find_images_recursive_and_sorted(image_dir):
    found = find_images(image_dir)
    assert len(found) == 5
    assert found == sorted(found)
    assert all(p.suffix == ".png" for p in found)


def test_find_images_lists_regular_files_only(image_dir):
    """A FIFO named like an image would block the training's reader for ever (tinct train,
    tinct evaluate, napari's Train); a folder or a broken link named so is no image either."""
    import os

    os.mkfifo(image_dir / "a" / "fifo.png")
    (image_dir / "a" / "folder.jpg").mkdir()
    (image_dir / "a" / "gone.png").symlink_to(image_dir / "nowhere.png")
    (image_dir / "a" / "link.png").symlink_to(image_dir / "a" / "b" / "img0.png")
    found = find_images(image_dir)
    assert [p.name for p in found] == [f"img{i}.png" for i in range(5)] + ["link.png"]


def test_find_images_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such"):
        find_images(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no images"):
        find_images(tmp_path)


def test_image_bank_squares_and_cache(image_dir, tmp_path):
    paths = find_images(image_dir)
    bank = ImageBank(paths, size=32, cache_dir=tmp_path / "cache", progress=False)
    assert bank.images.shape == (5, 32, 32, 3) and bank.images.dtype == np.uint8
    again = ImageBank(paths, size=32, cache_dir=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(np.asarray(again.images), bank.images)


def test_a_stale_or_broken_cache_is_decoded_afresh(image_dir, tmp_path):
    """The cache was keyed by the file names alone, and loaded as it was: an image edited
    since trained as it had been, and a cut-off or foreign .npy became the data."""
    import os
    import shutil

    folder = tmp_path / "imgs"
    shutil.copytree(image_dir, folder)
    paths, cache = find_images(folder), tmp_path / "cache"
    first = ImageBank(paths, size=32, cache_dir=cache, progress=False)
    (stored,) = cache.iterdir()
    for wrong in (np.zeros((5, 3)), np.zeros((5, 32, 32, 3), np.float32), b"cut off"):
        if isinstance(wrong, bytes):
            stored.write_bytes(wrong)
        else:
            np.save(stored, wrong)
        bank = ImageBank(paths, size=32, cache_dir=cache, progress=False)
        np.testing.assert_array_equal(np.asarray(bank.images), first.images)
    if hasattr(os, "mkfifo"):  # a FIFO in its place: np.load waited for a writer for ever
        from engine_helpers import finishes_despite_fifo

        stored.unlink()
        os.mkfifo(stored)
        banks: list[ImageBank] = []

        def load() -> None:
            banks.append(ImageBank(paths, size=32, cache_dir=cache, progress=False))

        assert finishes_despite_fifo(load, stored, 30), "ImageBank blocked on a FIFO cache"
        np.testing.assert_array_equal(np.asarray(banks[0].images), first.images)
        assert stored.is_file()  # replaced by the decoded array
    edited = paths[0]
    Image.fromarray(np.full((40, 40, 3), (255, 0, 0), np.uint8)).save(edited)
    os.utime(edited, ns=(1, 1))  # whatever the clock, not the time it was cached at
    bank = ImageBank(paths, size=32, cache_dir=cache, progress=False)
    assert (np.asarray(bank.images[0]) == (255, 0, 0)).all()
    np.testing.assert_array_equal(np.asarray(bank.images[1:]), first.images[1:])


def test_image_bank_skips_unreadable_files_and_names_them(image_dir, tmp_path):
    import shutil

    from tinct.training.datasets import skipped_message

    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in find_images(image_dir)[:2]:
        shutil.copy(p, folder / p.name)
    (folder / "broken.png").write_bytes(b"not a png")
    paths = find_images(folder)
    bank = ImageBank(paths, size=32, cache_dir=tmp_path / "cache", progress=False)
    assert len(bank) == 2 and bank.images.shape == (2, 32, 32, 3)
    assert [p.name for p, _ in bank.skipped] == ["broken.png"]
    assert folder / "broken.png" not in bank.paths and len(bank.paths) == 2
    assert not (tmp_path / "cache").exists()  # a bank with holes is not cached
    msg = skipped_message(bank.skipped)
    assert msg.startswith("skipped 1 unreadable image: ") and "broken.png" in msg
    with pytest.raises(ValueError, match="cannot read any of the 1 images"):
        ImageBank([folder / "broken.png"], size=32, progress=False)


def test_a_skipped_file_is_named_once_with_its_reason(image_dir, tmp_path, monkeypatch):
    """The reason repeated the path: 'broken.png (cannot identify image file 'broken.png')'."""
    import os
    import shutil

    from tinct.training.datasets import skipped_message

    folder = tmp_path / "mixed"
    folder.mkdir()
    good = folder / "good.png"
    shutil.copy(find_images(image_dir)[0], good)
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "empty.tif").write_bytes(b"II*\0garbage")
    (folder / "link.png").symlink_to(folder / "gone.png")
    bank = ImageBank(
        [folder / n for n in ("broken.png", "empty.tif", "gone.png", "link.png")] + [good],
        size=32, progress=False,
    )  # fmt: skip
    assert skipped_message(bank.skipped, shown=4) == (
        f"skipped 4 unreadable images: {folder}/broken.png: not an image file of a format "
        f"tinct reads; {folder}/empty.tif: not a TIFF file that can be read: no image in it; "
        f"{folder}/gone.png: no such file; {folder}/link.png: not a regular file (a FIFO, a "
        "device or a broken link)"
    )
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "fifo.png")  # listed by no folder scan; named if given
        bank = ImageBank([folder / "fifo.png", good], size=32, progress=False)
        assert bank.skipped == [
            (folder / "fifo.png", "not a regular file (a FIFO, a device or a broken link)")
        ]
    monkeypatch.setenv("TINCT_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ValueError) as caught:
        ImageBank([good], size=32, progress=False)
    said = str(caught.value)
    assert said.startswith(f"cannot read any of the 1 images (first: {good}: declares ")
    assert said.count(str(good)) == 1


def test_simulate_hints_patch_means():
    g = torch.Generator().manual_seed(0)
    ab = torch.randn(3, 2, 32, 32) * 30
    hint_ab, mask = simulate_hints(ab, [0, 1, 20], g)
    assert mask[0].sum() == 0 and hint_ab[0].abs().sum() == 0
    assert mask[1].sum() >= 1 and mask[2].sum() > mask[1].sum() - 1
    # a lone hint carries the mean ab of its patch
    ys, xs = torch.nonzero(mask[1, 0], as_tuple=True)
    patch = ab[1, :, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    torch.testing.assert_close(hint_ab[1, :, ys[0], xs[0]], patch.mean((1, 2)))


def test_simulate_hints_is_seeded():
    ab = torch.randn(2, 2, 16, 16)
    a = simulate_hints(ab, [5, 5], torch.Generator().manual_seed(3))
    b = simulate_hints(ab, [5, 5], torch.Generator().manual_seed(3))
    torch.testing.assert_close(a[1], b[1])


def test_global_hint_is_a_histogram_with_flag():
    ab = torch.zeros(2, 2, 16, 16)
    gh = global_hint_from_ab(ab)
    assert gh.shape == (2, 314)
    torch.testing.assert_close(gh[:, :313].sum(1), torch.ones(2))
    assert gh[0, 120] == 1.0 and gh[0, 313] == 1.0  # bin 120 is (0, 0)


def test_near_gray():
    ab = torch.zeros(2, 2, 8, 8)
    ab[1, 0, 0, 0] = 20.0
    assert is_near_gray(ab).tolist() == [True, False]


def test_batch_sampler_shapes_ranges_and_reproducibility(image_dir):
    bank = ImageBank(find_images(image_dir), size=48, progress=False)
    s1 = BatchSampler(bank, batch_size=4, crop=32, seed=1).next()
    s2 = BatchSampler(bank, batch_size=4, crop=32, seed=1).next()
    assert s1.lum.shape == (4, 1, 32, 32) and s1.ab.shape == (4, 2, 32, 32)
    assert s1.hint_mask.shape == (4, 1, 32, 32) and s1.global_hint.shape == (4, 314)
    assert float(s1.lum.min()) >= 0 and float(s1.lum.max()) <= 100.0 + 1e-3
    torch.testing.assert_close(s1.lum, s2.lum)
    torch.testing.assert_close(s1.hint_ab, s2.hint_ab)


def test_source_id_and_split_by_source():
    from pathlib import Path

    from tinct.training.datasets import source_id, split_by_source

    assert source_id("a/TCGA-18-5592-01Z-00-DX1_x116_y372.jpg") == "TCGA-18-5592-01Z-00-DX1"
    assert source_id("gbm40_01_x0_y256.jpg") == "gbm40_01"
    assert source_id("53612916394_734d0e1e4a_o_s100_x1066_y1088.jpg") == "53612916394_734d0e1e4a_o"
    assert source_id("heic0108a.png") == "heic0108a"
    paths = [Path(f"d/s{k}_x{i}_y0.jpg") for k in range(8) for i in range(3)]
    train, held = split_by_source(paths)
    assert len(held) == 2 * 3 and len(train) == 6 * 3
    assert {source_id(p) for p in held} == {"s6", "s7"}  # the last quarter in sorted order
    assert not {source_id(p) for p in held} & {source_id(p) for p in train}
    assert split_by_source(paths, 0.0) == (sorted(paths), [])
    with pytest.raises(ValueError):
        split_by_source(paths, 1.0)


def test_held_out_sources_is_the_split_by_source_rule(tmp_path):
    from tinct.training.datasets import held_out_sources, split_by_source

    ids = ["b", "a", "d", "c", "a", "b"]
    assert held_out_sources(ids, 0.25) == {"d"}  # the last quarter of the sorted ids, >= 1
    assert held_out_sources(ids, 0.5) == {"c", "d"}
    assert held_out_sources(["only"], 0.25) == set() and held_out_sources(ids, 0.0) == set()
    with pytest.raises(ValueError):
        held_out_sources(ids, 1.0)
    paths = [tmp_path / f"{s}_x{i}_y0.png" for i, s in enumerate(ids)]
    _train, held = split_by_source(paths, 0.5)
    assert {p.name.split("_")[0] for p in held} == held_out_sources(ids, 0.5)


def test_image_bank_from_arrays_squares_like_files(tmp_path):
    from PIL import Image

    from tinct.training.datasets import ImageBank

    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    before = wide.copy()
    Image.fromarray(wide).save(tmp_path / "wide.png")
    from_file = ImageBank([tmp_path / "wide.png"], size=32, progress=False).images
    bank = ImageBank.from_arrays([wide], size=32)
    np.testing.assert_array_equal(bank.images, from_file)
    np.testing.assert_array_equal(wide, before)
    squares = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    assert ImageBank.from_arrays(squares, 32).images is squares  # no copy of ready squares
    assert len(ImageBank.from_arrays(list(squares), 32)) == 3 and bank.paths == []
    for bad in ([wide.astype(np.float32)], [wide[..., 0]], []):
        with pytest.raises(ValueError):
            ImageBank.from_arrays(bad, 32)


def _hostile_folder(image_dir, folder):
    """Two good images, an EPS named .jpg, a TIFF tile bomb named .png and a plain tile bomb."""
    import shutil

    import tifffile

    folder.mkdir()
    for p in find_images(image_dir)[:2]:
        shutil.copy(p, folder / p.name)
    (folder / "eps.jpg").write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\nshowpage\n%%EOF\n"
    )
    for name in ("bomb.png", "bomb.tif"):  # 16 x 16 pixels in one 4096 x 4096 tile (16 MiB)
        tifffile.imwrite(folder / name, np.zeros((16, 16), np.uint8), tile=(4096, 4096),
                         compression="zlib")  # fmt: skip
    return sorted(folder.iterdir())


def test_training_images_are_read_with_the_engine_bounds(image_dir, tmp_path, monkeypatch):
    """Image.open took every Pillow format: an EPS named .jpg ran Ghostscript, a TIFF named
    .png went to libtiff past tifffile's bounds. Each is skipped and named; the rest train."""
    from PIL import EpsImagePlugin

    ran = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: ran.append(a))
    paths = _hostile_folder(image_dir, tmp_path / "mixed")
    bank = ImageBank(paths, size=32, progress=False)
    assert ran == [] and len(bank) == 2
    skipped = dict(bank.skipped)
    assert {p.name for p in skipped} == {"eps.jpg", "bomb.png", "bomb.tif"}
    assert all("tiles of 4096 x 4096" in why for p, why in skipped.items() if "bomb" in p.name)
    monkeypatch.setenv("TINCT_MAX_IMAGE_PIXELS", "1000")  # 40 x 60 is over it: skipped, named
    with pytest.raises(ValueError, match=r"cannot read any .*declares 60 x 40"):
        ImageBank([p for p in paths if p.name.startswith("img")][:1], size=32, progress=False)


@pytest.mark.parametrize(
    ("data", "rgb"),
    [(np.full((6, 8), 200, np.uint8), (200, 200, 200)),
     (np.full((6, 8), 51400, np.uint16), (200, 200, 200)),
     (np.full((6, 8), 300.0, np.float32), (255, 255, 255)),
     (np.full((6, 8, 3), (1000, 52000, 65535), np.uint16), (3, 203, 255))],
    ids=["gray8", "gray16", "float", "rgb16"],
)  # fmt: skip
def test_a_tiff_of_any_kind_is_read_as_rgb(tmp_path, data, rgb):
    """No TIFF goes to Pillow now: gray and float ones (Pillow's before) are made RGB here."""
    import tifffile

    from tinct.training.datasets import load_rgb

    path = tmp_path / "x.tif"
    tifffile.imwrite(path, data, photometric="rgb" if data.ndim == 3 else "minisblack")
    out = load_rgb(path)
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == rgb


def test_image_bank_stops_between_two_images_once_cancelled(image_dir, monkeypatch):
    """A folder of hundreds is not decoded to its end after Cancel (napari's Train widget)."""
    import threading

    from tinct.cancel import Cancelled
    from tinct.training import datasets

    cancel, decoded = threading.Event(), []
    inner = datasets._load_rgb

    def load(path, size):
        decoded.append(path)
        if len(decoded) == 2:  # Cancel pressed while the second file is decoded
            cancel.set()
        return inner(path, size)

    monkeypatch.setattr(datasets, "_load_rgb", load)
    with pytest.raises(Cancelled):
        ImageBank(find_images(image_dir), size=32, progress=False, cancel=cancel)
    assert len(decoded) == 2  # of 5: the third is never started


def test_image_bank_tells_a_front_end_how_far_it_has_read(image_dir):
    told: list[tuple[int, int]] = []
    ImageBank(find_images(image_dir), size=32, progress=lambda *p: told.append(p))
    assert told == [(i, 5) for i in range(5)]
