"""tinct.engine.runtime: device and precision choice, CPU threads, casting for inference."""

import numpy as np
import pytest
import torch
from torch import nn

import tinct
from engine_helpers import gradient_image
from tinct.engine.colorizer import Colorizer
from tinct.engine.runtime import DeviceUnavailableError, select_device, select_dtype


def test_select_device():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="unknown device"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
            select_device("cuda")
    from tinct.engine.runtime import cpu_has_native_bf16

    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert select_dtype("auto", torch.device("cpu")) == expected
    assert select_dtype("float32", torch.device("cpu")) == torch.float32
    with pytest.raises(ValueError, match="not supported on the CPU"):
        select_dtype("float16", torch.device("cpu"))


def test_reduced_precision_casts_weights_once_and_leaves_the_callers_module():
    """bfloat16 inference stores conv/linear weights in bfloat16 (as autocast would cast
    them on every call): same numbers as autocast over float32 weights, and the module
    the caller passed keeps its float32 weights."""
    from tinct.engine.runtime import cast_for_inference

    model = tinct.load_model("tinct-small", pretrained=False).eval()
    lum = torch.rand(1, 1, 64, 64) * 100
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(lum)
        cast = cast_for_inference(model, torch.bfloat16)
        got = cast(lum)
    convs = [m for m in cast.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in cast.modules() if isinstance(m, nn.BatchNorm2d)]
    assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
    assert all(m.weight.dtype == torch.float32 for m in norms)  # as under autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())  # original untouched
    torch.testing.assert_close(got.logits, expected.logits, rtol=0, atol=0)
    torch.testing.assert_close(got.ab, expected.ab, rtol=0, atol=0)
    assert cast_for_inference(model, torch.float32) is model

    c = Colorizer(model, device="cpu", precision="bfloat16")
    assert c.model is not model and all(p.dtype == torch.float32 for p in model.parameters())
    out = c.colorize(gradient_image())
    ref = Colorizer(model, device="cpu", precision="float32").colorize(gradient_image())
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 2.0


def test_fold_batch_norms_keeps_the_outputs_and_removes_the_norms():
    import copy

    from tinct.engine.runtime import fold_batch_norms, get_model
    from tinct.models import load_model

    torch.manual_seed(0)
    model = load_model("tinct-base", pretrained=False)
    for m in model.modules():  # running statistics and affine parameters far from identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    n_norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    folded = fold_batch_norms(copy.deepcopy(model))
    assert n_norms >= 10 and not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    lum = torch.rand(1, 1, 64, 64) * 100
    with torch.inference_mode():
        ref, got = model(lum), folded(lum)
    torch.testing.assert_close(got.logits, ref.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got.ab, ref.ab, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(model.train())
    loaded = get_model("tinct-base", "cpu", pretrained=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.modules())
