"""tinct.engine.colorizer: the Colorizer (input handling, caching, hints, references, API).

Most tests use tiny fake models (random but fixed weights, a few kB;
``engine_helpers.TinyModel``) so the whole file runs in seconds; a few use
``tinct-small``/``tinct-base`` with random weights (``pretrained=False``) where
the real architecture matters.
"""

import threading

import numpy as np
import pytest
import torch

import tinct
from engine_helpers import JOINT, TinyModel, gradient_image
from tinct import color
from tinct.cancel import Cancelled
from tinct.engine.colorizer import Colorizer
from tinct.engine.hints import Hint
from tinct.engine.options import ColorizeOptions
from tinct.models.registry import ModelConfig

CHANNEL = ModelConfig(
    target="channel", heads=("logits",), num_bins=20, bins_per_channel=10,
    channel_range=(-100.0, 100.0), logits_stride=4, default_decoder="mean",
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_channel():
    return Colorizer(TinyModel(CHANNEL), device="cpu")


def lightness(rgb):
    x = torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).float()
    if rgb.dtype == np.uint8:
        x = x / 255
    return color.rgb_to_lab(x.permute(2, 0, 1))[0].numpy()


# ----------------------------------------------------------------------------- inputs


def test_bad_hints_and_reference(tiny):
    img = gradient_image()
    with pytest.raises(ValueError, match="outside"):
        tiny.colorize(img, hints=[Hint(64, 0, color=(255, 0, 0))])
    with pytest.raises(TypeError, match="Hint"):
        tiny.colorize(img, hints=[(1, 2, 3)])
    with pytest.raises(ValueError, match="colour image"):
        tiny.colorize(img, reference=img)
    with pytest.raises(ValueError, match="temperature"):
        tiny.colorize(img, temperature=-1)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_input_never_modified(tiny, dtype):
    img = gradient_image(dtype=dtype)
    rgba = np.dstack([img] * 3 + [img])
    for arr in (img, rgba):
        ref = arr.copy()
        arr.setflags(write=False)
        tiny.colorize(arr, hints=[Hint(5, 5, color=(255, 0, 0))], mrf_weight=1.0)
        np.testing.assert_array_equal(arr, ref)


def test_uint8_gray_to_uint8_rgb(tiny):
    img = gradient_image()
    out = tiny.colorize(img)
    assert out.shape == (64, 80, 3) and out.dtype == np.uint8
    corr = np.corrcoef(lightness(out).ravel(), lightness(np.dstack([img] * 3)).ravel())[0, 1]
    assert corr > 0.98


@pytest.mark.parametrize(
    ("image", "normalize"),
    [
        (gradient_image(dtype=np.uint16), "auto"),
        (gradient_image(dtype=np.float64), "auto"),
        (gradient_image(dtype=np.float32) * 4000 + 100, "auto"),  # astronomy-like range
        (gradient_image(dtype=np.float32) * 1e-3 - 5.0, "percentile"),
        ((gradient_image(dtype=np.float32) * 4095).astype(np.uint16), "percentile"),  # 12-bit
        ((gradient_image(dtype=np.float32) * 1000 - 500).astype(np.int16), "auto"),
    ],
)
def test_high_bit_depth_and_float_inputs(tiny, image, normalize):
    out = tiny.colorize(image, options=ColorizeOptions(normalize=normalize))
    assert out.dtype == np.float32 and out.shape == (*image.shape, 3)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    corr = np.corrcoef(lightness(out).ravel(), image.astype(np.float64).ravel())[0, 1]
    assert corr > 0.97
    assert out.max() - out.min() > 0.3  # the range is used, not crushed


def test_rgb_input_uses_luminance_and_carries_alpha(tiny):
    rng = np.random.default_rng(1)
    rgb = (rng.random((48, 40, 3)) * 255).astype(np.uint8)
    alpha = (rng.random((48, 40)) * 255).astype(np.uint8)
    out = tiny.colorize(np.dstack([rgb, alpha]))
    assert out.shape == (48, 40, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 3], alpha)
    corr = np.corrcoef(lightness(out).ravel(), lightness(rgb).ravel())[0, 1]
    assert corr > 0.95
    fout = tiny.colorize(np.dstack([rgb, alpha]).astype(np.float32) / 255)
    assert fout.dtype == np.float32
    np.testing.assert_allclose(fout[..., 3], alpha / 255, atol=1e-6)


