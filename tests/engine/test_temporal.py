import numpy as np
import pytest
import torch

import tinct
from engine_helpers import shown_ab
from tinct import Hint
from tinct import motion as M
from tinct.engine.carry import HintStop, hints_by_plane
from tinct.engine.options import ColorizeOptions
from tinct.engine.temporal import HISTORY_GAIN, TemporalRun

T, S, STEP = 12, 160, 8


@pytest.fixture(scope="module")
def colorizer():
    return tinct.Colorizer("tinct-base", device="cpu", num_threads=1)


@pytest.fixture(scope="module")
def scene():
    from skimage import data
    from skimage.color import rgb2gray
    from skimage.transform import rescale

    rgb = rescale(data.astronaut(), 0.5, channel_axis=-1, anti_aliasing=True)  # 256 x 256
    return (rgb2gray(rgb) * 255).astype(np.float32)


def pan(gray: np.ndarray, frames: int = T, noise: float = 3.0, seed: int = 0) -> np.ndarray:
    """``(frames, S, S)`` uint8: a crop moving STEP px to the right per frame, fresh noise each."""
    rng = np.random.default_rng(seed)
    out = np.stack([gray[40 : 40 + S, t * STEP : t * STEP + S] for t in range(frames)])
    return np.clip(out + rng.normal(0, noise, out.shape) + 0.5, 0, 255).astype(np.uint8)


def ab_at(rgb: np.ndarray, r: int, c: int, k: int = 3) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(rgb[r - k : r + k + 1, c - k : c + k + 1]).reshape(-1, 3)[:, 1:].mean(0)


def flicker(out: np.ndarray) -> float:
    from skimage.color import rgb2lab

    ab = rgb2lab(out)[..., 1:]
    return float(np.abs(ab[1:, :, : S - STEP] - ab[:-1, :, STEP:]).mean())


def test_temporal_mode_reduces_flicker_of_a_pan(colorizer, scene):
    seq = pan(scene)
    before = seq.copy()
    ind = colorizer.colorize(seq)
    tmp = colorizer.colorize(seq, temporal=True)
    assert np.array_equal(seq, before)
    assert tmp.shape == ind.shape == (T, S, S, 3) and tmp.dtype == np.uint8
    assert flicker(tmp) < 0.6 * flicker(ind)
    # the gray level is the input's: colour only moves in chroma
    assert np.abs(tmp.astype(float).mean(-1) - ind.astype(float).mean(-1)).mean() < 3.0


def test_a_hint_on_frame_0_still_colours_the_object_on_frame_11(colorizer, scene):
    seq = pan(scene)
    r, c = 100, 120  # frame 0; the content is at column c - 88 on frame 11
    blue = (30, 80, 255)
    hint = Hint(r, c, color=blue, size=8)
    target = ab_at(np.array([[[30, 80, 255]]] * 7, np.uint8).repeat(7, 1), 3, 3)
    plain = colorizer.colorize(seq, temporal=True)
    hinted = colorizer.colorize(seq, hints=[hint], temporal=True)
    c11 = c - STEP * (T - 1)
    d_plain = np.linalg.norm(ab_at(plain[-1], r, c11) - target)
    d_hint = np.linalg.norm(ab_at(hinted[-1], r, c11) - target)
    assert d_hint < 0.5 * d_plain
    # plane by plane, the same hint stays at its pixel while the content moves on: the
    # engine still spreads its colour over similar content, but how far it reaches the
    # hinted content swings from frame to frame; carried, it holds
    fixed = colorizer.colorize(seq, hints=[hint])

    def worst(out: np.ndarray) -> float:
        return max(
            np.linalg.norm(ab_at(out[t], r, c - STEP * t) - shown_ab(seq[t], r, c - STEP * t, blue))
            for t in range(T)
        )

    assert worst(fixed) > 1.5 * worst(hinted)  # 25 vs 15 ab units (2026-12-03)


def test_a_scene_cut_stops_carried_hints(colorizer, scene):
    seq = pan(scene)
    other = pan(np.ascontiguousarray(np.rot90(scene, 2)), seed=1)
    seq = np.concatenate((seq[:6], other[:6]))
    run_hint = TemporalRun(
        colorizer,
        colorizer.resolve_options(hinted=True),
        {0: [Hint(100, 120, color=(30, 80, 255), size=8)]},
    )
    run_plain = TemporalRun(colorizer, colorizer.resolve_options(hinted=True), {})
    a, b = run_hint.feed(seq), run_plain.feed(seq)
    assert run_hint.cuts == [6] and run_plain.cuts == [6]
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff[:6].max() > 50  # the hint acts before the cut ...
    assert diff[6:].mean() < 0.5  # ... and not after it


@pytest.mark.slow
def test_hint_stop_and_replacement(colorizer, scene):
    seq = pan(scene)
    r, c = 100, 120
    blue, red = (30, 80, 255), (255, 40, 20)
    opts = colorizer.resolve_options(hinted=True)
    c6, c11 = c - 6 * STEP, c - 11 * STEP
    blue_ab, red_ab = shown_ab(seq[-1], r, c11, blue), shown_ab(seq[-1], r, c11, red)
    stop = {0: [Hint(r, c, color=blue, size=8)], 6: [HintStop(r, c6, size=16)]}
    swap = {0: [Hint(r, c, color=blue, size=8)], 6: [Hint(r, c6, color=red, size=8)]}
    carried = TemporalRun(colorizer, opts, {0: [Hint(r, c, color=blue, size=8)]}).feed(seq)
    stopped = TemporalRun(colorizer, opts, stop).feed(seq)
    replaced = TemporalRun(colorizer, opts, swap).feed(seq)

    def d(img, ab):
        return np.linalg.norm(ab_at(img[-1], r, c11) - ab)

    assert d(stopped, blue_ab) > d(carried, blue_ab) + 20
    assert d(replaced, red_ab) < 0.5 * d(carried, red_ab)
    assert d(replaced, blue_ab) > d(carried, blue_ab) + 20


