import threading

import numpy as np
import pytest
import torch

from tinct import levin
from tinct.cancel import Cancelled, scope
from tinct.levin import _nested_dissection, _solve, levin_colorize, propagate_batch
from tinct.models import load_model


def two_regions(h=40, w=60):
    lum = np.full((h, w), 30.0)
    lum[:, w // 2 :] = 70.0
    lum += np.random.default_rng(0).normal(0, 0.2, lum.shape)  # a little texture
    hint_ab = np.zeros((h, w, 2))
    mask = np.zeros((h, w), bool)
    hint_ab[h // 2, 5] = (60.0, 40.0)
    mask[h // 2, 5] = True
    hint_ab[h // 3, w - 6] = (-20.0, -50.0)
    mask[h // 3, w - 6] = True
    return lum, hint_ab, mask


def test_each_region_takes_its_hint_colour():
    lum, hint_ab, mask = two_regions()
    ab = levin_colorize(lum, hint_ab, mask)
    w = lum.shape[1]
    left, right = ab[:, : w // 2], ab[:, w // 2 :]
    np.testing.assert_allclose(left.reshape(-1, 2).mean(0), (60, 40), atol=1.0)
    np.testing.assert_allclose(right.reshape(-1, 2).mean(0), (-20, -50), atol=1.0)
    assert np.abs(left - (60, 40)).max() < 3
    assert np.abs(right - (-20, -50)).max() < 3


def test_hints_are_kept_exactly_and_no_hint_is_gray():
    lum, hint_ab, mask = two_regions()
    ab = levin_colorize(lum, hint_ab, mask)
    np.testing.assert_allclose(ab[mask], hint_ab[mask], atol=1e-9)
    gray = levin_colorize(lum, hint_ab, np.zeros_like(mask))
    assert gray.shape == (*lum.shape, 2) and not gray.any()


def test_large_images_are_solved_at_reduced_size():
    lum, hint_ab, mask = two_regions(120, 200)
    ab = levin_colorize(lum, hint_ab, mask, max_pixels=50 * 80)
    assert ab.shape == (120, 200, 2)
    np.testing.assert_allclose(ab[mask], hint_ab[mask])
    np.testing.assert_allclose(ab[:, :90].reshape(-1, 2).mean(0), (60, 40), atol=2.0)
    np.testing.assert_allclose(ab[:, 110:].reshape(-1, 2).mean(0), (-20, -50), atol=2.0)


def test_shape_errors():
    with pytest.raises(ValueError, match="expected lum"):
        levin_colorize(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 4), bool))


def test_nested_dissection_is_a_permutation():
    for h, w in [(1, 1), (7, 3), (33, 65), (64, 64)]:
        perm = _nested_dissection(h, w)
        assert np.array_equal(np.sort(perm), np.arange(h * w))


def test_registered_model_wrapper():
    model = load_model("levin")
    assert model.record.config.hints_required and sum(p.numel() for p in model.parameters()) == 0
    lum, hint_ab, mask = two_regions()
    out = model(
        torch.from_numpy(np.stack([lum, lum]))[:, None].float(),
        torch.from_numpy(np.stack([hint_ab, hint_ab])).permute(0, 3, 1, 2).float(),
        torch.from_numpy(np.stack([mask, np.zeros_like(mask)]))[:, None].float(),
    )
    assert out.logits is None and out.ab.shape == (2, 2, 40, 60)
    expected = levin_colorize(lum, hint_ab, mask)
    np.testing.assert_allclose(out.ab[0].permute(1, 2, 0).numpy(), expected, atol=1e-3)
    assert not out.ab[1].any()  # no hints -> gray
    assert not model(torch.zeros(1, 1, 8, 8)).ab.any()


def test_prior_weight_zero_is_plain_levin_and_large_follows_prior():
    rng = np.random.default_rng(1)
    lum = rng.uniform(20, 80, (24, 24))
    hint_ab = np.zeros((24, 24, 2))
    mask = np.zeros((24, 24), bool)
    mask[3, 3] = True
    hint_ab[3, 3] = (40.0, -20.0)
    prior = np.full((24, 24, 2), 5.0)
    plain = levin_colorize(lum, hint_ab, mask)
    np.testing.assert_allclose(
        levin_colorize(lum, hint_ab, mask, prior_ab=prior, prior_weight=0.0), plain
    )
    strong = levin_colorize(lum, hint_ab, mask, prior_ab=prior, prior_weight=1e4)
    np.testing.assert_allclose(strong[~mask], prior[~mask], atol=0.05)
    np.testing.assert_allclose(strong[3, 3], (40.0, -20.0))
    # without hints the prior is returned (smoothed along the affinities)
    smooth = levin_colorize(lum, hint_ab, np.zeros_like(mask), prior_ab=prior, prior_weight=0.1)
    np.testing.assert_allclose(smooth, prior, atol=1e-6)
    with pytest.raises(ValueError, match="prior_weight"):
        levin_colorize(lum, hint_ab, mask, prior_ab=prior, prior_weight=-1)


def test_one_factorisation_propagates_any_number_of_channels():
    rng = np.random.default_rng(3)
    lum = rng.uniform(0, 100, (24, 20))
    mask = np.zeros((24, 20), dtype=bool)
    mask[2, 3] = mask[20, 15] = mask[11, 9] = True
    values = rng.uniform(-50, 50, (24, 20, 5))
    many = _solve(lum, values, mask, 0.1, 0.02)
    assert many.shape == (24, 20, 5)
    for c in range(0, 4, 2):
        pair = levin_colorize(lum, values[..., c : c + 2], mask)
        np.testing.assert_allclose(many[..., c : c + 2], pair, atol=1e-9)


def test_cancel_stops_between_solves():
    lum, hint_ab, mask = two_regions()
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        levin_colorize(lum, hint_ab, mask, cancel=ev)
    batch = torch.from_numpy(np.stack([lum] * 3))[:, None]
    hab = torch.from_numpy(np.stack([hint_ab] * 3)).permute(0, 3, 1, 2)
    hm = torch.from_numpy(np.stack([mask] * 3))[:, None].double()
    with pytest.raises(Cancelled), scope(ev):  # e.g. inside a model's forward
        propagate_batch(batch, hab, hm)
    assert propagate_batch(batch, hab, hm).shape == (3, 2, 40, 60)


def test_screened_propagation_fades_with_distance_and_across_edges():
    """``screen`` pulls free pixels towards 0: one hint no longer reaches every pixel."""
    lum = np.full((40, 40), 30.0)
    lum[:, 20:] = 80.0  # a strong edge down the middle
    mask = np.zeros((40, 40), bool)
    mask[18:22, 2:6] = True
    ones = np.ones((40, 40, 1))
    plain = levin.propagate_values(lum, ones, mask)[..., 0]
    np.testing.assert_allclose(plain, 1.0, atol=1e-5)  # the flood: 1 everywhere
    reach = levin.propagate_values(lum, ones, mask, screen=1e-4)[..., 0]
    assert reach[mask].min() == pytest.approx(1.0)
    assert reach[:, 6:18].min() > 0.5  # its own side of the edge
    assert reach[:, 22:].max() < 0.2  # across the edge: barely
    assert reach[20, 8] > reach[20, 17]  # and it fades with distance
    with pytest.raises(ValueError, match="screen"):
        levin.propagate_values(lum, ones, mask, screen=-1.0)
