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
4. the chrominance, once upsampled to the working grid along the plane's own
   luminance edges, is **carried along the motion**: the previous plane's
   result is warped onto the current plane and averaged with the new
   prediction, with a per-pixel weight of the past that grows with how long
   the content has persisted (:data:`HISTORY_GAIN`, :data:`MAX_HISTORY`) and
   drops to zero wherever the confidence does (moving edges, occlusions, new
   content, real luminance changes, cuts) and wherever hints placed or stopped on
   the plane change its colour (:func:`~tinct.engine.carry.recoloured`: as far as
   they reach plane by plane), so colour is carried
   only where content persists and never across a motion edge;
5. the result is rendered at full resolution with the current plane's own
   luminance as guide (:func:`tinct.engine.render.render`), so colour edges follow
   the current plane exactly.

Memory is bounded by the planes handed to :meth:`TemporalRun.feed` at once:
:mod:`tinct.engine.video` streams a film through it in chunks of frames.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from tinct import cancel as _cancel
from tinct import motion as _mo
from tinct.engine import inputs as _in
from tinct.engine.carry import HintCarrier, HintStop, PlaneHints, hints_by_plane, recoloured
from tinct.engine.hints import Hint, hints_digest
from tinct.engine.render import render
from tinct.engine.stacks import stack_notes, whole_stack_range
from tinct.engine.threads import call_threads
from tinct.models.info import net_shape
from tinct.upsample import resize

if TYPE_CHECKING:
    from tinct.engine.colorizer import Colorizer
    from tinct.engine.options import ColorizeOptions

__all__ = [
    "MAX_HISTORY",
    "MOTION_LONG",
    "TemporalRun",
    "colorize_sequence",
]

#: Long side of the grid motion is estimated on.
MOTION_LONG = 256
#: Planes of an in-memory sequence fed at once (memory grows with them: ~16 MB a plane).
FEED_PLANES = 16
#: Largest count of planes a cell's content is taken to have persisted (see HISTORY_GAIN).
MAX_HISTORY = 8.0
#: A plane's own prediction weighs ``1 / (1 + HISTORY_GAIN * (count - 1))`` against the
#: colour carried from the past, where ``count`` is how many planes the content has
#: persisted (1 for new content, at most MAX_HISTORY): 1/31 on its second plane, 1/211
#: once it has persisted for 8; the past's weight is further multiplied by the motion
#: confidence. Predictions drift as the content moves through the frame; a plain running
#: mean (gain 1) only halves that drift, this gain holds the colour (pan sequences of
#: bsds500_test: flicker 0.28 of plane by plane, against 0.43 with gain 1 on 8 of them and
#: 0.29 with gain 10; PSNR unchanged; benchmarks/bench_temporal.py).
HISTORY_GAIN = 30.0

