"""Video files in, colorized video files out, streamed with bounded memory.

Needs the optional extra ``video`` (``pip install "tinct[video]"``): imageio's
ffmpeg backend, `imageio-ffmpeg`, whose wheel ships its own ffmpeg binary.
Frames are decoded as 8-bit gray by ffmpeg, colorized in chunks of
:data:`CHUNK_FRAMES` (``temporal`` mode carries colour and hints from chunk to
chunk through one :class:`tinct.engine.temporal.TemporalRun`), and piped straight
into an H.264 encoder: memory holds one chunk of frames, never the film.
The frame rate is kept and the audio stream copied (re-encoded to AAC when
its codec does not fit an MP4 file).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinct.engine import inputs as _in
from tinct.engine.thread_warnings import collect_warnings

if TYPE_CHECKING:
    from tinct.engine.colorizer import Colorizer
    from tinct.engine.hints import Hint
    from tinct.engine.options import ColorizeOptions

__all__ = [
    "CHUNK_FRAMES",
    "VIDEO_SUFFIXES",
    "VideoInfo",
    "colorize_video",
    "is_readable",
    "is_video",
    "output_path",
    "probe",
]

#: File suffixes read as video.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")
#: Frames colorized together (network batch); fewer for very large frames.
CHUNK_FRAMES = 8
#: Pixels held in one chunk at most (bounds memory for 4K and larger frames).
CHUNK_PIXELS = 8 * 1920 * 1088
#: Audio codecs an MP4 file holds as they are (others are re-encoded to AAC).
MP4_AUDIO = ("aac", "mp3", "ac3", "eac3", "alac", "opus", "flac")
#: Exact frame rates that ffmpeg reports rounded (NTSC family).
_NTSC = (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001))


def _ffmpeg() -> Any:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ImportError(
            'video files need the optional extra: pip install "tinct[video]" (imageio-ffmpeg)'
        ) from None
    return imageio_ffmpeg


def is_video(path: str | Path) -> bool:
    """Whether a path names a video file (by its suffix)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def output_path(src: str | Path, out_dir: str | Path) -> Path:
    """``out_dir / "<stem>_colorized.mp4"`` for an input video."""
    return Path(out_dir) / f"{Path(src).stem}_colorized.mp4"


@dataclass(frozen=True)
class VideoInfo:
    """What a video file declares.

    Attributes:
        size: ``(height, width)`` of a frame.
        fps: Frame rate (exact for the NTSC rates).
        frames: Frame count estimated from the duration (``0`` when unknown).
        audio: Codec of the first audio stream, or ``None``.
    """

    size: tuple[int, int]
    fps: Fraction
    frames: int
    audio: str | None


def _info(meta: dict[str, Any], path: Path) -> VideoInfo:
    """Validate what ffmpeg says about a file before memory is spent on it.

    A frame may have as many pixels as an image file
    (:func:`tinct.engine.filelimits.max_read_pixels`): a few MB of PNG-coded frames of
    40000 x 40000 would otherwise be decoded and colorized, over 10 GB each.
    """
    from tinct.engine.filelimits import MAX_READ_PIXELS_ENV, ImageTooLargeError, max_read_pixels

    w, h = (int(v) for v in meta.get("size", (0, 0)))
    if h < 2 or w < 2:
        raise ValueError(f"{path}: no readable video stream")
    limit = min(_in.MAX_PIXELS, max_read_pixels())
    if h > _in.MAX_SIDE or w > _in.MAX_SIDE or h * w > limit:
        raise ImageTooLargeError(
            f"{path}: frames of {w}x{h} pixels are too large (at most {limit:,} pixels a frame "
            f"and {_in.MAX_SIDE} a side; set {MAX_READ_PIXELS_ENV} to allow larger frames)"
        )
    fps_f = float(meta.get("fps") or 0.0)
    if not (0.0 < fps_f <= 1000.0):
        raise ValueError(f"{path}: unusable frame rate {meta.get('fps')!r}")
    fps = next((r for r in _NTSC if abs(float(r) - fps_f) < 0.006), None)
    fps = fps or Fraction(fps_f).limit_denominator(1001)
    duration = float(meta.get("duration") or 0.0)
    frames = round(duration * fps_f) if math.isfinite(duration) and duration > 0 else 0
    return VideoInfo((h, w), fps, frames, meta.get("audio_codec"))


