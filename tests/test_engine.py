"""Engine tests: input handling, caching, hints, references, tiling, devices.

Most tests use tiny fake models (random but fixed weights, a few kB) so the
whole file runs in seconds; a few use ``tinct-small``/``tinct-base`` with
random weights (``pretrained=False``) where the real architecture matters.
"""

import threading
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tinct
from tinct import color
from tinct.cancel import Cancelled
from tinct.engine.colorizer import Colorizer
from tinct.engine.hints import Hint
from tinct.engine.options import ColorizeOptions
from tinct.engine.runtime import DeviceUnavailableError, select_device, select_dtype
from tinct.models.base import ColorModel, ModelOutput
from tinct.models.registry import ModelConfig


class TinyModel(ColorModel):
    """A few-parameter colorizer: 1/4-res logits and/or 1/2-res ab from L and hints."""

    stride = 8

    def __init__(self, config: ModelConfig, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.config = config
        q = max(config.num_bins, 1)
        self.logit_w = nn.Parameter(torch.randn(q, 4, generator=g) * 2.0)
        self.ab_w = nn.Parameter(torch.randn(2, 4, generator=g))
        self.record = types.SimpleNamespace(name="tiny", config=config)

    def forward(self, lum, hint_ab=None, hint_mask=None, global_hint=None):
        x = (lum - 50) / 50
        feats = torch.cat((x, x * x, F.avg_pool2d(x, 9, 1, 4), torch.ones_like(x)), 1)
        logits = ab = None
        if "logits" in self.config.heads:
            f4 = F.avg_pool2d(feats, 4)
            logits = torch.einsum("qc,bchw->bqhw", self.logit_w, f4)
        if "ab" in self.config.heads:
            f2 = F.avg_pool2d(feats, 2)
            ab = 40 * torch.tanh(torch.einsum("qc,bchw->bqhw", self.ab_w, f2))
        return ModelOutput(logits=logits, ab=ab)


JOINT = ModelConfig(target="gamut313", heads=("logits",), stride=8, logits_stride=4)
REGRESSION = ModelConfig(
    target="regression", heads=("ab",), num_bins=0, logits_stride=None, ab_stride=2,
    default_decoder="ab",
)  # fmt: skip


CHANNEL = ModelConfig(
    target="channel", heads=("logits",), num_bins=20, bins_per_channel=10,
    channel_range=(-100.0, 100.0), logits_stride=4, default_decoder="mean",
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_channel():
    return Colorizer(TinyModel(CHANNEL), device="cpu")


@pytest.fixture(scope="module")
def tiny():
    return Colorizer(TinyModel(JOINT), device="cpu")


@pytest.fixture(scope="module")
def tiny_reg():
    return Colorizer(TinyModel(REGRESSION), device="cpu")


@pytest.fixture(scope="module")
def small():
    """tinct-small with random weights (hint- and global-hint-aware architecture)."""
    return Colorizer("tinct-small", device="cpu", pretrained=False)


def gradient_image(h=64, w=80, dtype=np.uint8):
    yy, xx = np.mgrid[0:h, 0:w]
    img = (np.sin(xx / 7.0) * 0.3 + yy / h * 0.6 + 0.1).clip(0, 1)
    if dtype == np.uint8:
        return (img * 255).astype(np.uint8)
    if dtype == np.uint16:
        return (img * 65535).astype(np.uint16)
    return img.astype(dtype)


def lightness(rgb):
    x = torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).float()
    if rgb.dtype == np.uint8:
        x = x / 255
    return color.rgb_to_lab(x.permute(2, 0, 1))[0].numpy()


# ----------------------------------------------------------------------------- devices


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


# ----------------------------------------------------------------------------- inputs


def _virtual(shape):
    """A huge zero-strided uint8 array that takes no memory."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape, (0,) * len(shape))


BAD_INPUTS = [
    (np.zeros((0, 10)), ValueError, "empty"),
    (np.zeros((1, 1)), ValueError, "at least 2x2"),
    (np.zeros((1, 10)), ValueError, "at least 2x2"),
    (np.zeros(10), ValueError, "at least 2 dimensions"),
    (np.array(3.0), ValueError, "at least 2 dimensions"),
    (np.full((4, 4), np.nan), ValueError, "NaN"),
    (np.array([[0.0, np.inf], [0.0, 1.0]]), ValueError, "NaN or infinite"),
    (np.zeros((4, 4), bool), TypeError, "bool"),
    (np.zeros((4, 4), complex), TypeError, "complex"),
    (np.array([["a", "b"], ["c", "d"]]), TypeError, "not numeric"),
    (np.zeros((4, 4), object), TypeError, "not numeric"),
    (_virtual((70000, 4)), ValueError, "too large"),
    (_virtual((50000, 50000)), ValueError, "too large"),
]  # fmt: skip


@pytest.mark.parametrize(("image", "exc", "match"), BAD_INPUTS)
def test_bad_inputs(tiny, image, exc, match):
    with pytest.raises(exc, match=match):
        tiny.colorize(image)


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


# ----------------------------------------------------------------------------- tiling


def test_tiled_matches_untiled(small):
    img = gradient_image(192, 256)
    untiled = small.colorize(img, options=ColorizeOptions(net_size=128, tile=0)).astype(float)
    before = small.stats.forward_calls
    tiled = small.colorize(img, options=ColorizeOptions(net_size=128, tile=64, tile_overlap=32))
    assert small.stats.forward_calls - before > 4  # global pass + several tiles
    assert np.abs(tiled.astype(float) - untiled).mean() <= 2.0


def test_tiling_runs_for_regression_models(tiny_reg):
    img = gradient_image(100, 140)
    a = tiny_reg.colorize(img, options=ColorizeOptions(net_size=128, tile=0)).astype(float)
    b = tiny_reg.colorize(img, options=ColorizeOptions(net_size=128, tile=48)).astype(float)
    assert np.abs(a - b).mean() <= 2.0


# ----------------------------------------------------------------------------- misc API


def test_suggest_colors(tiny, tiny_reg):
    img = gradient_image()
    s = tiny.suggest_colors(img, 20, 30, k=9)
    assert s.shape == (9, 3) and s.dtype == np.uint8
    assert len({tuple(x) for x in s}) > 3
    cur = tiny.colorize(img)[20, 30].astype(int)
    np.testing.assert_array_equal(s[0], cur)
    np.testing.assert_array_equal(s, tiny.suggest_colors(img, 20, 30, k=9))  # seeded
    assert tiny_reg.suggest_colors(img, 3, 3, k=4).shape == (4, 3)
    with pytest.raises(ValueError):
        tiny.suggest_colors(img, 64, 0)


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


def test_upsampling_beats_bilinear_with_oracle_chroma():
    """Given the true chroma on a 1/4 network grid, the edge-aware path beats bilinear ab."""
    from skimage import data

    from tinct.upsample import resize

    rgb = data.coffee()
    H, W = rgb.shape[:2]
    lab = color.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255)
    hn, wn = round(H * 256 / max(H, W)), round(W * 256 / max(H, W))
    coarse = resize(lab[:, 1:], (-(-hn // 4), -(-wn // 4)))

    class Oracle(ColorModel):
        stride = 8

        def __init__(self):
            super().__init__()
            cfg = ModelConfig(
                target="regression", heads=("ab",), num_bins=0, logits_stride=None,
                ab_stride=4, default_decoder="ab",
            )  # fmt: skip
            self.record = types.SimpleNamespace(name="oracle", config=cfg)

        def forward(self, lum, *args):
            out = torch.zeros(1, 2, lum.shape[-2] // 4, lum.shape[-1] // 4)
            out[..., : coarse.shape[-2], : coarse.shape[-1]] = coarse
            return ModelOutput(ab=out)

    gray_lab = torch.cat((lab[:, :1], torch.zeros_like(lab[:, 1:])), 1)
    gray = (color.lab_to_rgb(gray_lab)[0, 0].numpy() * 255 + 0.5).astype(np.uint8)
    ours = Colorizer(Oracle(), device="cpu").colorize(gray).astype(np.float64)
    up = F.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False)
    base = color.lab_to_rgb(torch.cat((lab[:, :1], up), 1))[0].permute(1, 2, 0).numpy()
    base = (base * 255 + 0.5).astype(np.uint8).astype(np.float64)

    def psnr(x):
        return 10 * np.log10(255**2 / np.mean((x - rgb) ** 2))

    assert psnr(ours) > psnr(base) + 0.5


@pytest.mark.parametrize("which", ["tiny", "tiny_reg"])
def test_tile_blend_alone_has_no_seams(which, request, monkeypatch):
    """Without the global pass, tiles of a local model must reproduce the untiled result."""
    from tinct.engine import tiled as tiled_pass

    monkeypatch.setattr(tiled_pass, "GLOBAL_BLEND", 0.0)
    c = request.getfixturevalue(which)
    rng = np.random.default_rng(3)
    img = (rng.random((24, 32)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)  # 192x256
    untiled = c.colorize(img, options=ColorizeOptions(net_size=256, tile=0)).astype(float)
    tiled = c.colorize(img, options=ColorizeOptions(net_size=256, tile=96, tile_overlap=32))
    diff = np.abs(tiled.astype(float) - untiled)
    assert untiled.std() > 20  # a colourful, structured result
    assert diff.mean() <= 1.0 and np.percentile(diff, 99.9) <= 12


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


def test_hint_decoder_is_the_default_only_when_hints_are_given(monkeypatch):
    c = Colorizer("tinct-small", device="cpu", pretrained=False)
    defaults = {"decoder": "annealed_mean", "hint_decoder": "ab", "temperature": 0.5}
    monkeypatch.setattr(c, "defaults", lambda: defaults)
    assert c.resolve_options().decoder == "annealed_mean"
    assert c.resolve_options(hinted=True).decoder == "ab"
    assert c.resolve_options(hinted=True, decoder="mode").decoder == "mode"


def test_hint_propagation_spreads_a_hint_over_its_region():
    # left half dark, right half bright; one red hint in the left half
    gray = np.full((64, 64), 60, np.uint8)
    gray[:, 32:] = 200
    c = Colorizer("tinct-small", device="cpu", pretrained=False)
    hint = [tinct.Hint(32, 8, color=(200, 30, 30), size=4)]
    off = c.colorize(gray, hints=hint, decoder="ab", propagation=0.0)
    on = c.colorize(gray, hints=hint, decoder="ab", propagation=1e-4)
    lab_on = color.rgb_to_lab(torch.from_numpy(on).permute(2, 0, 1).float()[None] / 255)
    lab_off = color.rgb_to_lab(torch.from_numpy(off).permute(2, 0, 1).float()[None] / 255)
    far_left = (slice(None), 1, slice(8, 56), slice(20, 28))  # a* far from the hint, same region
    assert lab_on[far_left].mean() > lab_off[far_left].mean() + 5
    assert c.stats.network_passes == 1  # propagation is part of the re-decode


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


def test_scratch_buffer_reuse_across_images_of_different_sizes(tiny):
    """Renders reuse one scratch buffer; results do not depend on what it held before."""
    big, small = gradient_image(1100, 1000), gradient_image(300, 280)
    first_small = tiny.colorize(small, temperature=0.5)
    tiny.clear_cache()
    tiny.colorize(big)
    again_small = tiny.colorize(small, temperature=0.5)
    np.testing.assert_array_equal(first_small, again_small)
    fresh = Colorizer(tiny.model, device="cpu").colorize(big)
    np.testing.assert_array_equal(tiny.colorize(big), fresh)


@pytest.mark.parametrize(
    "image",
    [
        gradient_image(dtype=np.uint16).astype(">u2"),  # big-endian (FITS, some TIFFs)
        gradient_image(dtype=np.float64) * 1e-3 + 1e5,  # tiny range on a huge offset
        gradient_image(dtype=np.uint16).astype(np.int64),
    ],
)
def test_prepare_is_exact_for_wide_and_foreign_dtypes(image):
    from tinct.engine.inputs import prepare

    image.setflags(write=False)
    lo, hi = np.percentile(image.astype(np.float64), (0.5, 99.5))
    expected = np.clip((image.astype(np.float64) - lo) / (hi - lo), 0, 1)
    gray = prepare(image, normalize="percentile").gray[0, 0].double().numpy()
    np.testing.assert_allclose(gray, expected, atol=1e-6)


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
