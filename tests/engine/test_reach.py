"""Local hints: the hints' reach (tinct.engine.reach)."""

from __future__ import annotations

import torch

from tinct.engine import reach as R
from tinct.engine.hint_raster import HintPatch


def _patch(row: float, col: float, ab: tuple[float, float], side: float = 4.0) -> HintPatch:
    return HintPatch(row, col, side, torch.tensor([ab], dtype=torch.float32))


def test_hint_reach_stays_on_the_hints_side_of_an_edge():
    lum = torch.full((1, 1, 32, 32), 30.0)
    lum[..., 16:] = 85.0
    reach = R.hint_reach(lum, [_patch(32, 8, (50.0, 0.0))], (64, 64))
    assert reach is not None and reach.shape == (1, 1, 32, 32)
    assert float(reach.min()) >= 0.0 and float(reach.max()) <= 1.0
    assert float(reach[0, 0, :, :14].mean()) > 0.8
    assert float(reach[0, 0, :, 18:].max()) < 0.3
    assert R.hint_reach(lum, [], (64, 64)) is None