def probe(path: str | Path) -> VideoInfo:
    """Read a video file's size, frame rate, frame count and audio codec.

    Raises:
        OSError: ffmpeg cannot open the file.
        ValueError: No video stream, or frames too large.
    """
    path = Path(path)
    gen = _ffmpeg().read_frames(str(path), pix_fmt="gray", bpp=1)
    try:
        meta = next(gen)
    except (RuntimeError, StopIteration) as exc:
        raise OSError(f"{path}: not a readable video ({exc})") from None
    except OSError as exc:  # imageio-ffmpeg: "Could not load meta information", ffmpeg's log
        raise OSError(f"{path}: not a readable video ({_ffmpeg_said(exc)})") from None
    finally:
        gen.close()
    return _info(meta, path)


def _ffmpeg_said(exc: BaseException) -> str:
    """The last line of ffmpeg's log in an imageio-ffmpeg error (after ``=== stderr ===``).

    The error's first line alone ("Could not load meta information") said nothing of why.
    """
    text = str(exc)
    log = text.split("=== stderr ===", 1)[1] if "=== stderr ===" in text else ""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    if not lines:
        return (text.strip().splitlines() or [type(exc).__name__])[0]
    return "ffmpeg: " + lines[-1].removeprefix("Error opening input files: ")


def is_readable(path: str | Path) -> bool:
    """Whether ffmpeg reads a video file's header and its first frame (a finished file).

    Never raises: a missing ``video`` extra, an unreadable or an empty file is ``False``.
    """
    try:
        frames = _chunks(Path(path), probe(path), 1)
        try:
            first = next(frames, None)
        finally:
            frames.close()  # type: ignore[attr-defined]
    except Exception:  # any decoder error or a missing extra: not a finished video
        return False
    return first is not None


def _chunks(path: Path, info: VideoInfo, n: int) -> Iterator[np.ndarray]:
    """``(k, H, W)`` uint8 gray frames, ``k <= n``, in order."""
    gen = _ffmpeg().read_frames(str(path), pix_fmt="gray", bpp=1)
    try:
        next(gen)  # metadata, already read by probe
        h, w = info.size
        buf: list[np.ndarray] = []
        for raw in gen:
            buf.append(np.frombuffer(raw, np.uint8, count=h * w).reshape(h, w))
            if len(buf) == n:
                yield np.stack(buf)
                buf = []
        if buf:
            yield np.stack(buf)
    finally:
        gen.close()


