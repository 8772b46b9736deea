"""Model zoo: every registered model builds, runs and (if trainable) backpropagates."""

import pytest
import torch

from tinct.models import ColorModel, ModelOutput, get_record, list_models, load_model

#: Built once for the run by the ``big_models`` fixture (tests/models/conftest.py).
BIG = ("zhang-eccv16", "zhang-siggraph17")


# --------------------------------------------------------------------------- the registry walk
def _inputs(record, h=64, w=64):
    cfg = record.config
    torch.manual_seed(0)
    scale = 1.0 if cfg.color_space == "yuv" else 100.0
    lum = torch.rand(1, 1, h, w) * scale
    kwargs = {}
    if cfg.hints:
        hint_ab = torch.zeros(1, 2, h, w)
        mask = torch.zeros(1, 1, h, w)
        hint_ab[..., 20:26, 30:36] = torch.tensor([30.0, 20.0])[:, None, None]
        mask[..., 20:26, 30:36] = 1
        kwargs |= {"hint_ab": hint_ab, "hint_mask": mask}
    if cfg.global_hint:
        hist = torch.zeros(1, 314)
        hist[0, 120] = hist[0, 313] = 1
        kwargs["global_hint"] = hist
    return lum, kwargs


@pytest.mark.parametrize("name", [r.name for r in list_models()])
def test_every_registered_model_builds_and_runs(name, big_models):
    record = get_record(name)
    cfg = record.config
    model = big_models[name] if name in BIG else load_model(name, pretrained=False)
    assert isinstance(model, ColorModel) and not model.training
    assert model.record is record
    assert model.stride == cfg.stride
    assert 64 % cfg.stride == 0
    lum, kwargs = _inputs(record)
    with torch.no_grad():
        out = model(lum, **kwargs)
    assert isinstance(out, ModelOutput)
    assert (out.logits is not None) == ("logits" in cfg.heads)
    assert (out.ab is not None) == ("ab" in cfg.heads)
    if out.logits is not None:
        s = cfg.logits_stride
        assert out.logits.shape == (1, cfg.num_bins, 64 // s, 64 // s)
        assert torch.isfinite(out.logits).all()
    if out.ab is not None:
        s = cfg.ab_stride
        assert out.ab.shape == (1, 2, 64 // s, 64 // s)
        assert torch.isfinite(out.ab).all()


@pytest.mark.parametrize(
    "name", [r.name for r in list_models() if r.name not in BIG and r.config.trainable]
)
def test_trainable_recipes_backpropagate_and_accept_other_sizes(name):
    model = load_model(name, pretrained=False).train()
    record = model.record
    lum, kwargs = _inputs(record, 48, 80)
    out = model(lum, **kwargs)
    loss = sum(t.float().pow(2).mean() for t in (out.logits, out.ab) if t is not None)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
