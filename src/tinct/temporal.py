"""Temporal consistency for stacks and video: colour that holds still, hints that carry.

Plane-by-plane colorization flickers wherever the model is unsure. Under
``temporal`` mode (:attr:`tinct.ColorizeOptions.temporal`) a stack is read as
a sequence along one axis (time for a time-lapse or a film, depth for a
z-stack) and :class:`TemporalRun` colorizes it plane after plane:

1. each plane's gray level is brought onto a small motion grid
   (:data:`MOTION_LONG` pixels on the long side) and :func:`tinct.motion.estimate_motion`
   finds the backward flow from the previous plane, a per-pixel confidence
   (warping error through a Gaussian gate) and scene cuts;
2. **hints carry through time**: a hint placed on plane ``t`` is moved along
   the flow to the next planes and given to the network there, until a scene
   cut, until the content under it leaves the frame or is covered (low
   confidence), until another hint is placed on that spot, or until a
   :class:`HintStop` there;
3. the engine runs the network on the planes (batched where the hints are
   the same) and decodes them as usual (:meth:`tinct.Colorizer._chroma`);
4. the decoded chrominance is **propagated along the motion**: the previous
   plane's result is warped onto the current plane and averaged with the new
   prediction, with a per-cell weight that grows with how long the content
   has persisted (a running mean over at most :data:`MAX_HISTORY` planes) and
   drops to zero wherever the confidence does (moving edges, occlusions, new
   content, real luminance changes, cuts, new hints), so colour is carried
   only where content persists and never across a motion edge;
5. the result is rendered at full resolution with the current plane's own
   luminance as guide (:func:`tinct.render.render`), so colour edges follow
   the current plane exactly.

Memory is bounded by the planes handed to :meth:`TemporalRun.feed` at once:
:mod:`tinct.video` streams a film through it in chunks of frames.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tinct import inputs as _in
from tinct import motion as _mo
from tinct.hints import Hint, hints_digest
from tinct.modelinfo import net_shape
from tinct.render import render
from tinct.runtime import resolve_threads, torch_threads
from tinct.upsample import resize

if TYPE_CHECKING:
    from tinct.engine import Colorizer
    from tinct.options import ColorizeOptions

__all__ = [
    "MAX_HISTORY",
    "MOTION_LONG",
    "HintStop",
    "TemporalRun",
    "colorize_sequence",
    "hints_by_plane",
]

#: Long side of the grid motion is estimated on.
MOTION_LONG = 256
#: Largest number of planes whose prediction a cell's colour averages (a running
#: mean that becomes an exponential average with weight ``1 - 1 / MAX_HISTORY``).
MAX_HISTORY = 8.0
#: How much more the past weighs than one new plane, per plane it averages.
HISTORY_GAIN = 1.0
#: A carried hint is dropped where the motion confidence under it falls below this.
TRACK_CONFIDENCE = 0.5
#: A new hint or a stop replaces carried hints within this many patch sides of it.
REPLACE_SIDES = 1.5

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class HintStop:
    """Ends carried hints at a spot, from the plane it is given on.

    Attributes:
        row: Row of the spot in image pixels.
        col: Column of the spot.
        size: Side of the square region in image pixels; ``None`` = the
            size of the hint it stops.
    """

    row: float
    col: float
    size: float | None = None


PlaneHints = Mapping[int, Sequence[Hint | HintStop]]


def hints_by_plane(hints: Sequence[Hint] | PlaneHints | None) -> dict[int, list[Hint | HintStop]]:
    """Normalise the ``hints`` argument of a temporal run to ``{plane: [hints]}``.

    A plain sequence of hints is placed on plane 0 (and carried from there).

    Raises:
        TypeError: Keys that are not plane numbers or items that are not hints.
        ValueError: A negative plane number.
    """
    if not hints:
        return {}
    items = hints.items() if isinstance(hints, Mapping) else [(0, hints)]
    out: dict[int, list[Hint | HintStop]] = {}
    for plane, hs in items:
        if isinstance(plane, bool) or not isinstance(plane, (int, np.integer)):
            raise TypeError(f"hint planes must be integers, got {plane!r}")
        if plane < 0:
            raise ValueError(f"hint plane must be >= 0, got {plane}")
        for h in hs:
            if not isinstance(h, (Hint, HintStop)):
                raise TypeError(f"hints must be tinct.Hint or HintStop, got {type(h).__name__}")
        out.setdefault(int(plane), []).extend(hs)
    return out


def _has_colour_hints(hints: Mapping[int, Sequence[Hint | HintStop]]) -> bool:
    return any(isinstance(h, Hint) for hs in hints.values() for h in hs)


class TemporalRun:
    """Colorize one sequence plane after plane, carrying colour and hints along motion.

    Args:
        colorizer: The engine (its lock is held while a chunk is processed).
        options: Resolved options (see :meth:`tinct.Colorizer.resolve_options`).
        hints: ``{plane: [Hint | HintStop]}`` (see :func:`hints_by_plane`).
        reference: Optional colour reference image (as for :meth:`~tinct.Colorizer.colorize`).
        rgb: Read the last axis of the planes as colour channels.
        user_net: The caller's ``net_size`` (``None`` lets huge images raise it).
        cancel: Object with ``is_set()``; the engine raises ``Cancelled`` when set.
        progress: ``progress(fraction, message)`` per plane, when ``total`` is known.
        total: Number of planes of the sequence (for progress), if known.
    """

    def __init__(
        self,
        colorizer: Colorizer,
        options: ColorizeOptions,
        hints: Mapping[int, Sequence[Hint | HintStop]] | None = None,
        *,
        reference: Any = None,
        rgb: bool | None = None,
        user_net: int | None = None,
        cancel: Any = None,
        progress: ProgressFn | None = None,
        total: int | None = None,
    ) -> None:
        self.colorizer = colorizer
        self.options = options
        self.hints = dict(hints or {})
        self.reference = reference
        self.rgb = rgb
        self.user_net = user_net
        self.cancel = cancel
        self.progress = progress
        self.total = total
        self.index = 0  # plane number of the next plane fed
        self.cuts: list[int] = []  # planes that started a new shot
        self._tracks: list[Hint] = []  # carried hints, at their position on the last plane
        self._size: tuple[int, int] = (0, 0)
        self._prev_gray: Tensor | None = None  # (1, 1, hm, wm) on the motion grid
        self._prev_ab: Tensor | None = None  # (1, 2, h, w) on the chroma grid
        self._prev_count: Tensor | None = None  # (1, 1, h, w) planes averaged so far

    # ------------------------------------------------------------------ public

    def feed(self, planes: Any) -> np.ndarray:
        """Colorize the next planes of the sequence.

        Args:
            planes: ``(n, H, W)`` gray or ``(n, H, W, 3|4)`` RGB(A) planes, the
                sequence's next ``n`` planes (any dtype :meth:`~tinct.Colorizer.colorize` takes).

        Returns:
            ``(n, H, W, 3|4)`` RGB(A), uint8 for uint8 planes, else float32 in ``[0, 1]``.
        """
        c = self.colorizer
        arr, is_rgb = _in._validate(planes, self.rgb)
        if arr.ndim != (4 if is_rgb else 3):
            raise ValueError(f"feed takes (n, H, W[, C]) planes, got shape {arr.shape}")
        size = (arr.shape[-3], arr.shape[-2]) if is_rgb else arr.shape[-2:]
        if self._size not in ((0, 0), tuple(size)):
            raise ValueError(f"planes of {size} fed after planes of {self._size}")
        self._size = (int(size[0]), int(size[1]))
        threads = resolve_threads(c.num_threads, c.device)
        with c._lock, torch_threads(threads):
            gray = self._motion_gray(arr, is_rgb)
            motions = self._motions(gray)
            plan = [self._plan_hints(i, motions) for i in range(len(arr))]
            outs = []
            for s, e in _runs([hints_digest(p[0]) for p in plan]):
                entry = c._entry(arr[s:e], plan[s][0], self.reference, self.options,
                                 is_rgb, None, self.cancel, self.user_net)  # fmt: skip
                ab = c._chroma(entry, self.options)

                def hook(ab_w: Tensor, s: int = s) -> Tensor:
                    return torch.cat([self._blend(ab_w[i : i + 1], motions[s + i], plan[s + i][1])
                                      for i in range(len(ab_w))])  # fmt: skip

                c.stats.decodes += 1
                outs.append(render(entry, ab, c._work(entry), c.info.space, c._scratch,
                                   work_hook=hook))  # fmt: skip
                if self.progress and self.total:
                    self.progress((self.index + e) / self.total, f"plane {self.index + e}")
            self._prev_gray = gray[-1:]
        self.index += len(arr)
        return np.concatenate(outs, 0) if len(outs) > 1 else outs[0]

    # ------------------------------------------------------------------ steps

    def _motion_gray(self, arr: np.ndarray, is_rgb: bool) -> Tensor:
        """``(n, 1, hm, wm)`` gray on the motion grid."""
        opts = self.options
        prep = _in.prepare(arr, space=self.colorizer.info.space, normalize=opts.normalize,
                           percentiles=opts.percentiles, rgb=is_rgb)  # fmt: skip
        hm, wm = net_shape(prep.size, min(MOTION_LONG, max(prep.size)))
        return resize(prep.gray, (hm, wm))

    def _motions(self, gray: Tensor) -> list[_mo.Motion | None]:
        """Motion into each plane from its predecessor (``None``: first plane or a new size)."""
        prev = self._prev_gray
        if prev is not None and prev.shape[-2:] != gray.shape[-2:]:
            prev = None
        seq = gray if prev is None else torch.cat((prev, gray))
        out: list[_mo.Motion | None] = [None] if prev is None else []
        if len(seq) > 1:
            m = _mo.estimate_motion(seq[:-1], seq[1:])
            for i in range(len(seq) - 1):
                out.append(_mo.Motion(m.flow[i : i + 1], m.confidence[i : i + 1],
                                      m.cut[i : i + 1], m.shift[i : i + 1]))  # fmt: skip
        return out

    def _plan_hints(
        self, i: int, motions: list[_mo.Motion | None]
    ) -> tuple[list[Hint], list[Hint]]:
        """Move the carried hints onto plane ``index + i``, add and stop hints placed there.

        Returns:
            ``(hints on the plane, those of them placed on it)``.
        """
        t = self.index + i
        m = motions[i]
        if m is None or bool(m.cut[0]):
            if m is not None:
                self.cuts.append(t)
            self._tracks = []
        else:
            moved = (self._move(h, m) for h in self._tracks)
            self._tracks = [h for h in moved if h is not None]
        fresh = []
        for h in self.hints.get(t, ()):
            side = self._side(h)
            self._tracks = [
                tr for tr in self._tracks
                if max(abs(tr.row - h.row), abs(tr.col - h.col))
                > REPLACE_SIDES * max(side, self._side(tr)) / 2
            ]  # fmt: skip
            if isinstance(h, Hint):
                self._tracks.append(h)
                fresh.append(h)
        return list(self._tracks), fresh

    def _move(self, hint: Hint, m: _mo.Motion) -> Hint | None:
        """A hint moved along the (backward) flow onto the current plane, or ``None``."""
        H, W = self._size
        hm, wm = m.flow.shape[-2:]
        sy, sx = hm / H, wm / W
        py, px = (hint.row + 0.5) * sy - 0.5, (hint.col + 0.5) * sx - 0.5
        y, x = py, px
        for _ in range(3):  # solve y + flow(y) = p for the new position y
            fy, fx = _sample(m.flow[0], y, x)
            y, x = py - fy, px - fx
        row, col = (y + 0.5) / sy - 0.5, (x + 0.5) / sx - 0.5
        if not (0 <= row <= H - 1 and 0 <= col <= W - 1):
            return None
        if _sample(m.confidence[0], y, x)[0] < TRACK_CONFIDENCE:
            return None
        return dataclasses.replace(hint, row=row, col=col)

    def _side(self, h: Hint | HintStop) -> float:
        """Patch side of a hint in image pixels."""
        if h.size is not None:
            return float(h.size)
        H, W = self._size
        net = max(net_shape((H, W), int(self.options.net_size or MOTION_LONG)))
        return float(self.options.hint_size or 5) * max(H, W) / net

    def _blend(self, ab: Tensor, m: _mo.Motion | None, fresh: list[Hint]) -> Tensor:
        """Average one plane's chroma ``(1, 2, h, w)`` with the warped past where it persists."""
        h, w = ab.shape[-2:]
        prev = self._prev_ab
        if m is None or bool(m.cut[0]) or prev is None:
            count = torch.ones(1, 1, h, w, dtype=ab.dtype, device=ab.device)
            out = ab
        else:
            if prev.shape[-2:] != (h, w):  # another chroma grid (e.g. decoder changed)
                prev = resize(prev, (h, w))
                self._prev_count = resize(self._prev_count, (h, w))
            flow, conf = _mo.pool_flow(m, (h, w))
            flow, conf = flow.to(ab), conf.to(ab)
            warped, inside = _mo.warp(prev.to(ab), flow, valid=True)
            past = _mo.warp(self._prev_count.to(ab), flow) * conf * inside
            if fresh:
                past = past * (1.0 - self._fresh_mask(fresh, (h, w)).to(ab))
            count = (past + 1.0).clamp_(max=MAX_HISTORY)
            out = torch.lerp(ab, warped, 1.0 - 1.0 / (1.0 + HISTORY_GAIN * (count - 1.0)))
        self._prev_ab, self._prev_count = out, count
        return out

    def _fresh_mask(self, fresh: list[Hint], size: tuple[int, int]) -> Tensor:
        """``(1, 1, h, w)`` where hints placed on this plane decide the colour alone."""
        h, w = size
        H, W = self._size
        mask = torch.zeros(1, 1, h, w)
        ys = (torch.arange(h, dtype=torch.float32) + 0.5) * H / h
        xs = (torch.arange(w, dtype=torch.float32) + 0.5) * W / w
        for hint in fresh:
            r = 2.0 * max(self._side(hint), H / h)
            d2 = (ys[:, None] - hint.row) ** 2 + (xs[None, :] - hint.col) ** 2
            mask[0, 0] = torch.maximum(mask[0, 0], torch.exp(-0.5 * d2 / (r * r)))
        return mask