def colorize_video(
    colorizer: Colorizer,
    src: str | Path,
    dst: str | Path,
    *,
    options: ColorizeOptions | None = None,
    hints: Sequence[Hint] | dict[int, Sequence[Any]] | None = None,
    reference: Any = None,
    temporal: bool = True,
    progress: bool | Callable[[int, int], None] = True,
    preset: str = "veryfast",
    crf: int = 18,
    cancel: Any = None,
) -> VideoInfo:
    """Colorize a video file into an H.264 MP4, keeping its frame rate and audio.

    Args:
        colorizer: The engine.
        src: Input video (any format the bundled ffmpeg reads).
        dst: Output ``.mp4`` path (its folder must exist).
        options: Options (defaults: the colorizer's).
        hints: Hints on frame 0, or ``{frame: [Hint | HintStop]}``; with
            ``temporal`` they follow the content (see :mod:`tinct.engine.temporal`),
            otherwise they apply at their position on every frame.
        reference: Optional colour reference image for every frame.
        temporal: Carry colour and hints along motion (flicker-free); ``False``
            colorizes frame by frame.
        progress: ``True`` for a tqdm progress bar on stderr, a callable
            ``progress(done, total)`` (total 0 when unknown), or ``False``.
        preset: x264 speed preset (``"ultrafast"`` .. ``"veryslow"``).
        crf: x264 constant rate factor (0 = lossless, 18 = visually lossless, 51 worst).
        cancel: Object with ``is_set()``; raises ``tinct.cancel.Cancelled`` when set.

    Returns:
        The input's :class:`VideoInfo` (``frames`` = frames written). Input
        warnings (:class:`tinct.engine.inputs.InputWarning`: frames nearly constant or
        nearly black) are issued once per video, after it is written.

    Raises:
        ImportError: The ``video`` extra is not installed.
        OSError: Unreadable input or a failed encoder.
        ValueError: Bad options or hints, or an input without usable frames.
    """
    src, dst = Path(src), Path(dst)
    info = probe(src)
    opts = colorizer.resolve_options(options, hinted=bool(hints))
    hint_map: dict[int, Sequence[Any]] = dict(hints) if isinstance(hints, dict) else {}
    if hints and not isinstance(hints, dict):
        hint_map = {0: list(hints)}
    h, w = info.size
    n = max(1, min(CHUNK_FRAMES, CHUNK_PIXELS // (h * w)))
    run = None
    if temporal:
        from tinct.engine.temporal import TemporalRun

        user_net = (options or colorizer.options).net_size
        run = TemporalRun(colorizer, opts, hint_map, reference=reference, rgb=False,
                          user_net=user_net, cancel=cancel)  # fmt: skip
    bar, report = _progress(progress, info.frames)
    audio = None
    if info.audio:
        audio = "copy" if info.audio.split("(")[0].lower() in MP4_AUDIO else "aac"
    with open(dst, "wb"):  # an unwritable folder fails here, as itself, not as ffmpeg's pipe
        pass
    writer = _ffmpeg().write_frames(
        str(dst), (w, h), fps=info.fps, codec="libx264", quality=None, macro_block_size=1,
        pix_fmt_out="yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p",
        output_params=["-preset", preset, "-crf", str(int(crf)), "-movflags", "+faststart"],
        audio_path=str(src) if audio else None, audio_codec=audio, ffmpeg_log_level="error",
    )  # fmt: skip
    done = 0
    notes: list[str] = []
    try:
        writer.send(None)  # start ffmpeg
        for chunk in _chunks(src, info, n):
            if run is not None:
                rgb = run.feed(chunk)
            else:
                # this thread's input notes, told once, after; other warnings pass on
                with collect_warnings(_in.InputWarning) as caught:
                    rgb = colorizer.colorize(chunk, hints=hint_map.get(0, ()),
                                             reference=reference, options=opts, rgb=False,
                                             cancel=cancel, temporal=False)  # fmt: skip
                for text in (str(c.message) for c in caught):
                    if text not in notes:
                        notes.append(text)
            for frame in rgb:
                writer.send(np.ascontiguousarray(frame))
            done += len(chunk)
            report(done)
    except BrokenPipeError as exc:  # ffmpeg exited (a full disk, say); it said why on stderr
        raise OSError(f"the video encoder (ffmpeg) stopped while writing {dst}") from exc
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    if done == 0:
        raise ValueError(f"{src}: the video has no frames")
    for note in run.notes if run is not None else notes:
        warnings.warn(note, _in.InputWarning, stacklevel=2)
    return VideoInfo(info.size, info.fps, done, info.audio)


def _progress(
    progress: bool | Callable[[int, int], None], total: int
) -> tuple[Any, Callable[[int], None]]:
    """``(tqdm bar or None, report(done))``."""
    if callable(progress):
        return None, lambda done: progress(done, total)
    if not progress:
        return None, lambda done: None
    from tqdm import tqdm

    bar = tqdm(total=total or None, unit="frame", desc="colorizing", dynamic_ncols=True)

    def report(done: int) -> None:
        bar.update(done - bar.n)

    return bar, report
