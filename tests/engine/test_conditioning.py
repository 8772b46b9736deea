"""Conditioning of the predicted distribution on hints: the sparse path equals the dense one."""

import torch

from tinct import bins
from tinct.engine import conditioning as C


def _dense(logp, weight, target, centres):
    d2 = (target[:, None] - centres.view(1, -1, 2, 1, 1)).pow(2).sum(2)
    factor = (1 - weight) + weight * torch.exp(-d2 / (2 * C.HINT_AB_SIGMA**2))
    return torch.log_softmax(logp + torch.log(factor.clamp_min(1e-12)), 1)


def test_hint_patches_only_are_conditioned_and_match_the_dense_formula():
    torch.manual_seed(0)
    centres = bins.gamut_bins().float()
    logp = torch.log_softmax(torch.randn(2, centres.shape[0], 32, 32), 1)
    target = torch.randn(2, 2, 32, 32) * 30
    weight = torch.zeros(2, 1, 32, 32)
    weight[0, :, 4:7, 8:11] = 1.0
    weight[1, :, 20:23, 2:5] = 0.6
    out = C.condition_on_hints(logp, (weight, target), centres)
    torch.testing.assert_close(out, _dense(logp, weight, target, centres), atol=1e-5, rtol=0)
    far = weight[:, 0] == 0
    assert torch.equal(out.permute(0, 2, 3, 1)[far], logp.permute(0, 2, 3, 1)[far])
    spread = torch.rand(2, 1, 32, 32)  # a model without hint input: every pixel is reached
    torch.testing.assert_close(
        C.condition_on_hints(logp, (spread, target), centres),
        _dense(logp, spread, target, centres),
    )
    assert C.condition_on_hints(logp, (torch.zeros_like(weight), target), centres) is logp