def _sample(x: Tensor, y: float, xpos: float) -> tuple[float, ...]:
    """Bilinear sample of ``(C, h, w)`` at one grid position (borders replicated)."""
    _, h, w = x.shape
    g = torch.tensor(
        [[[[2.0 * xpos / max(w - 1, 1) - 1.0, 2.0 * y / max(h - 1, 1) - 1.0]]]], dtype=x.dtype
    )
    v = F.grid_sample(x[None], g, mode="bilinear", padding_mode="border", align_corners=True)
    return tuple(float(a) for a in v.reshape(-1))


def _runs(keys: Iterable[str]) -> list[tuple[int, int]]:
    """``(start, end)`` of the runs of equal consecutive keys."""
    out: list[tuple[int, int]] = []
    prev = None
    for i, k in enumerate(keys):
        if out and k == prev:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
        prev = k
    return out


def colorize_sequence(
    colorizer: Colorizer,
    image: Any,
    hints: Sequence[Hint] | PlaneHints | None,
    options: ColorizeOptions,
    *,
    axis: int = 0,
    reference: Any = None,
    rgb: bool | None = None,
    user_net: int | None = None,
    progress: ProgressFn | None = None,
    cancel: Any = None,
) -> np.ndarray:
    """Colorize an in-memory stack as a sequence along ``axis`` (temporal mode).

    Other leading axes (e.g. Z of a ``(T, Z, H, W)`` time-lapse) are separate
    sequences. Intensities are normalised over the whole stack, as without
    temporal mode.

    Args:
        colorizer: The engine.
        image: ``(..., H, W)`` gray or ``(..., H, W, 3|4)`` RGB(A) stack.
        hints: Hints on plane 0 (a sequence) or ``{plane: [Hint | HintStop]}``;
            planes count along ``axis``.
        options: Resolved options.
        axis: The sequence axis among the leading (non-spatial) axes.
        reference: Optional colour reference image.
        rgb: As for :meth:`tinct.Colorizer.colorize`.
        user_net: The caller's ``net_size``.
        progress: ``progress(fraction, message)`` callback.
        cancel: Object with ``is_set()``.

    Returns:
        ``(..., H, W, 3|4)`` RGB(A) in the input's leading shape.

    Raises:
        ValueError: A 2-D image, an axis out of range, or bad hints.
    """
    arr, is_rgb = _in._validate(image, rgb)
    lead = arr.shape[:-3] if is_rgb else arr.shape[:-2]
    if not lead:
        raise ValueError("temporal mode needs a stack (..., H, W); got a single image")
    if not -len(lead) <= axis < len(lead):
        raise ValueError(f"axis {axis} is out of range for a stack with leading shape {lead}")
    axis %= len(lead)
    plane_hints = hints_by_plane(hints)
    if any(p >= lead[axis] for p in plane_hints):
        raise ValueError(f"a hint plane is beyond the {lead[axis]} planes along axis {axis}")
    tail = arr.shape[len(lead) :]
    seqs = np.moveaxis(arr, axis, 0).reshape(lead[axis], -1, *tail)
    opts = options
    if _needs_global_range(arr, is_rgb, opts.normalize):
        lo, hi = _in._range(arr[..., :3] if is_rgb else arr, opts.normalize, opts.percentiles)
        opts = opts.replace(normalize="dtype")
        seqs = _normalised(seqs, lo, hi, is_rgb)
    n_seq, T = seqs.shape[1], seqs.shape[0]
    outs = []
    for k in range(n_seq):
        sub = None
        if progress is not None:

            def sub(f: float, msg: str, k: int = k) -> None:
                progress((k + f) / n_seq, msg)

        run = TemporalRun(colorizer, opts, plane_hints, reference=reference, rgb=is_rgb,
                          user_net=user_net, cancel=cancel, progress=sub, total=T)  # fmt: skip
        outs.append(run.feed(seqs[:, k]))
    out = np.stack(outs, 1).reshape(
        lead[axis], *np.delete(np.array(lead), axis), *outs[0].shape[-3:]
    )
    return np.moveaxis(out, 0, axis)


