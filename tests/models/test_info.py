"""ModelInfo (tinct.models.info): a model's config read through, with its Target."""

import pytest
import torch

from tinct.models import get_record, load_model
from tinct.models.base import ColorModel
from tinct.models.info import ModelInfo, bin_centres, log_probs
from tinct.models.targets import GAMUT313, get_target


def test_info_reads_the_record_config_and_its_target():
    model = load_model("tinct-base", pretrained=False)
    info = ModelInfo.of(model)
    cfg = get_record("tinct-base").config
    assert info.config is model.record.config
    assert info.target is get_target(cfg.target) is GAMUT313
    assert (info.space, info.input_size, info.hints) == (cfg.color_space, cfg.input_size, cfg.hints)
    assert info.name == "tinct-base" and info.stride == model.stride
    with pytest.raises(AttributeError, match="no_such_field"):
        _ = info.no_such_field


def test_bin_centres_and_log_probs_follow_the_target():
    info = ModelInfo.of(load_model("tinct-base", pretrained=False))
    assert bin_centres(info).shape == (313, 2)
    lp = log_probs(torch.randn(1, 313, 2, 2), info)
    torch.testing.assert_close(lp.exp().sum(1), torch.ones(1, 2, 2))


def test_a_model_without_a_record_gets_the_defaults():
    info = ModelInfo.of(ColorModel())
    assert info.name == "ColorModel" and info.target.has_logits and info.stride == 8
