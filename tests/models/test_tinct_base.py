"""tinct.models.tinct_base: the lead architecture (TinctUNet) and its hint-fusion head."""

import pytest
import torch
import torch.nn.functional as F

from tinct.models import count_parameters, get_record


def test_tinct_base_is_the_lead_architecture():
    from tinct.models.tinct_base import TinctUNet

    assert get_record("tinct-base").builder is TinctUNet
    assert count_parameters(get_record("tinct-base")) == pytest.approx(4.80e6, rel=0.005)
    assert get_record("tinct-small").kwargs["widths"] == (16, 32, 64, 128, 160)


def _fusion_pair():
    from tinct.models.tinct_base import TinctUNet

    torch.manual_seed(0)
    plain = TinctUNet(widths=(8, 16, 16, 24, 32)).eval()
    fused = TinctUNet(widths=(8, 16, 16, 24, 32), fusion=True).eval()
    fused.load_state_dict(plain.state_dict())  # no fusion keys: head at its initial state
    return plain, fused


def _hinted_batch():
    lum = torch.rand(2, 1, 64, 64) * 100
    hint_ab = torch.zeros(2, 2, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    hint_ab[0, :, 10:14, 20:24] = torch.tensor([40.0, -20.0])[:, None, None]
    mask[0, :, 10:14, 20:24] = 1.0  # sample 0 has a hint, sample 1 none
    return lum, hint_ab, mask


def test_tinct_fusion_without_hints_is_the_plain_network():
    plain, fused = _fusion_pair()
    lum, hint_ab, mask = _hinted_batch()
    with torch.no_grad():
        a, b = plain(lum), fused(lum)
        c, d = plain(lum, hint_ab, mask), fused(lum, hint_ab, mask)
    torch.testing.assert_close(a.ab, b.ab, rtol=0, atol=0)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    torch.testing.assert_close(c.ab[1], d.ab[1], rtol=0, atol=0)  # the hint-free sample
    torch.testing.assert_close(c.logits, d.logits, rtol=0, atol=0)


def test_tinct_fusion_starts_at_95_percent_levin_and_trains():
    from tinct.levin import propagate_batch as levin_propagate
    from tinct.models.tinct_base import TinctUNet

    plain, fused = _fusion_pair()
    lum, hint_ab, mask = _hinted_batch()
    with torch.no_grad():
        base = plain(lum, hint_ab, mask).ab
        got = fused(lum, hint_ab, mask).ab
    prop = levin_propagate(lum, hint_ab, mask)
    assert prop[1].abs().max() == 0  # no hints: nothing propagated
    assert prop[0, :, 12, 22].tolist() == pytest.approx([40.0, -20.0])
    prop = F.adaptive_avg_pool2d(prop, base.shape[-2:])
    gate = torch.sigmoid(torch.tensor(TinctUNet.GATE_INIT))
    torch.testing.assert_close(got[0], base[0] + gate * (prop[0] - base[0]), atol=1e-4, rtol=0)
    # far from the hint the propagated colour is still the hint's (one region): colour moved
    assert (got[0, 0] - base[0, 0]).abs().mean() > 5.0

    fused.train()
    out = fused(lum, hint_ab, mask).ab
    out.sum().backward()
    head = fused.fusion_head[-1]
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    assert fused.enc1[0][0].weight.grad.abs().sum() > 0  # the trunk learns through the gate


def test_tinct_fusion_state_dict_round_trip_keeps_the_head():
    _, fused = _fusion_pair()
    with torch.no_grad():
        fused.fusion_head[-1].weight.normal_()
    state = fused.state_dict()
    from tinct.models.tinct_base import TinctUNet

    again = TinctUNet(widths=(8, 16, 16, 24, 32), fusion=True)
    again.load_state_dict(state)
    torch.testing.assert_close(again.fusion_head[-1].weight, fused.fusion_head[-1].weight)