def _needs_global_range(arr: np.ndarray, is_rgb: bool, mode: str) -> bool:
    """Would per-chunk normalisation differ from normalising the whole stack?"""
    if mode == "dtype":
        return False
    if mode == "percentile":
        return True
    part = arr[..., :3] if is_rgb else arr
    if part.dtype in (np.uint8, np.uint16):
        return False
    return not (np.issubdtype(part.dtype, np.floating) and part.min() >= 0 and part.max() <= 1)


def _normalised(seqs: np.ndarray, lo: float, hi: float, is_rgb: bool) -> np.ndarray:
    """Intensities mapped to float32 ``[0, 1]`` by one range (alpha keeps its dtype range)."""
    out = np.empty(seqs.shape, np.float32)
    colour = (slice(None),) * (seqs.ndim - 1) + (slice(0, 3),) if is_rgb else (...,)
    np.clip((seqs[colour].astype(np.float32) - lo) / (hi - lo), 0.0, 1.0, out=out[colour])
    if is_rgb and seqs.shape[-1] == 4:
        a = seqs[..., 3]
        alo, ahi = _in._range(a, "dtype", (0.0, 100.0))
        out[..., 3] = np.clip((a.astype(np.float32) - alo) / (ahi - alo), 0.0, 1.0)
    return out