def test_stack_equals_per_plane(tiny):
    g = gradient_image(40, 48)
    planes = [g, g[::-1].copy(), np.roll(g, 17, axis=1)]
    stack = np.stack(planes).reshape(3, 1, 40, 48)
    out = tiny.colorize(stack)
    assert out.shape == (3, 1, 40, 48, 3)
    for i, p in enumerate(planes):
        np.testing.assert_allclose(out[i, 0].astype(int), tiny.colorize(p).astype(int), atol=1)
    rgb_stack = np.stack([np.dstack([p] * 3) for p in planes])
    assert tiny.colorize(rgb_stack).shape == (3, 40, 48, 3)
    # rgb=False reads a trailing axis of 3 as image width
    assert tiny.colorize(np.zeros((5, 6, 3), np.uint8), rgb=False).shape == (5, 6, 3, 3)


# ----------------------------------------------------------------------------- cache


def test_redecode_does_not_run_the_network():
    c = Colorizer(TinyModel(JOINT), device="cpu")
    img = gradient_image()
    base = c.colorize(img)
    calls = c.stats.forward_calls
    assert calls == 1
    warm = c.colorize(img, temperature=0.1)
    mode = c.colorize(img, decoder="mode")
    smooth = c.colorize(img, mrf_weight=2.0, mrf_iters=3)
    assert c.stats.forward_calls == calls and c.stats.cache_hits == 3
    assert not np.array_equal(base, warm) and not np.array_equal(base, mode)
    assert not np.array_equal(base, smooth)
    np.testing.assert_array_equal(c.colorize(img), base)
    # new hints or a new image do run the network
    c.colorize(img, hints=[Hint(3, 3, color=(0, 0, 255))])
    c.colorize(img[::-1].copy())
    assert c.stats.forward_calls == calls + 2


def test_cache_disabled():
    c = Colorizer(TinyModel(JOINT), device="cpu", cache_size=0)
    img = gradient_image()
    c.colorize(img)
    c.colorize(img, temperature=0.2)
    assert c.stats.forward_calls == 2


# ----------------------------------------------------------------------------- hints


def _toward_red(c, img, **kw):
    hint = Hint(32, 40, color=(230, 20, 20), size=10)
    before = c.colorize(img, **kw)[28:37, 36:45].reshape(-1, 3).astype(float).mean(0)
    after = c.colorize(img, hints=[hint], **kw)[28:37, 36:45].reshape(-1, 3).astype(float).mean(0)
    target = np.array([230.0, 20.0, 20.0])
    return np.linalg.norm(before - target), np.linalg.norm(after - target), after


@pytest.mark.parametrize("which", ["tiny", "tiny_reg", "tiny_channel", "small"])
def test_hints_move_colour_toward_hint(which, request):
    c = request.getfixturevalue(which)
    img = np.full((64, 80), 120, np.uint8)
    d_before, d_after, after = _toward_red(c, img)
    assert d_after < 0.5 * d_before
    assert after[0] > after[1] + 40 and after[0] > after[2] + 40


def test_hint_without_hint_inputs_spreads_with_mrf(tiny):
    img = np.full((64, 80), 120, np.uint8)
    h = [Hint(32, 20, color=(20, 20, 230), size=4)]
    plain = tiny.colorize(img, hints=h)[32, 34].astype(float)
    spread = tiny.colorize(img, hints=h, mrf_weight=3.0, mrf_iters=10)[32, 34].astype(float)
    assert spread[2] - spread[0] >= plain[2] - plain[0]


# ----------------------------------------------------------------------------- reference


