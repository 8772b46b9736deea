"""Hint edits by low-rank updates of Levin's system equal fresh solves."""

import numpy as np
import pytest

from tinct import levin
from tinct import levin_update as U


@pytest.fixture(autouse=True)
def _fresh_cache():
    U.clear_cache()
    yield
    U.clear_cache()


def _scene(seed=0, size=48):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    lum = 50 + 30 * np.sin(x / 5.0) + 20 * (y > size // 2) + rng.normal(0, 2, (size, size))
    return lum, rng


def _hints(size, positions, side=3):
    k = len(positions)
    values = np.zeros((size, size, k))
    mask = np.zeros((size, size), bool)
    for i, (r, c) in enumerate(positions):
        values[r : r + side, c : c + side] = 0.0  # a later hint on the same pixels wins
        values[r : r + side, c : c + side, i] = 1.0
        mask[r : r + side, c : c + side] = True
    return values, mask


def test_edits_equal_fresh_solves_and_reuse_the_factorisation(monkeypatch):
    lum, rng = _scene()
    pos = [tuple(rng.integers(0, 45, 2)) for _ in range(6)]
    calls = []
    real = U._factorise
    monkeypatch.setattr(U, "_factorise", lambda *a: calls.append(1) or real(*a))
    for step in range(8):
        if step:
            pos[step % 2] = tuple(rng.integers(0, 45, 2))  # drag two hints in turn
        values, mask = _hints(48, pos)
        got = U.propagate_values_cached(lum, values, mask)
        want = levin.propagate_values(lum, values, mask)
        np.testing.assert_allclose(got, want, atol=1e-9)
    assert len(calls) == 1  # one factorisation, seven low-rank updates


def test_more_change_than_max_rank_factorises_anew(monkeypatch):
    lum, rng = _scene(1)
    calls = []
    real = U._factorise
    monkeypatch.setattr(U, "_factorise", lambda *a: calls.append(1) or real(*a))
    first = [tuple(rng.integers(0, 45, 2)) for _ in range(2)]
    U.propagate_values_cached(lum, *_hints(48, first))
    many = [tuple(rng.integers(0, 45, 2)) for _ in range(U.MAX_RANK // 9 + 3)]
    values, mask = _hints(48, many)
    np.testing.assert_allclose(
        U.propagate_values_cached(lum, values, mask),
        levin.propagate_values(lum, values, mask),
        atol=1e-9,
    )
    assert len(calls) == 2
    # adding and removing hints (the channel count changes) stays exact
    values, mask = _hints(48, many[:-1])
    np.testing.assert_allclose(
        U.propagate_values_cached(lum, values, mask),
        levin.propagate_values(lum, values, mask),
        atol=1e-9,
    )


def test_memory_stays_bounded_and_big_grids_are_not_kept(monkeypatch):
    monkeypatch.setattr(U, "MAX_COLUMNS", 12)
    for seed in range(U.CACHE_ENTRIES + 2):
        lum, rng = _scene(seed)
        for _ in range(4):
            pos = [tuple(rng.integers(0, 45, 2)) for _ in range(3)]
            U.propagate_values_cached(lum, *_hints(48, pos))
    assert len(U._cache) == U.CACHE_ENTRIES
    assert all(len(b.columns) <= 12 for b in U._cache.values())
    U.clear_cache()
    monkeypatch.setattr(U, "MAX_CACHED_PIXELS", 40 * 40)
    lum, _ = _scene(size=48)
    values, mask = _hints(48, [(3, 3)])
    np.testing.assert_allclose(
        U.propagate_values_cached(lum, values, mask), levin.propagate_values(lum, values, mask)
    )
    assert not U._cache


def test_no_hint_pixel_is_an_error():
    lum, _ = _scene()
    with pytest.raises(ValueError, match="at least one hint pixel"):
        U.propagate_values_cached(lum, np.zeros((48, 48, 1)), np.zeros((48, 48), bool))


def test_screened_edits_equal_fresh_screened_solves():
    """With a pull towards 0 (``screen``) the cached low-rank updates still equal fresh solves."""
    lum, rng = _scene(3)
    pos = [tuple(rng.integers(0, 45, 2)) for _ in range(3)]
    for step in range(4):
        if step:
            pos[0] = tuple(rng.integers(0, 45, 2))
        values, mask = _hints(48, pos)
        got = U.propagate_values_cached(lum, values, mask, screen=1e-3)
        want = levin.propagate_values(lum, values, mask, screen=1e-3)
        np.testing.assert_allclose(got, want, atol=1e-9)
        assert got.sum(-1).max() <= 1 + 1e-9  # screened: no longer convex, some weight lost
        assert got.sum(-1).min() < 0.99
    plain = U.propagate_values_cached(lum, values, mask)  # a separate cached system
    np.testing.assert_allclose(plain.sum(-1), 1.0, atol=1e-9)
