"""Held-out scoring as the engine decodes, and palette matching (tinct.training.adaptation)."""

import numpy as np
import pytest
import torch

import tinct
from tinct import metrics
from tinct.models import load_model
from tinct.training.adaptation import SCORE_KEY, match_palette, scorer


def _images(n=3, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:256]
    out = []
    for _ in range(n):
        base = rng.integers(60, 200, 3)
        wave = (40 * np.sin(xx / rng.uniform(8, 30)) * np.cos(yy / rng.uniform(8, 30)))[..., None]
        out.append(np.clip(base + wave + rng.normal(0, 8, (256, 256, 3)), 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.mark.slow
def test_scores_are_the_engines_psnr_for_every_decoder():
    images = _images()
    model = load_model("tinct-base")
    found = scorer(images, [0, 1, 2], torch.device("cpu"))(model)
    assert set(found) == {"psnr_gray", "psnr_auto_coherent", "psnr_auto_annealed_mean",
                          "psnr_auto_ab", SCORE_KEY}  # fmt: skip
    assert found[SCORE_KEY] == max(v for k, v in found.items() if k.startswith("psnr_auto_"))
    c = tinct.Colorizer("tinct-base", device="cpu")
    for decoder in ("coherent", "annealed_mean", "ab"):
        psnr = np.mean(
            [metrics.psnr(c.colorize(im, decoder=decoder)[..., :3], im) for im in images]
        )
        assert found[f"psnr_auto_{decoder}"] == pytest.approx(psnr, abs=0.05), decoder
    gray = [metrics.psnr(np.repeat(_lum_u8(im)[..., None], 3, -1), im) for im in images]
    assert found["psnr_gray"] == pytest.approx(np.mean(gray), abs=0.05)


def _lum_u8(rgb):
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(rgb)
    lab[..., 1:] = 0
    return (np.clip(lab2rgb(lab), 0, 1)[..., 0] * 255).round().astype(np.uint8)


def test_palette_matching_gives_the_model_the_examples_colours():
    torch.manual_seed(0)
    model = load_model("tinct-small", pretrained=False)
    pink = np.zeros((4, 64, 64, 3), np.uint8)
    pink[...] = (225, 150, 195)
    rng = np.random.default_rng(1)
    pink = np.clip(pink * rng.uniform(0.7, 1.0, (4, 64, 64, 1)), 0, 255).astype(np.uint8)
    from tinct.color import rgb_to_lab

    lab = rgb_to_lab(torch.from_numpy(pink).permute(0, 3, 1, 2).float() / 255)
    want = lab[:, 1:].mean((0, 2, 3))

    def mean_prediction():
        with torch.no_grad():
            out = model(lab[:, :1], torch.zeros_like(lab[:, 1:]), torch.zeros_like(lab[:, :1]))
        return out.ab.mean((0, 2, 3)), torch.softmax(out.logits, 1).mean((0, 2, 3))

    before_ab, _ = mean_prediction()
    assert match_palette(model, pink, [0, 1, 2, 3], torch.device("cpu"))
    after_ab, p = mean_prediction()
    assert (after_ab - want).abs().max() < 2.0 < (before_ab - want).abs().max()
    from tinct.bins import gamut_bins

    expected = (p[:, None] * gamut_bins()).sum(0)  # the distribution's mean colour
    assert (expected - want).abs().max() < 6.0
    assert not model.training  # the caller's mode is kept


def test_palette_matching_leaves_other_models_alone():
    levin = load_model("levin")
    assert not match_palette(levin, _images(1)[:, :64, :64], [0], torch.device("cpu"))


def test_scoring_and_palette_matching_stop_once_cancelled():
    import threading

    from tinct.cancel import Cancelled

    torch.manual_seed(0)
    model = load_model("tinct-small", pretrained=False)
    images = _images(2)[:, :64, :64]
    cancel = threading.Event()
    cancel.set()
    score = scorer(images, [0, 1], torch.device("cpu"))
    with pytest.raises(Cancelled):
        score(model, cancel=cancel)
    before = [p.detach().clone() for p in (model.class_head.bias, model.ab_head.bias)]
    with pytest.raises(Cancelled):
        match_palette(model, images, [0, 1], torch.device("cpu"), cancel=cancel)
    after = (model.class_head.bias, model.ab_head.bias)
    assert all(torch.equal(x, y) for x, y in zip(before, after, strict=True))
    assert set(score(model)) >= {SCORE_KEY}  # without a flag (a validation in training)


def test_palette_matching_is_fitted_to_a_quarter_of_the_budget():
    """304 tiles, half a minute, a loaded CPU: matching 228 of them took 115 s, scoring 25 s."""
    from tinct.training.adaptation import MAX_MATCHED, palette_pieces

    assert palette_pieces(30.0, 25.0, 64) == 19  # 7.5 s at 0.39 s an example
    assert palette_pieces(180.0, 6.4, 64) == MAX_MATCHED  # three minutes, an idle CPU
    assert palette_pieces(6.0, 60.0, 64) == 8  # never fewer than one batch
    assert palette_pieces(0.0, 25.0, 64) == MAX_MATCHED  # a step budget: no time to fit


def test_palette_matching_uses_at_most_its_limit_of_examples():
    torch.manual_seed(0)
    model = load_model("tinct-small", pretrained=False)
    batches = []
    model.register_forward_hook(lambda module, args, out: batches.append(len(args[0])))
    images = _images(16)[:, :64, :64]
    assert match_palette(model, images, list(range(16)), torch.device("cpu"), limit=8)
    assert batches == [8]  # one batch of 8, not two


def test_the_same_weights_are_scored_once(tmp_path):
    """Training validates the starting weights the fine-tune has just scored: seconds each."""
    from tinct.models.weights import save_weights

    torch.manual_seed(0)
    model = load_model("tinct-small", pretrained=False).eval()
    passes = []
    model.register_forward_hook(lambda *_: passes.append(1))
    score = scorer(_images(2)[:, :64, :64], [0, 1], torch.device("cpu"))
    first = score(model)
    save_weights(model, tmp_path / "start.safetensors", {"model": "tinct-small"})
    again = load_model(tmp_path / "start.safetensors").eval()  # as training loads its start
    again.register_forward_hook(lambda *_: passes.append(1))
    assert score(again) == first and len(passes) == 1
    with torch.no_grad():
        again.ab_head.bias += 0.1  # one step of training changes them
    assert score(again) != first and len(passes) == 2