def test_reference_reweights_distribution_models(tiny):
    img = gradient_image()
    ref = np.zeros((32, 32, 3), np.uint8)
    ref[..., 1] = 180  # a green reference
    a = tiny.colorize(img).astype(float)
    b = tiny.colorize(img, reference=ref).astype(float)
    assert np.abs(a - b).mean() > 1.0

    def greenness(x):
        return (x[..., 1] - np.maximum(x[..., 0], x[..., 2])).mean()

    assert greenness(b) > greenness(a) + 10


def test_reference_reweights_per_channel_models(tiny_channel):
    img = gradient_image()
    ref = np.zeros((32, 32, 3), np.uint8)
    ref[..., 1] = 180
    a = tiny_channel.colorize(img).astype(float)
    b = tiny_channel.colorize(img, reference=ref).astype(float)
    assert (b[..., 1] - b[..., 0]).mean() > (a[..., 1] - a[..., 0]).mean() + 5


def test_reference_reaches_global_hint_input():
    seen = []

    class Spy(TinyModel):
        def forward(self, lum, hint_ab=None, hint_mask=None, global_hint=None):
            seen.append(global_hint)
            return super().forward(lum, hint_ab, hint_mask, global_hint)

    cfg = ModelConfig(target="gamut313", heads=("logits",), global_hint=True, logits_stride=4)
    c = Colorizer(Spy(cfg), device="cpu")
    img = gradient_image()
    ref = np.zeros((32, 32, 3), np.uint8)
    ref[..., 0] = 220
    c.colorize(img)
    c.colorize(img, reference=ref)
    assert seen[0] is None
    gh = seen[1]
    assert gh.shape == (1, 314) and gh[0, 313] == 1.0
    assert float(gh[0, :313].sum()) == pytest.approx(1.0)
    from tinct.bins import gamut_bins

    top = gamut_bins()[gh[0, :313].argmax()]
    assert top[0] > 30  # reddish bins (a > 0)


# ----------------------------------------------------------------------------- misc API