ProgressFn = Callable[[float, str], None]


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
        self.notes: list[str] = []  # input warnings of the planes fed (each once)
        self._carrier: HintCarrier | None = None
        self._size: tuple[int, int] = (0, 0)
        self._prev_gray: Tensor | None = None  # (1, 1, hm, wm) on the motion grid
        self._prev_ab: Tensor | None = None  # (1, 2, h, w) on the working grid
        self._prev_count: Tensor | None = None  # (1, 1, h, w) planes the content persisted

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
        if self._carrier is None:
            self._carrier = HintCarrier(self.hints, self._size, self._default_side())
        # the scope carries ``cancel`` into the MRF, Levin solves and rendering
        with c._lock, call_threads(c.num_threads, c.device), _cancel.scope(self.cancel):
            entry = None
            if self.hints:  # hints move with the content: motion first, then the network
                gray = self._motion_gray(arr, is_rgb)
            else:  # one network pass; its input gray gives the motion grid
                entry = self._entry(arr, [], is_rgb, self._net_progress(len(arr)))
                gray = self._grid_gray(entry.net.gray_net)
            motions = self._motions(gray)
            plan = [self._carrier.plan(self.index + i, m) for i, m in enumerate(motions)]
            outs = []
            for s, e in _runs([hints_digest(p[0]) for p in plan]):
                if entry is None or (s, e) != (0, len(arr)):
                    entry = self._entry(arr[s:e], plan[s][0], is_rgb)
                self.notes += [n for n in entry.prepared.notes if n not in self.notes]
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

    def _entry(
        self, arr: np.ndarray, hints: list[Hint], is_rgb: bool, progress: ProgressFn | None = None
    ) -> Any:
        """The engine's (cached) network pass over some planes with one set of hints."""
        return self.colorizer._entry(arr, hints, self.reference, self.options, is_rgb,
                                     progress, self.cancel, self.user_net)  # fmt: skip

    def _net_progress(self, n: int) -> ProgressFn | None:
        """Progress of a network pass over the next ``n`` planes, as a share of the sequence."""
        if not (self.progress and self.total):
            return None
        report, start, total = self.progress, self.index, self.total

        def sub(f: float, msg: str) -> None:
            report((start + 0.9 * f * n) / total, msg)

        return sub

    def _grid_gray(self, gray: Tensor) -> Tensor:
        """``(n, 1, hm, wm)``: gray resized onto the motion grid."""
        H, W = self._size
        return resize(gray.float().cpu(), net_shape((H, W), min(MOTION_LONG, max(H, W))))

    def _motion_gray(self, arr: np.ndarray, is_rgb: bool) -> Tensor:
        """``(n, 1, hm, wm)`` gray of the planes on the motion grid."""
        opts = self.options
        prep = _in.prepare(arr, space=self.colorizer.info.space, normalize=opts.normalize,
                           percentiles=opts.percentiles, rgb=is_rgb,
                           intensity_range=opts.intensity_range)  # fmt: skip
        return self._grid_gray(prep.gray)

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

    @property
    def cuts(self) -> list[int]:
        """Planes where a scene cut was detected (a new shot starts there)."""
        return self._carrier.cuts if self._carrier is not None else []

    def _default_side(self) -> float:
        """Patch side in image pixels of hints without a size (``hint_size`` network pixels)."""
        H, W = self._size
        net = max(net_shape((H, W), int(self.options.net_size or MOTION_LONG)))
        return float(self.options.hint_size or 5) * max(H, W) / net

    def _blend(self, ab: Tensor, m: _mo.Motion | None, fresh: list[Hint | HintStop]) -> Tensor:
        """Average one plane's working-grid chroma ``(1, 2, h, w)`` with the warped past."""
        h, w = ab.shape[-2:]
        prev = self._prev_ab
        if m is None or bool(m.cut[0]) or prev is None:
            count = torch.ones(1, 1, h, w, dtype=ab.dtype, device=ab.device)
            out = ab
        else:
            if prev.shape[-2:] != (h, w):  # another working grid
                prev = resize(prev, (h, w))
                self._prev_count = resize(self._prev_count, (h, w))  # type: ignore[arg-type]
            flow, conf = _mo.pool_flow(m, (h, w))
            flow, conf = flow.to(ab), conf.to(ab)
            warped, inside = _mo.warp(prev.to(ab), flow, valid=True)
            keep = conf * inside
            if fresh:  # the user's edit wins where it reaches: around it, and where it recolours
                keep = keep * (1.0 - self._fresh_mask(fresh, (h, w)).to(ab))
                keep = keep * (1.0 - recoloured(ab, warped, self.colorizer.info.space))
            past = _mo.warp(self._prev_count.to(ab), flow) * keep  # type: ignore[union-attr]
            count = (past + 1.0).clamp_(max=MAX_HISTORY)  # type: ignore[operator]
            weight = (1.0 - 1.0 / (1.0 + HISTORY_GAIN * (count - 1.0))) * keep
            out = torch.lerp(ab, warped, weight)
        self._prev_ab, self._prev_count = out, count
        return out

    def _fresh_mask(self, fresh: list[Hint | HintStop], size: tuple[int, int]) -> Tensor:
        """``(1, 1, h, w)`` around hints and stops placed on this plane: no colour carried."""
        h, w = size
        H, W = self._size
        mask = torch.zeros(1, 1, h, w)
        ys = (torch.arange(h, dtype=torch.float32) + 0.5) * H / h
        xs = (torch.arange(w, dtype=torch.float32) + 0.5) * W / w
        for hint in fresh:
            r = 2.0 * max(self._carrier.side(hint), H / h)  # type: ignore[union-attr]
            d2 = (ys[:, None] - hint.row) ** 2 + (xs[None, :] - hint.col) ** 2
            mask[0, 0] = torch.maximum(mask[0, 0], torch.exp(-0.5 * d2 / (r * r)))
        return mask


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
    temporal mode (percentiles of the whole stack, not of each run of planes).
    A single ``(H, W)`` image is colorized as usual. The input warnings of the
    planes (nearly constant, nearly black) are issued once, after the run.

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
        ValueError: An axis out of range, or bad hints.
    """
    arr, is_rgb = _in._validate(image, rgb)
    lead = arr.shape[:-3] if is_rgb else arr.shape[:-2]
    plane_hints = hints_by_plane(hints)
    if not lead:  # one image has no time axis: colorized as usual, with its plane-0 hints
        own = [h for h in plane_hints.get(0, ()) if isinstance(h, Hint)]
        return colorizer.colorize(arr, own, reference=reference, options=options, rgb=is_rgb,
                                  progress=progress, cancel=cancel, temporal=False)  # fmt: skip
    if not -len(lead) <= axis < len(lead):
        raise ValueError(f"axis {axis} is out of range for a stack with leading shape {lead}")
    axis %= len(lead)
    if any(p >= lead[axis] for p in plane_hints):
        raise ValueError(f"a hint plane is beyond the {lead[axis]} planes along axis {axis}")
    tail = arr.shape[len(lead) :]
    seqs = np.moveaxis(arr, axis, 0).reshape(lead[axis], -1, *tail)
    opts = whole_stack_range(arr, is_rgb, options)
    n_seq, T = seqs.shape[1], seqs.shape[0]
    outs = []
    notes: list[str] = []
    for k in range(n_seq):
        sub = None
        if progress is not None:

            def sub(f: float, msg: str, k: int = k) -> None:
                progress((k + f) / n_seq, msg)

        run = TemporalRun(colorizer, opts, plane_hints, reference=reference, rgb=is_rgb,
                          user_net=user_net, cancel=cancel, progress=sub, total=T)  # fmt: skip
        fed = [run.feed(seqs[i : i + FEED_PLANES, k]) for i in range(0, T, FEED_PLANES)]
        outs.append(np.concatenate(fed, 0))  # in pieces: a piece's network output is kept
        notes += [n for n in run.notes if n not in notes]
    if T > FEED_PLANES:  # each piece noted its own planes; the notes are the whole stack's
        notes = stack_notes(colorizer, arr, is_rgb, opts)
    for note in notes:
        warnings.warn(note, _in.InputWarning, stacklevel=3)
    out = np.stack(outs, 1).reshape(
        lead[axis], *np.delete(np.array(lead), axis), *outs[0].shape[-3:]
    )
    return np.moveaxis(out, 0, axis)
