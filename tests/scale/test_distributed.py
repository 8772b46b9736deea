""":func:`tinct.colorize_dask`, :func:`colorize_zarr` and :func:`should_use_dask`.

Lazy results are computed with Dask's synchronous scheduler in this process
and compared with :meth:`Colorizer.colorize` on the whole array (random-weight
``tinct-small`` from a file).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import tinct
from tinct.engine import shared
from tinct.engine.colorizer import Colorizer
from tinct.engine.hints import Hint
from tinct.scale.distributed import (
    colorize_dask,
    colorize_zarr,
    estimate_bytes,
    should_use_dask,
)

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small images: threads only add overhead on a busy box
    with dask.config.set(scheduler="synchronous"):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def eager(weights):
    return Colorizer(weights, device="cpu", cache_size=0)


def _stack(shape, seed=0):
    rng = np.random.default_rng(seed)
    *lead, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    n = int(np.prod(lead)) if lead else 1
    planes = [
        127 + 90 * np.sin(0.11 * yy + i) * np.cos(0.07 * xx - i) + rng.normal(0, 6, (h, w))
        for i in range(n)
    ]
    return np.clip(np.stack(planes), 0, 255).astype(np.uint8).reshape(shape)


def test_stack_is_lazy_and_equals_eager(weights, eager):
    stack = _stack((5, 40, 56))
    x = da.from_array(stack, chunks=(2, 20, 28))  # planes split across chunks on purpose
    shared.clear()
    lazy = colorize_dask(x, model=weights, device="cpu", temperature=0.3)
    assert shared.entries() == []  # nothing loaded or run yet
    assert isinstance(lazy, da.Array)
    assert lazy.dtype == np.uint8 and lazy.shape == (5, 40, 56, 3)
    assert lazy.chunks == ((2, 2, 1), (40,), (56,), (3,))
    np.testing.assert_array_equal(lazy.compute(), eager.colorize(stack, temperature=0.3))
    assert len(shared.entries()) == 1  # one model for all chunks


def test_4d_float_percentile_range_is_global(weights, eager):
    stack = _stack((2, 3, 32, 40), seed=1).astype(np.float32) * 40.0 - 500.0  # outside [0, 1]
    lazy = colorize_dask(da.from_array(stack, chunks=(1, 1, 32, 40)), model=weights, device="cpu")
    assert lazy.dtype == np.float32 and lazy.chunks[:2] == ((1, 1), (1, 1, 1))
    got = lazy.compute()
    want = eager.colorize(stack)
    assert got.shape == want.shape == (2, 3, 32, 40, 3)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_numpy_input_and_hints(weights, eager):
    img = _stack((48, 64), seed=2)
    hints = [Hint(20, 30, color=(230, 20, 20), size=10)]
    got = colorize_dask(img, model=weights, device="cpu", hints=hints).compute()
    np.testing.assert_array_equal(got, eager.colorize(img, hints=hints))


def test_huge_planes_use_overlapping_blocks(weights, eager):
    img = _stack((150, 200), seed=3)
    block, depth = 64, 16
    hints = [Hint(100, 100, color=(20, 40, 230), size=12)]
    lazy = colorize_dask(img, model=weights, device="cpu", block=block, overlap=depth, hints=hints)
    # 64-pixel blocks would leave an 8-pixel column thinner than the halo: evened out
    assert lazy.chunks == ((50, 50, 50), (50, 50, 50, 50), (3,))
    got = lazy.compute()
    assert got.shape == (150, 200, 3) and got.dtype == np.uint8
    # the core of block (1, 1) is the colorization of that block plus its halo, cropped;
    # the hint at (100, 100) is moved into the block's coordinates
    cy, cx = lazy.chunks[0], lazy.chunks[1]
    r0, c0 = cy[0], cx[0]
    r1, c1 = r0 + cy[1], c0 + cx[1]
    region = img[r0 - depth : r1 + depth, c0 - depth : c1 + depth]
    local = [
        dataclasses.replace(h, row=h.row - (r0 - depth), col=h.col - (c0 - depth)) for h in hints
    ]
    want = eager.colorize(region, hints=local)[depth:-depth, depth:-depth]
    np.testing.assert_array_equal(got[r0:r1, c0:c1], want)
    # blocks see less context than a whole-image pass, but stay close to it
    whole = eager.colorize(img, hints=hints)
    assert np.abs(got.astype(int) - whole).mean() < 40


def test_overlap_must_be_smaller_than_block(weights):
    with pytest.raises(ValueError, match="overlap"):
        colorize_dask(np.zeros((100, 100), np.uint8), model=weights, block=32, overlap=32)
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W\)"):
        colorize_dask(np.zeros(10, np.uint8), model=weights)
    with pytest.raises(ValueError, match="RGB"):
        colorize_dask(np.zeros((8, 8, 3), np.uint8), model=weights)
    with pytest.raises(TypeError, match="bool"):
        colorize_dask(np.zeros((8, 8), bool), model=weights)


def test_zarr_round_trip(weights, eager, tmp_path):
    zarr = pytest.importorskip("zarr")
    stack = _stack((4, 32, 48), seed=4)
    src = tmp_path / "gray.zarr"
    z = zarr.create_array(str(src), shape=stack.shape, chunks=(1, 32, 48), dtype="uint8")
    z[:] = stack
    dst = tmp_path / "rgb.zarr"
    colorize_zarr(str(src), str(dst), model=weights, device="cpu")
    out = zarr.open_array(str(dst), mode="r")
    assert out.shape == (4, 32, 48, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:], eager.colorize(stack))


def test_zarr_onto_an_existing_array_says_to_overwrite(weights, eager, tmp_path):
    pytest.importorskip("zarr")
    stack = _stack((2, 16, 24), seed=5)
    dst = tmp_path / "rgb.zarr"
    colorize_zarr(stack, str(dst), model=weights, device="cpu")
    with pytest.raises(FileExistsError, match=r"rgb\.zarr exists; pass overwrite=True"):
        colorize_zarr(stack, str(dst), model=weights, device="cpu")  # was zarr's ContainsArrayError
    colorize_zarr(stack[::-1], str(dst), model=weights, device="cpu", overwrite=True)
    out = da.from_zarr(str(dst)).compute()
    np.testing.assert_array_equal(out, eager.colorize(stack[::-1]))


def test_should_use_dask():
    assert estimate_bytes((10, 100, 100), np.uint8) == 10 * 100 * 100 * (1 + 3 + 24)
    assert estimate_bytes((100, 100, 3), np.float32, rgb=True) == 100 * 100 * (12 + 12 + 24)
    assert not should_use_dask((512, 512), np.uint16, budget_bytes=1 << 30)
    assert should_use_dask((2000, 2048, 2048), np.uint16, budget_bytes=8 << 30)
    assert not should_use_dask((64, 64), np.uint8)  # default budget: a quarter of the RAM


def test_lazy_export_from_package():
    assert tinct.colorize_dask is colorize_dask


def test_worker_device_spreads_gpus(monkeypatch):
    from tinct.scale.workers import worker_device

    assert worker_device("cpu", 3) == "cpu"
    assert worker_device("auto") == "auto"  # not in a worker
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert worker_device("auto", 5) == "cuda:1"
    assert worker_device("cuda", 2) == "cuda:2"
    assert worker_device("cuda:3", 0) == "cuda:3"
    assert worker_device("cuda", "tcp-worker-a") == "cuda"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert worker_device("cuda", 5) == "cuda"


def test_mrf_weight_zero_turns_the_mrf_off_and_none_keeps_the_models(weights, monkeypatch):
    """mrf_weight=0 was read as 'not given', so a model with an MRF by default kept it."""
    import tinct.scale.distributed as dist

    seen = []
    real = dist._global_range
    monkeypatch.setattr(dist, "_global_range", lambda x, o: (seen.append(o), real(x, o))[1])
    stack = _stack((2, 16, 16))
    base = tinct.ColorizeOptions(mrf_weight=2.0)
    colorize_dask(stack, model=weights, device="cpu", options=base, mrf_weight=0)
    colorize_dask(stack, model=weights, device="cpu", options=base)
    colorize_dask(stack, model=weights, device="cpu")
    assert [o.mrf_weight for o in seen] == [0, 2.0, None]
