"""tinct.engine.runtime: device and precision choice, CPU threads, casting for inference."""

import numpy as np
import pytest
import torch
from torch import nn

import tinct
from engine_helpers import JOINT, TinyModel, gradient_image
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


def test_thread_policy_restores_torch_setting():
    from tinct.engine.runtime import resolve_threads, torch_threads

    before = torch.get_num_threads()
    c = Colorizer(TinyModel(JOINT), device="cpu", num_threads=1)
    c.colorize(gradient_image(32, 32))
    assert torch.get_num_threads() == before
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        with torch_threads(1):
            pass
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    assert resolve_threads(None, torch.device("cpu")) is None
    assert resolve_threads(3, torch.device("cpu")) == 3
    with pytest.raises(ValueError, match="num_threads"):
        Colorizer(TinyModel(JOINT), device="cpu", num_threads=0)


def test_calls_run_blas_on_one_thread_and_restore_it():
    """OpenBLAS's spinning workers take the cores the next network pass needs: during a
    call BLAS runs on one thread, afterwards (and after nested calls) as before."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from tinct.engine import runtime

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):  # a multi-threaded BLAS to start from
        before = blas_threads()
        seen: list[list[int]] = []

        class Spy(TinyModel):
            def forward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                seen.append(blas_threads())
                return super().forward(*args, **kwargs)

        c = Colorizer(Spy(JOINT), device="cpu")
        c.colorize(gradient_image(32, 32))
        assert seen and all(t == 1 for t in seen[0])
        assert blas_threads() == before
        with runtime.call_threads("auto", torch.device("cpu")):
            with runtime.call_threads(2, torch.device("cpu")):
                assert all(t == 1 for t in blas_threads())
            assert all(t == 1 for t in blas_threads())
        assert blas_threads() == before
        with runtime.call_threads(None, torch.device("cpu")):  # None: left alone
            assert blas_threads() == before


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


def test_cpu_busy_counts_other_processes_not_this_one(monkeypatch):
    from tinct.engine import runtime

    samples = iter(
        [
            (0.0, 100.0, 10.0),
            (1.0, 102.0, 12.0),  # the machine used 2 cores, all of it this process: idle
            (1.1, 102.1, 12.1),  # 0.1 s later: too short to measure, the last verdict stands
            (2.0, 103.9, 12.2),  # others used 1.7 cores of 2: busy
        ]
    )
    monkeypatch.setattr(runtime, "_cpu_sample", lambda: next(samples))
    monkeypatch.setattr(runtime, "_BUSY_STATE", {"sample": None, "verdict": None})
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert runtime.cpu_busy() is False  # first call: the load average
    assert runtime.cpu_busy() is False
    assert runtime.cpu_busy() is False
    assert runtime.cpu_busy() is True
    monkeypatch.setattr(runtime, "_cpu_sample", lambda: None)  # no /proc: the load average
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert runtime.cpu_busy() is True
