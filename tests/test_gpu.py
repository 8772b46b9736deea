"""The CUDA paths of the engine, the MRF and training (marker ``gpu``; skipped without CUDA).

``bash scripts/test.sh`` leaves these out (``-m "not gpu"``); ``bash scripts/gpu_check.sh``
runs them with the GPU benchmarks on a machine with a GPU.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from tinct import bins, mrf
from tinct.engine.colorizer import Colorizer
from tinct.engine.hints import Hint
from tinct.models.weights import load_weights
from tinct.training.config import TrainConfig
from tinct.training.train import train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _gray(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    return ((yy * 2 + xx) % 256 * 0.8 + rng.integers(0, 40, (h, w))).astype(np.uint8)


def test_engine_on_cuda_matches_the_cpu_in_float32():
    gray = _gray()
    hints = [Hint(20, 30, color=(220, 40, 30))]
    cpu = Colorizer("tinct-base", device="cpu", precision="float32", num_threads=None)
    gpu = Colorizer("tinct-base", device="cuda", precision="float32", num_threads=None)
    assert gpu.device.type == "cuda"
    a = cpu.colorize(gray, hints=hints).astype(int)
    b = gpu.colorize(gray, hints=hints).astype(int)
    assert a.shape == b.shape == (96, 128, 3)
    assert np.abs(a - b).max() <= 3  # cuDNN vs CPU kernels differ in rounding only


def test_engine_on_cuda_in_float16_colours_the_image():
    gray = _gray(seed=1)
    c = Colorizer("tinct-base", device="cuda", precision="auto", num_threads=None)
    assert c.dtype == torch.float16
    out = c.colorize(gray)
    assert out.dtype == np.uint8 and out.shape == (96, 128, 3)
    spread = out.astype(int).max(-1) - out.astype(int).min(-1)
    assert spread.mean() > 1.0  # not gray


def test_mrf_on_cuda_matches_the_cpu():
    gen = torch.Generator().manual_seed(0)
    centres = bins.gamut_bins()
    logits = torch.randn(1, 313, 24, 32, generator=gen)
    lum = torch.rand(1, 1, 24, 32, generator=gen) * 100
    want = mrf.smooth(logits, centres, lum, weight=1.0, iterations=5)
    got = mrf.smooth(logits.cuda(), centres.cuda(), lum.cuda(), weight=1.0, iterations=5)
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), want, atol=1e-4, rtol=1e-4)


def test_training_on_cuda_exports_weights(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "colour"
    data.mkdir()
    for i in range(6):
        base = rng.integers(0, 256, 3)
        arr = np.clip(base + rng.integers(-40, 40, (48, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(data / f"c{i}.png")
    cfg = TrainConfig(
        recipe="tinct-small", data=[str(data)], out=str(tmp_path / "run"), steps=3,
        batch_size=2, crop=32, image_size=48, warmup=1, val_fraction=0.34, device="cuda",
    )  # fmt: skip
    path = train(cfg, log=lambda s: None)
    state, meta = load_weights(path)
    assert meta["steps"] == 3
    assert all(torch.isfinite(t).all() for t in state.values())
