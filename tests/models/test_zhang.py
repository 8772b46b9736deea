"""tinct.models.zhang: exact ports of Zhang et al.'s ECCV16 and SIGGRAPH17 networks."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinct.bins import gamut_bins, grid_bins
from tinct.models import count_parameters, get_record
from tinct.models.weights import load_state_dict_file
from tinct.models.zhang import ECCV16, SIGGRAPH17


# --------------------------------------------------------------------------- official layouts
# Written from the reference's layer tables (§1.3-1.5), independently of the ports.
def _bn(prefix, c):
    return {
        f"{prefix}.weight": (c,),
        f"{prefix}.bias": (c,),
        f"{prefix}.running_mean": (c,),
        f"{prefix}.running_var": (c,),
        f"{prefix}.num_batches_tracked": (),
    }


def _conv(prefix, cout, cin, k, bias=True):
    d = {f"{prefix}.weight": (cout, cin, k, k)}
    if bias:
        d[f"{prefix}.bias"] = (cout,)
    return d


def _convt(prefix, cin, cout):
    return {f"{prefix}.weight": (cin, cout, 4, 4), f"{prefix}.bias": (cout,)}


def _trunk(first_in):
    """model1..model7 of both networks: (block, [channels], bn index)."""
    spec = [
        ("model1", [first_in, 64, 64]),
        ("model2", [64, 128, 128]),
        ("model3", [128, 256, 256, 256]),
        ("model4", [256, 512, 512, 512]),
        ("model5", [512, 512, 512, 512]),
        ("model6", [512, 512, 512, 512]),
        ("model7", [512, 512, 512, 512]),
    ]
    d = {}
    for name, ch in spec:
        for i in range(len(ch) - 1):
            d |= _conv(f"{name}.{2 * i}", ch[i + 1], ch[i], 3)
        d |= _bn(f"{name}.{2 * (len(ch) - 1)}", ch[-1])
    return d


def official_eccv16_layout():
    d = _trunk(1)
    d |= _convt("model8.0", 512, 256)
    d |= _conv("model8.2", 256, 256, 3) | _conv("model8.4", 256, 256, 3)
    d |= _conv("model8.6", 313, 256, 1)
    d |= _conv("model_out", 2, 313, 1, bias=False)
    return d


def official_siggraph17_layout():
    d = _trunk(4)
    d |= _convt("model8up.0", 512, 256)
    d |= _conv("model8.1", 256, 256, 3) | _conv("model8.3", 256, 256, 3) | _bn("model8.5", 256)
    d |= _convt("model9up.0", 256, 128)
    d |= _conv("model9.1", 128, 128, 3) | _bn("model9.3", 128)
    d |= _convt("model10up.0", 128, 128)
    d |= _conv("model10.1", 128, 128, 3)
    d |= _conv("model3short8.0", 256, 256, 3)
    d |= _conv("model2short9.0", 128, 128, 3)
    d |= _conv("model1short10.0", 128, 64, 3)
    d |= _conv("model_class.0", 529, 256, 1)
    d |= _conv("model_out.0", 2, 128, 1)
    return d


def random_state(layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    return state


def test_layout_tables_match_the_reference_counts():
    e, s = official_eccv16_layout(), official_siggraph17_layout()
    assert len(e) == 82 and sum(not k.endswith("tracked") for k in e) == 75
    assert len(s) == 107 and sum(not k.endswith("tracked") for k in s) == 98
    numel = lambda d: sum(int(np.prod(v)) for v in d.values())  # noqa: E731
    # reference: elements incl. BN running stats, without the scalar BN counters (7 and 9)
    assert numel(e) - 7 == 32_241_003
    assert numel(s) - 9 == 34_192_787


@pytest.mark.parametrize(
    ("name", "layout"),
    [("zhang-eccv16", official_eccv16_layout), ("zhang-siggraph17", official_siggraph17_layout)],
)
def test_official_layout_loads_strictly(big_models, tmp_path, name, layout):
    model = big_models[name]
    expected = layout()
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == expected
    path = tmp_path / f"{name}.pth"
    torch.save(random_state(expected), path)
    state = load_state_dict_file(path)  # weights_only=True
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    out = model(torch.rand(1, 1, 32, 32) * 100)
    assert torch.isfinite(out.ab).all()


def test_eccv16_parameter_counts_match_published():
    # OMZ: 32.2360 M (BN folded to 2 numbers/channel) and 34.0511 M without model_class
    assert count_parameters(get_record("zhang-eccv16")) == 32_236_011
    assert count_parameters(get_record("zhang-siggraph17")) == 34_051_074 + 135_953


def pts_in_hull():
    """The 313 bins written out from the reference table (a, b-range), a-major."""
    ranges = {
        -90: (50, 90), -80: (20, 90), -70: (0, 90), -60: (-20, 90), -50: (-30, 100),
        -40: (-40, 100), -30: (-50, 100), -20: (-50, 100), -10: (-60, 100), 0: (-70, 100),
        10: (-80, 90), 20: (-80, 90), 30: (-90, 90), 40: (-100, 90), 50: (-100, 80),
        60: (-110, 80), 70: (-110, 80), 80: (-110, 70), 90: (-110, 70), 100: (-90, 0),
    }  # fmt: skip
    return torch.tensor(
        [(a, b) for a, (lo, hi) in ranges.items() for b in range(lo, hi + 1, 10)],
        dtype=torch.float64,
    )


def test_eccv16_decoding_equals_the_official_forward(big_models):
    model = big_models["zhang-eccv16"]
    # as in the official file: model_out = bin centres / 110 (an earlier test may
    # have loaded random values); BN statistics randomised so nothing is trivial
    torch.manual_seed(0)
    with torch.no_grad():
        model.model_out.weight.copy_((pts_in_hull().float().T / 110)[:, :, None, None])
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    lum = torch.rand(2, 1, 48, 40) * 100
    with torch.no_grad():
        out = model(lum)
        # independent re-implementation of the official forward
        x = (lum - 50) / 100
        for i in range(1, 9):
            x = getattr(model, f"model{i}")(x)
        weight = (pts_in_hull().float().T / 110)[:, :, None, None]
        official = F.conv2d(torch.softmax(x, 1), weight) * 110
        official = F.interpolate(official, scale_factor=4, mode="bilinear")
        # ours: logits -> softmax (T=1) -> expectation over gamut_bins -> bilinear x4
        probs = torch.softmax(out.logits, 1)
        ab = torch.einsum("bqhw,qc->bchw", probs, gamut_bins())
        ab = F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)
    assert out.logits.shape == (2, 313, 12, 10)
    torch.testing.assert_close(ab, official, rtol=0, atol=1e-4)
    torch.testing.assert_close(out.ab, official, rtol=0, atol=1e-4)


def test_eccv16_bin_centres_read_back_from_model_out():
    w = ECCV16(width=0.125).model_out.weight[:, :, 0, 0].T.double() * 110
    torch.testing.assert_close(w, pts_in_hull(), atol=1e-4, rtol=0)


def test_siggraph17_hints_and_heads(big_models):
    model = big_models["zhang-siggraph17"]
    torch.manual_seed(0)
    lum = torch.rand(1, 1, 32, 32) * 100
    hint_ab = torch.zeros(1, 2, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    hint_ab[..., 8:12, 8:12] = torch.tensor([40.0, -30.0])[:, None, None]
    mask[..., 8:12, 8:12] = 1
    with torch.no_grad():
        plain = model(lum)
        zeros = model(lum, torch.zeros_like(hint_ab), torch.zeros_like(mask))
        hinted = model(lum, hint_ab, mask)
    torch.testing.assert_close(plain.ab, zeros.ab)  # omitted hints = zeros
    assert not torch.allclose(plain.ab, hinted.ab)
    assert hinted.ab.shape == (1, 2, 32, 32) and hinted.ab.abs().max() <= 110
    assert hinted.logits.shape == (1, 529, 8, 8)
    assert grid_bins().shape[0] == hinted.logits.shape[1]


def test_reduced_width_port_keeps_the_key_layout():
    assert set(ECCV16(width=0.125).state_dict()) == set(official_eccv16_layout())
    assert set(SIGGRAPH17(width=0.125).state_dict()) == set(official_siggraph17_layout())
