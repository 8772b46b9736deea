"""Hints that carry through time: placed on one plane, they follow the content.

Under temporal mode (:mod:`tinct.engine.temporal`) a hint given on plane ``t`` is
used on plane ``t`` and moved along the estimated motion onto the following
planes, where the network receives it at its new position. It stops

* at a scene cut;
* when the content under it leaves the frame or is covered (the motion
  confidence under it drops below :data:`TRACK_CONFIDENCE`);
* when another hint is placed on that spot on a later plane (the newer one
  takes over), or a :class:`HintStop` is placed there.

A hint placed on a later plane (or a stop) recolours as far as it reaches on that
plane, not only around itself: :func:`recoloured` tells the temporal run where the
colour carried from earlier planes gives way to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tinct.engine.hints import Hint
from tinct.motion import Motion

__all__ = [
    "RECOLOURED",
    "REPLACE_SIDES",
    "TRACK_CONFIDENCE",
    "HintCarrier",
    "HintStop",
    "PlaneHints",
    "has_colour_hints",
    "hints_by_plane",
    "recoloured",
]

#: A carried hint is dropped where the motion confidence under it falls below this.
TRACK_CONFIDENCE = 0.5
#: A new hint or a stop replaces carried hints within this many patch sides of it.
REPLACE_SIDES = 1.5

#: On a plane where hints are placed or stopped, the past is dropped where the plane's
#: chroma departs from it by more than these (CIELAB ab units; from the first fully):
#: there the new hints recoloured the content, and a plane's own flicker stays below.
RECOLOURED = (4.0, 12.0)
#: One CIELAB ab unit in a model space's chroma units (YUV's UV spans about 1/200 of ab).
_CHROMA_UNIT = {"lab": 1.0, "luv": 1.0, "yuv": 0.005}


@dataclass(frozen=True)
class HintStop:
    """Ends carried hints at a spot, from the plane it is given on.

    Attributes:
        row: Row of the spot in image pixels.
        col: Column of the spot.
        size: Side of the square region in image pixels; ``None`` = the
            size of the hints it stops.
    """

    row: float
    col: float
    size: float | None = None


#: Hints of a sequence by plane number: ``{plane: [Hint | HintStop, ...]}``.
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


def has_colour_hints(hints: Sequence[Hint] | PlaneHints | None) -> bool:
    """Whether any colour hint (not only stops) is given."""
    return any(isinstance(h, Hint) for hs in hints_by_plane(hints).values() for h in hs)


class HintCarrier:
    """Moves hints from plane to plane along the motion.

    Args:
        hints: ``{plane: [Hint | HintStop]}`` (see :func:`hints_by_plane`).
        size: ``(H, W)`` of the planes in pixels.
        default_side: Patch side in image pixels of hints whose ``size`` is ``None``.

    Attributes:
        cuts: Planes that started a new shot (every hint carried so far stopped there).
    """

    def __init__(
        self, hints: Mapping[int, Sequence[Hint | HintStop]], size: tuple[int, int],
        default_side: float,
    ) -> None:  # fmt: skip
        self.hints = dict(hints)
        self.size = size
        self.default_side = float(default_side)
        self.cuts: list[int] = []
        self._tracks: list[Hint] = []  # at their position on the last plane

    def plan(self, t: int, motion: Motion | None) -> tuple[list[Hint], list[Hint | HintStop]]:
        """The hints of plane ``t``, the next plane of the sequence.

        Args:
            t: Plane number.
            motion: Motion into plane ``t`` from plane ``t - 1`` (batch of one),
                or ``None`` for the first plane.

        Returns:
            ``(hints on the plane, the hints and stops placed on it)``: where the
            latter are, colour carried from earlier planes is to be dropped.
        """
        if motion is None or bool(motion.cut[0]):
            if motion is not None:
                self.cuts.append(t)
            self._tracks = []
        else:
            moved = (self._move(h, motion) for h in self._tracks)
            self._tracks = [h for h in moved if h is not None]
        fresh: list[Hint | HintStop] = []
        for h in self.hints.get(t, ()):
            side = self.side(h)
            self._tracks = [
                tr for tr in self._tracks
                if max(abs(tr.row - h.row), abs(tr.col - h.col))
                > REPLACE_SIDES * max(side, self.side(tr)) / 2
            ]  # fmt: skip
            if isinstance(h, Hint):
                self._tracks.append(h)
            fresh.append(h)
        return list(self._tracks), fresh

    def side(self, h: Hint | HintStop) -> float:
        """Patch side of a hint (or stop) in image pixels."""
        return float(h.size) if h.size is not None else self.default_side

    def _move(self, hint: Hint, m: Motion) -> Hint | None:
        """A hint moved along the (backward) flow onto the current plane, or ``None``."""
        H, W = self.size
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


def _sample(x: Tensor, y: float, xpos: float) -> tuple[float, ...]:
    """Bilinear sample of ``(C, h, w)`` at one grid position (borders replicated)."""
    _, h, w = x.shape
    g = torch.tensor(
        [[[[2.0 * xpos / max(w - 1, 1) - 1.0, 2.0 * y / max(h - 1, 1) - 1.0]]]], dtype=x.dtype
    )
    v = F.grid_sample(x[None], g, mode="bilinear", padding_mode="border", align_corners=True)
    return tuple(float(a) for a in v.reshape(-1))


def recoloured(ab: Tensor, past: Tensor, space: str) -> Tensor:
    """``(1, 1, h, w)`` in ``[0, 1]``: where a plane's new hints changed the colour carried.

    A hint placed on a later plane reaches as far as it does plane by plane (a flood
    through the plane where nothing stops it); the past, weighed up to 1 - 1/211 there,
    would otherwise keep the earlier automatic colour everywhere but at the hint and
    along moving edges.

    Args:
        ab: ``(1, 2, h, w)`` the plane's chroma with its hints (working grid).
        past: ``(1, 2, h, w)`` the colour carried from the previous plane, warped onto it.
        space: The model's colour space (sets the scale of :data:`RECOLOURED`).

    Returns:
        0 where the two differ by less than ``RECOLOURED[0]``, 1 beyond ``RECOLOURED[1]``.
    """
    lo, hi = (v * _CHROMA_UNIT.get(space, 1.0) for v in RECOLOURED)
    return ((ab - past).norm(dim=1, keepdim=True) - lo).div_(hi - lo).clamp_(0.0, 1.0)