def test_progress_cancel_and_threads(tiny):
    img = gradient_image(50, 60)
    seen = []
    tiny.colorize(img + 1, progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        tiny.colorize(img + 2, cancel=ev)
    expected = tiny.colorize(img + 3)
    results = [None] * 4

    def work(i):
        results[i] = tiny.colorize(img + 3, temperature=0.38)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_colorizer_from_weights_file_and_one_shot(tmp_path):
    from tinct.models.weights import save_weights

    model = tinct.load_model("tinct-small", pretrained=False)
    path = save_weights(model, tmp_path / "small.safetensors")
    img = gradient_image(40, 50)
    c = Colorizer(str(path), device="cpu")
    assert c.info.name == "tinct-small"
    out = tinct.colorize(img, model=path, device="cpu")
    np.testing.assert_array_equal(out, c.colorize(img))


def test_hint_decoder_is_the_default_only_when_hints_are_given(monkeypatch):
    c = Colorizer("tinct-small", device="cpu", pretrained=False)
    defaults = {"decoder": "annealed_mean", "hint_decoder": "ab", "temperature": 0.5}
    monkeypatch.setattr(c, "defaults", lambda: defaults)
    assert c.resolve_options().decoder == "annealed_mean"
    assert c.resolve_options(hinted=True).decoder == "ab"
    assert c.resolve_options(hinted=True, decoder="mode").decoder == "mode"


def test_tinct_base_propagates_hints_inside_the_model():
    """tinct-base's fusion head spreads hints itself (Levin + gate); the engine adds none."""
    gray = np.full((64, 64), 60, np.uint8)
    gray[:, 32:] = 200
    c = Colorizer("tinct-base", device="cpu", pretrained=False)
    assert c.resolve_options(hinted=True).propagation == 0.0
    hint = [tinct.Hint(32, 8, color=(200, 30, 30), size=4)]
    out = c.colorize(gray, hints=hint)
    lab = color.rgb_to_lab(torch.from_numpy(out).permute(2, 0, 1).float()[None] / 255)
    assert lab[0, 1, 8:56, 20:28].mean() > 25  # red far from the hint, same region


def test_tinct_base_hints_on_a_stack_equal_hints_on_each_plane():
    """Hint fusion on a (3, H, W) stack: every plane as when colorized alone with the hint."""
    gray = np.full((48, 48), 60, np.uint8)
    gray[:, 24:] = 200
    planes = [gray, gray[::-1].copy(), np.roll(gray, 7, axis=1)]
    c = Colorizer("tinct-base", device="cpu", pretrained=False)
    hint = [tinct.Hint(24, 8, color=(200, 30, 30), size=4)]
    out = c.colorize(np.stack(planes), hints=hint)
    assert out.shape == (3, 48, 48, 3)
    for i, p in enumerate(planes):
        np.testing.assert_allclose(out[i].astype(int), c.colorize(p, hints=hint), atol=2)


@pytest.mark.timeout(60)  # uncancelled, the work takes many minutes
@pytest.mark.parametrize("work", ["mrf", "hints"])
def test_cancel_stops_long_work(work):
    """A long MRF (10,000 sweeps) or 5,000 hints on a tiny image stop after the cancel."""
    c = Colorizer("tinct-base", device="cpu", pretrained=False)
    img = gradient_image(96, 96)
    kwargs = {"mrf_weight": 1.0, "mrf_iters": 10_000}
    if work == "hints":
        img = img[:32, :32]
        kwargs = {"hints": [Hint(i % 32, i // 32 % 32, color=(255, 0, 0)) for i in range(5000)]}
    ev = threading.Event()
    timer = threading.Timer(1.0, ev.set)
    timer.start()
    with pytest.raises(Cancelled):
        c.colorize(img, cancel=ev, **kwargs)
    timer.join()
    assert c.colorize(img[:16, :16]).shape == (16, 16, 3)  # the colorizer is still usable


def test_a_hint_edit_reuses_the_plain_runs_input_and_upsampling_state(monkeypatch):
    from tinct.engine import inputs

    img = gradient_image(96, 120)
    hints = [Hint(30, 40, color=(200, 30, 30)), Hint(70, 90, color=(30, 60, 200))]
    fresh = Colorizer("tinct-base", device="cpu").colorize(img, hints=hints)
    c = Colorizer("tinct-base", device="cpu")
    plain = c.colorize(img)
    calls = []
    original = inputs.prepare_noted
    monkeypatch.setattr(
        inputs, "prepare_noted", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    hinted = c.colorize(img, hints=hints)
    assert calls == []  # the hint edit did not prepare the image again
    np.testing.assert_array_equal(hinted, fresh)  # and gives what a fresh colorizer gives
    assert np.abs(hinted.astype(int) - plain).mean() > 0.5
    entries = list(c._cache.values())
    assert entries[0].prepared is entries[1].prepared and entries[0].work is entries[1].work


def test_local_hints_keep_a_hint_on_its_own_side_of_an_edge():
    """tinct-base: one red hint on the darker half floods the brighter half too across a
    weak edge (Levin's propagation reaches every pixel); with ``local_hints`` the brighter
    half keeps the network's own colour."""
    from skimage.color import rgb2lab

    gray = np.full((128, 128), 110, np.uint8)
    gray[:, 64:] = 125
    c = Colorizer("tinct-base", device="cpu")
    hint = [Hint(64, 20, color=(200, 30, 30), size=8)]
    auto, flood = c.colorize(gray), c.colorize(gray, hints=hint)
    local = c.colorize(gray, hints=hint, local_hints=True)
    again = c.colorize(gray, hints=hint, options=c.options.replace(local_hints=True))
    np.testing.assert_array_equal(local, again)

    def a_star(img, cols):  # CIELAB a* (red) of a region
        return float(rgb2lab(img[:, cols])[..., 1].mean())

    assert a_star(flood, slice(4, 40)) > 15 and a_star(local, slice(4, 40)) > 15
    assert a_star(flood, slice(80, 124)) > a_star(auto, slice(80, 124)) + 30  # the flood
    assert abs(a_star(local, slice(80, 124)) - a_star(auto, slice(80, 124))) < 3