def test_chunked_feeding_matches_one_feed(colorizer, scene):
    seq = pan(scene)
    opts = colorizer.resolve_options()
    whole = TemporalRun(colorizer, opts).feed(seq)
    run = TemporalRun(colorizer, opts)
    parts = np.concatenate([run.feed(seq[i : i + 5]) for i in range(0, T, 5)])
    assert np.abs(whole.astype(int) - parts.astype(int)).max() <= 2


def test_redecoding_a_temporal_stack_reuses_the_network_pass(colorizer, scene):
    seq = pan(scene, frames=4)
    colorizer.colorize(seq, temporal=True)
    passes = colorizer.stats.network_passes
    a = colorizer.colorize(seq, temporal=True, temperature=0.3)
    b = colorizer.colorize(seq, temporal=True, temperature=1.0)
    assert colorizer.stats.network_passes == passes
    assert not np.array_equal(a, b)


def test_axis_and_extra_leading_axes(colorizer, scene):
    seq = pan(scene, frames=4)[:, ::2, ::2]  # (4, 80, 80)
    both = np.stack((seq, seq[:, ::-1]), 1)  # (T=4, Z=2, 80, 80)
    out = colorizer.colorize(both, temporal=True)
    assert out.shape == (4, 2, 80, 80, 3)
    one = colorizer.colorize(seq, temporal=True)
    assert np.abs(out[:, 0].astype(int) - one.astype(int)).max() <= 2
    swapped = colorizer.colorize(np.swapaxes(both, 0, 1), temporal=True, axis=1)
    assert swapped.shape == (2, 4, 80, 80, 3)
    assert np.abs(np.swapaxes(swapped, 0, 1).astype(int) - out.astype(int)).max() <= 2


def test_float_stacks_are_normalised_once_for_the_whole_sequence(colorizer, scene):
    seq = pan(scene, frames=4).astype(np.float32) * 40.0  # counts, not [0, 1]
    seq[2] *= 1.5  # one brighter plane must stay brighter, not be re-stretched
    out = colorizer.colorize(seq, temporal=True)
    assert out.dtype == np.float32 and out.shape == (4, S, S, 3)
    assert out[2].mean() > out[1].mean() + 0.05


def test_single_images_and_bad_temporal_input(colorizer, scene):
    one = scene[:64, :64].astype(np.uint8)  # a single image has no time axis: as usual
    assert np.array_equal(colorizer.colorize(one, temporal=True), colorizer.colorize(one))
    seq = pan(scene, frames=3)
    with pytest.raises(ValueError, match="axis"):
        colorizer.colorize(seq, temporal=True, axis=1)
    with pytest.raises(ValueError, match="plane"):
        colorizer.colorize(seq, hints={5: [Hint(3, 3, color=(1, 2, 3))]}, temporal=True)
    with pytest.raises(TypeError):
        hints_by_plane({0: ["red"]})
    with pytest.raises(ValueError):
        hints_by_plane({-1: []})


def test_blend_keeps_colour_only_where_motion_explains_the_plane():
    run = TemporalRun(None, ColorizeOptions())  # _blend needs no engine
    run._size = (8, 8)
    a = torch.zeros(1, 2, 8, 8)
    b = torch.full((1, 2, 8, 8), 10.0)
    assert torch.equal(run._blend(a, None, []), a)
    conf = torch.ones(1, 1, 8, 8)
    conf[..., 4:] = 0.0  # right half: a motion edge / new content
    m = M.Motion(torch.zeros(1, 2, 8, 8), conf, torch.tensor([False]), torch.zeros(1, 2))
    out = run._blend(b, m, [])
    keep = 1.0 - 1.0 / (1.0 + HISTORY_GAIN)  # second plane of persisting content
    assert torch.allclose(out[..., :4], torch.full((1, 2, 8, 4), 10.0 * (1 - keep)))
    assert torch.equal(out[..., 4:], b[..., 4:])
    cut = M.Motion(torch.zeros(1, 2, 8, 8), torch.ones(1, 1, 8, 8), torch.tensor([True]),
                   torch.zeros(1, 2))  # fmt: skip
    assert torch.equal(run._blend(a, cut, []), a)


def test_a_hint_on_a_later_plane_recolours_what_it_does_plane_by_plane(colorizer):
    """napari's sample stack, one hint on plane 2: the whole plane took its colour plane
    by plane, while temporal mode kept the automatic colour of planes 0-1 but at the
    hint and along moving edges (mean ab (2, 2) against (18, -37)), on later planes too."""
    from skimage.color import rgb2lab

    from tinct.napari_plugin.samples import sample_stack

    stack = sample_stack()[0][0]
    hint = Hint(128, 128, color=(30, 80, 255))
    alone = rgb2lab(colorizer.colorize(stack[2], [hint]))[..., 1:].mean((0, 1))
    auto = rgb2lab(colorizer.colorize(stack[2]))[..., 1:].mean((0, 1))
    out = rgb2lab(colorizer.colorize(stack, hints={2: [hint]}, temporal=True))[..., 1:]
    assert np.linalg.norm(alone - auto) > 20  # the hint floods the plane
    for z in (0, 1):  # before the hint: automatic colour
        assert np.linalg.norm(out[z].mean((0, 1)) - auto) < 3, z
    for z in (2, 3, 4):  # from its plane on, the hint's colour holds (the content pans)
        assert np.linalg.norm(out[z].mean((0, 1)) - alone) < 5, (z, out[z].mean((0, 1)))
