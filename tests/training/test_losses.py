import pytest
import torch

from tinct.bins import encode_soft, gamut_bins
from tinct.training.losses import (
    hard_cross_entropy,
    pixel_weights,
    regression_loss,
    soft_cross_entropy,
)


def test_soft_ce_is_minimised_by_the_target_distribution():
    centres = gamut_bins()
    ab = torch.randn(2, 2, 8, 8) * 20
    target = encode_soft(ab, centres)
    perfect = soft_cross_entropy(target.clamp_min(1e-12).log(), ab, centres)
    random = soft_cross_entropy(torch.randn(2, 313, 8, 8), ab, centres)
    assert perfect < random


def test_soft_ce_pools_ab_to_logit_resolution_and_keeps_grad():
    logits = torch.randn(1, 313, 4, 4, requires_grad=True)
    loss = soft_cross_entropy(logits, torch.randn(1, 2, 16, 16) * 10, gamut_bins())
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_keep_zero_drops_images():
    centres = gamut_bins()
    logits = torch.randn(2, 313, 4, 4)
    ab = torch.randn(2, 2, 4, 4) * 10
    only_first = soft_cross_entropy(logits, ab, centres, keep=torch.tensor([1.0, 0.0]))
    first = soft_cross_entropy(logits[:1], ab[:1], centres)
    torch.testing.assert_close(only_first * 2, first)


def test_pixel_weights_pick_the_most_likely_bin():
    target = torch.zeros(1, 3, 1, 2)
    target[0, 2, 0, 0] = 1
    target[0, 0, 0, 1] = 1
    w = pixel_weights(target, torch.tensor([1.0, 2.0, 3.0]))
    assert w.tolist() == [[[3.0, 1.0]]]
    assert pixel_weights(target, None) is None


def test_hard_ce_and_regression():
    centres = gamut_bins()
    ab = torch.zeros(1, 2, 4, 4)
    logits = torch.full((1, 313, 4, 4), -10.0)
    logits[:, 120] = 10.0  # bin 120 is (0, 0)
    assert hard_cross_entropy(logits, ab, centres) < 1e-6
    pred = torch.ones(1, 2, 2, 2) * 11
    assert regression_loss(pred, torch.zeros(1, 2, 4, 4), "l1") == pytest.approx(0.2)
    assert regression_loss(pred, torch.zeros(1, 2, 2, 2), "mse") == pytest.approx(0.02)
    with pytest.raises(ValueError, match="unknown regression loss"):
        regression_loss(pred, pred, "l3")
