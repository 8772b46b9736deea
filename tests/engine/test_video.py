"""Video files: streaming colorization with the bundled ffmpeg (the ``video`` extra)."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

import tinct
from tinct import Hint
from tinct.cli import main
from tinct.engine import video

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")


def make_clip(path, size="96x64", rate="12", seconds="1.5", audio=True, pix_fmt="yuv420p"):
    """A moving test pattern (and a sine tone) made with the bundled ffmpeg."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
           "-i", f"testsrc=size={size}:rate={rate}"]  # fmt: skip
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440", "-c:a", "aac"]
    cmd += ["-t", seconds, "-pix_fmt", pix_fmt, "-c:v", "libx264", str(path)]
    subprocess.run(cmd, check=True)
    return path


def read_all(path):
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return meta, np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen])


@pytest.fixture(scope="module")
def colorizer():
    return tinct.Colorizer("tinct-base", device="cpu", num_threads=1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("v") / "clip.mp4")


def test_probe_and_names(clip):
    info = video.probe(clip)
    assert info.size == (64, 96) and info.fps == 12 and info.frames == 18 and info.audio == "aac"
    assert video.is_video("a/B.MP4") and video.is_video("x.mkv") and not video.is_video("x.png")
    assert video.output_path("in/clip.mov", "out").as_posix() == "out/clip_colorized.mp4"


def test_temporal_video_keeps_frames_rate_and_audio(colorizer, clip, tmp_path):
    seen = []
    dst = tmp_path / "out.mp4"
    hints = [Hint(30, 40, color=(255, 0, 0))]
    info = video.colorize_video(
        colorizer, clip, dst, hints=hints, progress=lambda done, total: seen.append((done, total))
    )
    assert info.frames == 18
    out = video.probe(dst)
    assert out.size == (64, 96) and out.fps == 12 and out.audio == "aac"
    _, frames = read_all(dst)
    assert len(frames) == 18
    assert frames.astype(int).std(-1).mean() > 3  # colour, not gray
    assert seen[-1] == (18, 18) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_independent_mode_and_no_audio_and_odd_size(colorizer, tmp_path):
    src = make_clip(tmp_path / "odd.mkv", size="65x47", seconds="0.5", audio=False,
                    pix_fmt="yuv444p")  # fmt: skip
    dst = tmp_path / "odd_colorized.mp4"
    info = video.colorize_video(colorizer, src, dst, temporal=False, progress=False)
    out = video.probe(dst)
    assert info.frames == 6 and out.size == (47, 65) and out.audio is None
    assert out.fps == Fraction(12)


def test_unreadable_files_and_missing_extra(colorizer, tmp_path, monkeypatch):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(OSError):
        video.colorize_video(colorizer, bad, tmp_path / "o.mp4", progress=False)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(ImportError, match="tinct\\[video\\]"):
        video.probe(bad)


def test_cli_colorizes_a_video_into_the_output_folder(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["colorize", str(clip), "-o", f"{out}/", "--temporal", "-q"]) == 0
    assert "warning" not in capsys.readouterr().err  # no "unclosed file" from ffmpeg's pipes
    dest = out / "clip_colorized.mp4"
    assert video.probe(dest).frames == 18
    one = tmp_path / "named.mp4"  # one input, -o names the file
    assert main(["colorize", str(clip), "-o", str(one), "-q"]) == 0
    assert video.probe(one).size == (64, 96)
    assert main(["colorize", str(clip), "-o", str(tmp_path / "x.png"), "-q"]) == 2
    assert "-o" in capsys.readouterr().err
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"junk")
    assert main(["colorize", str(bad), str(clip), "-o", str(out), "-q"]) == 1
    assert "bad.avi" in capsys.readouterr().err


def test_batch_takes_videos(clip, tmp_path):
    pytest.importorskip("distributed")
    from tinct.engine.options import ColorizeOptions
    from tinct.scale.file_task import colorize_file
    from tinct.scale.planning import existing_output, find_inputs

    (tmp_path / "in").mkdir()
    src = tmp_path / "in" / "clip.mp4"
    src.write_bytes(clip.read_bytes())
    assert find_inputs(tmp_path / "in") == [src]
    r = colorize_file(src, tmp_path / "o", ColorizeOptions(device="cpu", temporal=True))
    assert r.status == "done", r.error
    assert existing_output(src, tmp_path / "o") == tmp_path / "o" / "clip_colorized.mp4"
    assert video.probe(r.output).frames == 18
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["clip_colorized.mp4"]
    opts = ColorizeOptions(device="cpu")
    assert colorize_file(src, tmp_path / "o", opts).status == "skipped"  # a rerun resumes
    cut = tmp_path / "o" / "clip_colorized.mp4"
    cut.write_bytes(cut.read_bytes()[:2000])  # a cut-off file (e.g. a full disk) is redone
    assert existing_output(src, tmp_path / "o") is None
    assert colorize_file(src, tmp_path / "o", opts).status == "done"
    assert video.probe(cut).frames == 18


def test_frames_larger_than_an_image_may_be_are_refused_before_decoding(tmp_path, monkeypatch):
    """A video's frames are held to the pixel limit of image files (TINCT_MAX_IMAGE_PIXELS):
    33 KB of PNG-coded 2000 x 2000 frames passed a limit of 1,000,000 pixels (only 2^31 held)."""
    from tinct.engine.imagefiles import MAX_READ_PIXELS_ENV, ImageTooLargeError

    path = tmp_path / "big.mov"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=gray:s=2000x2000", "-frames:v", "2", "-c:v", "png", str(path)],
                   check=True)  # fmt: skip
    assert video.probe(path).size == (2000, 2000)
    monkeypatch.setenv(MAX_READ_PIXELS_ENV, "1000000")
    with pytest.raises(ImageTooLargeError, match="frames of 2000x2000 pixels are too large"):
        video.probe(path)


def test_an_unwritable_output_is_said_as_such_not_as_ffmpegs_broken_pipe(
    colorizer, clip, tmp_path, capfd
):
    """ffmpeg failed to open the output, printed three lines and tinct said 'Broken pipe'."""
    (tmp_path / "afile").write_bytes(b"")
    dst = tmp_path / "afile" / "x.mp4"  # a folder that is a file: unwritable even for root
    with pytest.raises(NotADirectoryError):
        video.colorize_video(colorizer, clip, dst, progress=False)
    assert "Error opening output" not in capfd.readouterr().err  # ffmpeg never started
