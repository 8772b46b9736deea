"""Hint fusion after the network pass: trust in the network, gate opening, hint weights."""

from __future__ import annotations

import pytest
import torch

from tinct.engine import fusion
from tinct.engine.hint_raster import HintPatch
from tinct.models.base import FusionTerms

NET = (32, 32)


def _patch(row: float, col: float, ab: tuple[float, float], side: float = 4.0) -> HintPatch:
    return HintPatch(row, col, side, torch.tensor([ab], dtype=torch.float32))


def test_trust_ceiling_falls_from_one_hint_to_many():
    assert fusion.trust_ceiling(1) == 1.0
    values = [fusion.trust_ceiling(k) for k in range(1, 12)]
    assert values == sorted(values, reverse=True)
    assert fusion.trust_ceiling(fusion.MANY_HINTS) == pytest.approx(fusion.MANY_HINTS_TRUST)
    assert fusion.trust_ceiling(500) == pytest.approx(fusion.MANY_HINTS_TRUST)


def test_reliability_follows_the_error_under_the_hints():
    patches = [_patch(8, 8, (40.0, 0.0)), _patch(24, 24, (0.0, 40.0))]
    right = torch.zeros(1, 2, 16, 16)
    right[:, 0, :8, :8] = 40.0
    right[:, 1, 8:, 8:] = 40.0
    ceiling = fusion.trust_ceiling(len(patches))
    assert fusion.hint_reliability(right, patches, NET).item() == pytest.approx(ceiling)
    # an automatic colour 60 ab units away from both hints is not trusted at all
    wrong = right.clone()
    wrong[:, 0, :8, :8] = -20.0
    wrong[:, 1, 8:, 8:] = -20.0
    assert fusion.hint_reliability(wrong, patches, NET).item() == 0.0
    # halfway between the two error thresholds: half the ceiling
    half = (fusion.RELIABLE_ERROR + fusion.UNRELIABLE_ERROR) / 2
    mid = right.clone()
    mid[:, 0, :8, :8] = 40.0 - half
    mid[:, 1, 8:, 8:] = 40.0 - half
    assert fusion.hint_reliability(mid, patches, NET).item() == pytest.approx(ceiling / 2, abs=1e-4)
    assert fusion.hint_reliability(right, [], NET).item() == 1.0


def test_trust_opens_the_gate_only_on_hinted_planes():
    gate = torch.zeros(2, 1, 4, 4)
    gate[0] = 0.25  # plane 0 has hints, plane 1 none
    terms = FusionTerms(
        own=torch.zeros(2, 2, 4, 4),
        propagated=torch.ones(2, 2, 4, 4),
        gate=gate,
        correction=torch.full((2, 2, 4, 4), 3.0),
    )
    out = fusion.trust_propagation(terms, torch.tensor([0.0, 0.0]))
    assert torch.equal(out.gate[0], torch.ones(1, 4, 4))
    assert torch.equal(out.correction[0], torch.zeros(2, 4, 4))
    assert torch.equal(out.gate[1], gate[1]) and torch.equal(out.correction[1], terms.correction[1])
    kept = fusion.trust_propagation(terms, torch.tensor([1.0, 1.0]))
    assert torch.equal(kept.gate, gate) and torch.equal(kept.correction, terms.correction)


def test_hint_weights_sum_to_one_and_follow_luminance_edges():
    lum = torch.full((1, 1, 16, 16), 30.0)
    lum[..., 8:] = 80.0  # a strong vertical edge between the two hints
    patches = [_patch(16, 4, (50.0, 0.0)), _patch(16, 28, (0.0, 50.0))]
    weights, colours, _ = fusion.hint_weights(lum, patches, NET)
    assert weights.shape == (1, 2, 16, 16) and colours.shape == (1, 2, 2)
    torch.testing.assert_close(weights.sum(1), torch.ones(1, 16, 16))
    assert weights[0, 0, :, :7].min() > 0.9  # the left hint owns the left side
    assert weights[0, 1, :, 9:].min() > 0.9
    mixed = fusion.mix_colour((weights, colours, lum))
    assert mixed[0, 0, 8, 2] > 45 and mixed[0, 1, 8, 13] > 45
    assert fusion.hint_weights(lum, [], NET) is None


def test_multiscale_share_phases_in_with_the_hint_count():
    assert fusion.multiscale_share(1) == fusion.multiscale_share(fusion.MULTISCALE_FROM) == 0.0
    assert fusion.multiscale_share(fusion.MULTISCALE_FULL) == fusion.multiscale_share(500) == 1.0
    middle = (fusion.MULTISCALE_FROM + fusion.MULTISCALE_FULL) / 2
    assert fusion.multiscale_share(int(middle)) == pytest.approx(0.5, abs=0.05)


def _many(count: int, gen: torch.Generator) -> list[HintPatch]:
    rows = torch.randint(2, 30, (count,), generator=gen)
    cols = torch.randint(2, 30, (count,), generator=gen)
    return [
        _patch(float(r), float(c), (50.0, 0.0) if c < 16 else (0.0, 50.0), side=2.0)
        for r, c in zip(rows, cols, strict=True)
    ]


