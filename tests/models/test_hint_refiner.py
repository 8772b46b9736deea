"""The post-fusion refiner's head (tinct.models.hint_refiner)."""

import torch

from tinct.models.hint_refiner import CUE_CHANNELS, HintRefiner, trunk_norm
from tinct.models.tinct_base import TinctUNet


def _inputs(b: int = 1, size: int = 16) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(b, 32, size, size, generator=g)
    fused, dec, prop, auto = (torch.randn(b, 2, size, size, generator=g) * 30 for _ in range(4))
    cues = torch.rand(b, CUE_CHANNELS, size, size, generator=g)
    return feats, fused, dec, prop, auto, cues


def test_it_starts_as_the_identity():
    x = _inputs()
    assert torch.equal(HintRefiner()(*x), x[1])


def test_its_output_moves_towards_the_candidates_it_chooses():
    head = HintRefiner()
    with torch.no_grad():
        head.net[-1].bias.copy_(torch.tensor([0.0, 20.0, 0.0, 0.0, 0.0]))  # tanh(20) = 1: P
    feats, fused, dec, prop, auto, cues = _inputs()
    assert torch.allclose(head(feats, fused, dec, prop, auto, cues), prop, atol=1e-4)


def test_it_applies_only_to_the_trunk_it_was_trained_on():
    model = TinctUNet(fusion=True, refiner=True)
    head = model.refine_head
    assert head is not None
    assert model.refiner() is None  # built, not loaded: never applied
    model.load_state_dict(model.state_dict())
    assert model.refiner() is None  # no fingerprint recorded
    head.trunk_norm.fill_(trunk_norm(model.dec1))
    model.load_state_dict(model.state_dict())
    assert model.refiner() is head
    assert head.matches(model.to(torch.bfloat16).dec1)  # another precision: still it
    model.float()
    model.train()  # training the trunk retires it
    assert model.refiner() is None
    model.eval()
    state = model.state_dict()
    for k in state:  # weights fine-tuned from it (decoder moved by 5 %): not used
        if k.startswith("dec1.") and state[k].is_floating_point():
            state[k] = state[k] * (1 + 0.05 * torch.randn_like(state[k]))
    model.load_state_dict(state)
    assert model.refiner() is None


def test_weights_without_a_refiner_load_with_none():
    state = TinctUNet(fusion=True).state_dict()
    model = TinctUNet(fusion=True, refiner=True)
    model.load_state_dict(state)
    assert model.refine_head is None and model.refiner() is None
    full = TinctUNet(fusion=True, refiner=True)
    model2 = TinctUNet(fusion=True, refiner=True)
    model2.load_state_dict(full.state_dict())
    assert model2.refine_head is not None


def test_the_model_hands_its_decoder_features_to_the_engine_only_with_a_refiner():
    lum = torch.full((1, 1, 64, 64), 50.0)
    hab, hm = torch.zeros(1, 2, 64, 64), torch.zeros(1, 1, 64, 64)
    hab[:, :, 10:14, 10:14], hm[:, :, 10:14, 10:14] = 20.0, 1.0
    prop = torch.zeros(1, 2, 32, 32)
    with torch.no_grad():
        plain = TinctUNet(fusion=True).eval()(lum, hab, hm, propagated=prop)
        refined = TinctUNet(fusion=True, refiner=True).eval()(lum, hab, hm, propagated=prop)
    assert plain.fusion is not None and plain.fusion.features is None
    assert refined.fusion is not None and refined.fusion.features is not None
    assert refined.fusion.features.shape == (1, 32, 32, 32)
