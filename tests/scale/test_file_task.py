"""tinct.scale.file_task: one file of a batch, in process (no cluster needed)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import tinct
from tinct.engine.options import ColorizeOptions
from tinct.scale.file_task import FileResult, colorize_file
from tinct.scale.planning import existing_output, is_complete


@pytest.fixture(scope="module")
def options(tmp_path_factory):
    """A random-weight ``tinct-small`` saved to a file, on the CPU."""
    from tinct.models.weights import save_weights

    model = tinct.load_model("tinct-small", pretrained=False)
    weights = save_weights(model, tmp_path_factory.mktemp("w") / "small.safetensors")
    return ColorizeOptions(model=str(weights), device="cpu")


@pytest.fixture
def image(tmp_path):
    """A gray 48x64 PNG with smooth structure (not pure noise)."""
    yy, xx = np.mgrid[0:48, 0:64]
    img = 127 + 80 * np.sin(0.2 * yy) * np.cos(0.1 * xx)
    path = tmp_path / "in" / "img00.png"
    path.parent.mkdir()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def test_colorize_file_in_process(image, options, tmp_path):
    src = image
    r = colorize_file(src, tmp_path / "o", options)
    assert r.status == "done", r.error
    assert r.output == str(tmp_path / "o" / "img00_colorized.png")
    assert existing_output(src, tmp_path / "o") == tmp_path / "o" / "img00_colorized.png"
    assert colorize_file(src, tmp_path / "o", options).status == "skipped"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG truncated")
    r = colorize_file(bad, tmp_path / "o", options)
    assert (r.status == "failed" and r.output is None and "bad.png" not in r.error) or r.error
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["img00_colorized.png"]


def test_empty_or_truncated_outputs_are_redone_finished_ones_kept(tmp_path, options):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(np.full((8, 8), 99, np.uint8)).save(src / f"{name}.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_colorized.png").write_bytes(b"")  # 0 bytes: a full disk
    good = np.full((8, 8, 3), 7, np.uint8)
    Image.fromarray(good).save(out / "b_colorized.png")
    whole = (out / "b_colorized.png").read_bytes()
    (out / "c_colorized.png").write_bytes(whole[: len(whole) // 2])  # cut mid-write
    assert not is_complete(out / "a_colorized.png") and not is_complete(out / "c_colorized.png")
    assert existing_output(src / "b.png", out) == out / "b_colorized.png"
    results = [colorize_file(src / f"{n}.png", out, options) for n in ("a", "b", "c")]
    assert [r.status for r in results] == ["done", "skipped", "done"]
    assert (out / "b_colorized.png").read_bytes() == whole  # a finished output is never lost
    assert all(is_complete(out / f"{n}_colorized.png") for n in "abc")


def test_warnings_come_back_with_the_result(tmp_path, options):
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((32, 32), 3, np.uint8)).save(flat)
    r = colorize_file(flat, tmp_path / "o", options)
    assert r.status == "done", r.error
    assert len(r.warnings) == 1 and "nearly constant" in r.warnings[0]


_REGULAR = "regular file (a FIFO, a device or a broken link)"


def test_a_fifo_or_a_looping_link_fails_without_being_opened(tmp_path, options):
    """Reading a FIFO named like an image would wait for a writer for ever: the batch hung."""
    import os

    from engine_helpers import finishes_despite_fifo

    fifo = tmp_path / "in" / "fifo.png"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    loop = tmp_path / "in" / "loop.png"
    loop.symlink_to(loop.name)
    results = {}

    def run():
        for src in (fifo, loop):
            results[src.name] = colorize_file(src, tmp_path / "o", options)

    finishes_despite_fifo(run, fifo, 60)
    assert set(results) == {"fifo.png", "loop.png"}, "colorize_file blocked on the FIFO"
    for r in results.values():
        # the error said the path again ("PATH is not ..."); tinct batch names the file itself
        assert (r.status, r.error) == ("failed", f"not a {_REGULAR}")
    assert not (tmp_path / "o").exists()


def test_options_default_like_run_batch(image, tmp_path):
    # options was required: colorize_file(path, out) was a TypeError from Python
    r = colorize_file(image, tmp_path / "o", pretrained=False)
    assert r.status == "done", r.error
    assert is_complete(tmp_path / "o" / "img00_colorized.png")
    assert colorize_file(str(image), str(tmp_path / "o")).status == "skipped"


def test_a_failure_does_not_repeat_the_file_name(tmp_path, options):
    text, empty = tmp_path / "notes.png", tmp_path / "empty.png"
    text.write_text("this is not an image\n")
    empty.write_bytes(b"")
    r = colorize_file(text, tmp_path / "o", options)
    # FileResult.error was "PATH: not an image ...", so tinct batch said "PATH: PATH: ..."
    assert (r.status, r.error) == ("failed", "not an image file of a format tinct reads")
    r = colorize_file(empty, tmp_path / "o", options)
    assert (r.status, r.error) == ("failed", "the file is empty (0 bytes)")


def test_a_file_failing_for_an_option_names_its_flag_and_exits_2(image, options, tmp_path):
    from tinct.scale.batch import BatchSummary

    r = colorize_file(image, tmp_path / "o", options.replace(tile=16, net_size=4096))
    assert (r.status, r.option, r.output) == ("failed", "tile", None)
    assert r.error.startswith("--tile: cuts this image into ") and "--net-size 4096" in r.error
    summary = BatchSummary()
    summary.add(FileResult("x.png", None, "failed", "not an image file"))
    assert summary.exit_code == 1
    summary.add(r)
    assert summary.exit_code == 2  # a usage error on that image, as in tinct colorize


@pytest.fixture
def scan16(tmp_path):
    """A smooth 16-bit gray ramp as a PNG, in a folder of its own."""
    from depth_helpers import gradient16

    path = tmp_path / "in16" / "scan16.png"
    path.parent.mkdir()
    Image.fromarray(gradient16(48, 64)).save(path)
    return path


def test_a_16_bit_input_gives_a_16_bit_png_and_a_rerun_skips_it(scan16, options, tmp_path):
    from depth_helpers import png_bits, read_png

    r = colorize_file(scan16, tmp_path / "o", options)
    assert r.status == "done", r.error
    assert png_bits(r.output) == 16
    rgb = read_png(r.output)
    assert rgb.shape == (48, 64, 3) and len(np.unique(rgb[..., 1])) > 256
    assert is_complete(r.output)  # a finished output for the rerun
    assert colorize_file(scan16, tmp_path / "o", options).status == "skipped"
    r8 = colorize_file(scan16, tmp_path / "o8", options, output_depth="8")
    assert r8.status == "done" and png_bits(r8.output) == 8


def test_16_bits_for_a_video_fails_it_naming_output_depth_before_reading_it(options, tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read: refused first")
    r = colorize_file(video, tmp_path / "o", options, output_depth="16")
    assert (r.status, r.option, r.output) == ("failed", "output_depth", None)
    assert r.error.startswith("--output-depth: ") and "clip_colorized.mp4" in r.error
    assert not (tmp_path / "o").exists()