def test_many_hints_average_the_propagation_over_coarser_grids():
    gen = torch.Generator().manual_seed(0)
    lum = 50 + 10 * torch.rand(1, 1, 16, 16, generator=gen)  # texture: many weak edges
    lum[..., 8:] += 30.0
    few, many = _many(fusion.MULTISCALE_FROM, gen), _many(fusion.MULTISCALE_FULL, gen)
    torch.testing.assert_close(
        fusion.hint_weights(lum, few, NET)[0], fusion._hint_weights_at(lum, few, NET)[0]
    )
    weights, colours, _ = fusion.hint_weights(lum, many, NET)
    single = fusion._hint_weights_at(lum, many, NET)[0]
    assert weights.shape == single.shape and weights.min() >= 0
    torch.testing.assert_close(weights.sum(1), torch.ones(1, 16, 16))
    assert (weights - single).abs().max() > 0.05  # the coarse grids do take part
    mixed = fusion.mix_colour((weights, colours, lum))
    assert mixed[0, 0, :, :6].min() > 35 and mixed[0, 1, :, 10:].min() > 35  # still edge-bound


def test_propagate_patches_averages_grids_too(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    lum = 50 + 10 * torch.rand(1, 1, 16, 16, generator=gen)
    patches = _many(fusion.MAX_MIXED_HINTS + 6, gen)
    assert fusion.hint_weights(lum, patches, NET) is None  # too many for weight maps
    averaged = fusion.propagate_patches(lum, patches, NET)
    single = fusion._propagate_patches_at(lum, patches, NET)
    assert averaged.shape == single.shape == (1, 2, 16, 16)
    assert (averaged - single).abs().max() > 0.5
    assert averaged.min() >= -1e-3 and averaged.max() <= 50 + 1e-3  # inside the hints' hull
    monkeypatch.setattr(fusion, "MULTISCALE_FULL", 10**6)
    monkeypatch.setattr(fusion, "MULTISCALE_FROM", 10**6 - 1)
    torch.testing.assert_close(fusion.propagate_patches(lum, patches, NET), single)


def test_trust_with_reach_keeps_the_networks_colour_beyond_it():
    terms = FusionTerms(
        own=torch.zeros(1, 2, 4, 4),
        propagated=torch.ones(1, 2, 4, 4),
        gate=torch.full((1, 1, 4, 4), 0.9),
        correction=torch.full((1, 2, 4, 4), 2.0),
    )
    reach = torch.zeros(1, 1, 2, 2)
    reach[..., :, 0] = 1.0  # the left half is reached (resized to the terms' grid)
    out = fusion.trust_propagation(terms, torch.tensor([0.0]), reach)
    assert torch.equal(out.gate[0, 0, :, 0], torch.ones(4))  # untrusted network: the hints
    assert torch.equal(out.gate[0, 0, :, 3], torch.zeros(4))  # beyond the reach: the network
    assert float(out.correction[0, :, :, 3].abs().max()) == 0.0


def test_hint_weights_and_reach_read_their_masks_from_patch_owners():
    """The same per-hint masks as the loop over patch_bounds they replaced (overlaps too)."""
    import numpy as np

    from tinct.engine.hint_raster import patch_bounds
    from tinct.engine.reach import LOCAL_SCREEN, hint_reach
    from tinct.levin_update import propagate_values_cached

    lum = torch.linspace(20.0, 80.0, 16 * 16).view(1, 1, 16, 16)
    patches = [
        _patch(10, 10, (40.0, 0.0), 8.0),
        _patch(12, 12, (0.0, 40.0)),
        _patch(28, 3, (9.0, 9.0)),
    ]
    values, mask = np.zeros((16, 16, 3)), np.zeros((16, 16), bool)
    for i, p in enumerate(patches):
        r0, r1, c0, c1 = patch_bounds(p, 0.5, (16, 16))
        values[r0:r1, c0:c1] = 0.0
        values[r0:r1, c0:c1, i] = 1.0
        mask[r0:r1, c0:c1] = True
    grid = lum[0, 0].double().numpy()
    wts = propagate_values_cached(grid, values, mask, affinity="matting")  # 3 hints: matting
    expected = torch.from_numpy(wts).permute(2, 0, 1).float()
    assert torch.equal(fusion._hint_weights_at(lum, patches, NET)[0][0], expected)
    reach = propagate_values_cached(grid, np.ones((16, 16, 1)), mask, screen=LOCAL_SCREEN)
    expected_reach = torch.from_numpy(reach[..., 0]).clamp(0.0, 1.0).float()
    assert torch.equal(hint_reach(lum, patches, NET)[0, 0], expected_reach)


def test_matting_share_hands_over_to_levin_with_many_hints():
    assert fusion.matting_share(1) == fusion.matting_share(fusion.MATTING_FULL) == 1.0
    assert fusion.matting_share(fusion.MATTING_UNTIL) == fusion.matting_share(100) == 0.0
    middle = (fusion.MATTING_FULL + fusion.MATTING_UNTIL) // 2
    assert fusion.matting_share(middle) == pytest.approx(0.5)
