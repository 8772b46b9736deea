"""The propagation operators: Levin's averaging and the matting Laplacian."""

import numpy as np
import pytest

from tinct import affinity, levin


def _slow_matting(img: np.ndarray, eps: float) -> np.ndarray:
    """The matting Laplacian summed over the 2 x 2 windows (the definition, dense)."""
    h, w = img.shape
    out = np.zeros((h * w, h * w))
    for cy in range(h - 1):
        for cx in range(w - 1):
            idx = [(cy + dy) * w + cx + dx for dy in (0, 1) for dx in (0, 1)]
            v = img.reshape(-1)[idx]
            d = v - v.mean()
            g = np.eye(4) - (1 + np.outer(d, d) / (v.var() + eps / 4)) / 4
            out[np.ix_(idx, idx)] += g
    return out


def test_matting_rows_are_the_matting_laplacian():
    lum = np.random.default_rng(0).uniform(0, 100, (7, 9))
    a = affinity.matting_rows(lum, 1e-3).toarray()
    np.testing.assert_allclose(a, _slow_matting(lum / 100, 1e-3), atol=1e-12)
    np.testing.assert_allclose(a, a.T, atol=1e-12)
    np.testing.assert_allclose(a.sum(1), 0.0, atol=1e-12)


def test_colour_affine_in_luminance_costs_nothing_under_matting_but_not_levin():
    lum = np.random.default_rng(1).uniform(10, 90, (12, 12))
    x = 0.7 * lum - 20.0  # a colour channel that follows the shading
    assert np.abs(affinity.matting_rows(lum, 1e-9) @ x.ravel()).max() < 1e-4
    assert np.abs(affinity.levin_rows(lum, 0.1, 0.02) @ x.ravel()).max() > 1.0


def test_matting_propagation_follows_shading_between_hints():
    """Chroma affine in L over a surface shaded non-linearly: matting keeps the relation."""
    lum = np.tile(30 + 40 * np.sqrt(np.linspace(0, 1, 24)), (24, 1))
    truth = np.stack((0.5 * lum, 40.0 - 0.3 * lum), -1)
    mask = np.zeros((24, 24), bool)
    mask[10:13, 2:5] = mask[10:13, 19:22] = True
    errors = {}
    for name in affinity.AFFINITIES:
        ab = levin.propagate_values(lum, truth, mask, affinity=name)
        errors[name] = np.abs(ab - truth).mean()
    assert errors["matting"] < 0.3 * errors["levin"]  # about 0.6 against 2.3 ab


def test_rows_dispatch_and_small_images():
    lum = np.random.default_rng(2).uniform(0, 100, (1, 5))
    assert (affinity.rows(lum, "matting") != affinity.levin_rows(lum, 0.1, 0.02)).nnz == 0
    with pytest.raises(ValueError, match="unknown affinity"):
        affinity.rows(lum, "bilateral")


def test_nested_dissection_orders_every_pixel_once():
    for h, w in [(1, 1), (5, 40), (37, 23), (64, 64)]:
        perm = affinity.nested_dissection(h, w)
        assert np.array_equal(np.sort(perm), np.arange(h * w))


def test_cached_matting_propagation_equals_a_fresh_solve():
    from tinct.levin_update import clear_cache, propagate_values_cached

    clear_cache()
    rng = np.random.default_rng(3)
    lum = rng.uniform(0, 100, (20, 20))
    values = rng.uniform(-50, 50, (20, 20, 2))
    mask = np.zeros((20, 20), bool)
    mask[3:5, 3:5] = True
    first = propagate_values_cached(lum, values, mask, affinity="matting")
    np.testing.assert_allclose(first, levin.propagate_values(lum, values, mask, affinity="matting"))
    mask[15:17, 12:14] = True  # an edit: the Woodbury update of the kept factorisation
    moved = propagate_values_cached(lum, values, mask, affinity="matting")
    fresh = levin.propagate_values(lum, values, mask, affinity="matting")
    np.testing.assert_allclose(moved, fresh, atol=1e-8)
    levin_too = propagate_values_cached(lum, values, mask)  # a separate cache entry
    np.testing.assert_allclose(levin_too, levin.propagate_values(lum, values, mask), atol=1e-8)
