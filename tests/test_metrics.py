import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.color import rgb2hsv
from skimage.metrics import peak_signal_noise_ratio

from tinct import metrics as M


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_psnr(images):
    a, b = images
    ref = peak_signal_noise_ratio(a, b, data_range=255)
    assert M.psnr(b, a) == pytest.approx(ref)
    ta, tb = (torch.from_numpy(x).permute(2, 0, 1) for x in (a, b))
    assert M.psnr(tb, ta) == pytest.approx(ref)
    assert M.psnr(b / 255.0, a / 255.0) == pytest.approx(ref)
    assert M.psnr(a, a) == float("inf")
    with pytest.raises(ValueError):
        M.psnr(a, a[:-1])


def test_ab_rmse_and_auc():
    true = np.zeros((4, 5, 2))
    pred = np.zeros((4, 5, 2))
    pred[0, 0] = (30.0, 40.0)  # error 50 on one of 20 pixels
    assert M.ab_rmse(pred, true) == pytest.approx(np.sqrt(2500 / 20))
    assert M.auc_ab(true, true) == 1.0
    assert M.auc_ab(pred, true) == pytest.approx((19 + (1 - 50 / 150)) / 20)
    # matches a fine threshold sweep
    thr = np.linspace(0, 150, 30001)
    err = np.hypot(*(pred - true).reshape(-1, 2).T)
    sweep = np.trapezoid([(err <= t).mean() for t in thr], thr) / 150
    assert M.auc_ab(pred, true) == pytest.approx(sweep, abs=1e-4)
    far = pred + 1000
    assert M.auc_ab(far, true) == 0.0
    tt = torch.from_numpy(true).permute(2, 0, 1)[None]
    tp = torch.from_numpy(pred).permute(2, 0, 1)[None]
    assert M.auc_ab(tp, tt) == pytest.approx(M.auc_ab(pred, true))
    w = np.ones((4, 5))
    w[0, 0] = 19.0  # the wrong pixel now carries half the weight
    assert M.auc_ab(pred, true, weights=w) == pytest.approx(0.5 + 0.5 * (1 - 50 / 150))
    centres = np.array([[0.0, 0.0], [100.0, 100.0]])
    assert M.auc_ab(pred, true, weights=np.array([1.0, 5.0]), centres=centres) == pytest.approx(
        M.auc_ab(pred, true)
    )
    with pytest.raises(ValueError):
        M.auc_ab(pred, true, weights=np.ones(3))


def test_bin_accuracy():
    true = np.zeros((2, 2, 2))
    pred = np.zeros((2, 2, 2))
    pred[0, 0, 0] = 3.0  # bins are half-open: 0 and 3 share [0, 4)
    pred[1, 1, 1] = 1.0
    acc = M.bin_accuracy(pred, true)
    np.testing.assert_allclose(acc, [1.0, 1.0])
    pred[0, 0, 0] = 5.0
    np.testing.assert_allclose(M.bin_accuracy(pred, true), [0.75, 1.0])
    t = torch.from_numpy(pred).permute(2, 0, 1)
    np.testing.assert_allclose(M.bin_accuracy(t, torch.zeros_like(t)), [0.75, 1.0])
    np.testing.assert_allclose(M.bin_accuracy(pred, true, centres=np.array([-10.0, 50.0])), [1, 1])


def test_saturation_difference(images):
    a, _ = images
    assert M.saturation_difference(a, a) == 0.0
    s = rgb2hsv(a)[..., 1].sum()
    gray = np.repeat(a.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
    assert M.saturation_difference(gray, a) == pytest.approx(-100.0)
    half = rgb2hsv(a)
    half[..., 1] *= 0.5
    from skimage.color import hsv2rgb

    assert M.saturation_difference(hsv2rgb(half), a / 255.0) == pytest.approx(-50.0, abs=1e-6)
    assert s > 0
    assert np.isnan(M.saturation_difference(a, gray))


def test_colourfulness():
    gray = np.full((8, 8, 3), 128, np.uint8)
    assert M.colourfulness(gray) == 0.0
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    # rg = 255, yb = 127.5, no spread: 0.3 * sqrt(255^2 + 127.5^2)
    assert M.colourfulness(red) == pytest.approx(0.3 * np.hypot(255, 127.5))
    assert M.colourfulness(red / 255.0) == pytest.approx(M.colourfulness(red))
    assert M.colourfulness(torch.from_numpy(red).permute(2, 0, 1)) == pytest.approx(
        M.colourfulness(red)
    )


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_property_metric_ranges(seed):
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 40, (3, 4, 2))
    t = rng.normal(0, 40, (3, 4, 2))
    assert 0.0 <= M.auc_ab(p, t) <= 1.0
    assert M.ab_rmse(p, t) >= 0
    assert M.auc_ab(p, t, max_thresh=300) >= M.auc_ab(p, t)


def test_false_colour_rate_cases():
    from tinct.metrics import false_colour_rate

    truth = np.zeros((2, 3, 2))
    truth[0] = (30.0, 0.0)  # red-ish, chroma 30
    pred = np.zeros((2, 3, 2))
    # row 0: same hue (ok), hue 180 degrees away (false), faint wrong hue (chroma 8: ok)
    pred[0, 0] = (25.0, 0.0)
    pred[0, 1] = (-25.0, 0.0)
    pred[0, 2] = (-8.0, 0.0)
    # row 1: truth neutral: chroma 12 is false, 9 is not, 0 is not
    pred[1, 0] = (0.0, 12.0)
    pred[1, 1] = (0.0, 9.0)
    assert false_colour_rate(pred, truth) == pytest.approx(2 / 6)
    assert false_colour_rate(truth, truth) == 0.0
    # 89 degrees away is still the right side; 91 is not
    for deg, expect in ((89.0, 0.0), (91.0, 1.0)):
        t = np.array([[[20.0, 0.0]]])
        p = 20.0 * np.array([[[np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))]]])
        assert false_colour_rate(p, t) == expect
    with pytest.raises(ValueError):
        false_colour_rate(np.zeros((2, 2, 2)), np.zeros((2, 3, 2)))
