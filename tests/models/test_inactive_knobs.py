"""tinct.models.catalog.inactive_knobs checked against the engine itself.

For models of every kind (hint-fusing tinct-base, tinct-small without a fusion head, a
model without a hint input, a hue/chroma model, CIELUV and YUV models, Levin), with and
without hints, automatic and chosen decoders: each knob is flipped between two values.
A knob the table calls inactive must leave the output as it was (to 1e-6); a knob it
leaves out must change it (with random weights the coherent decoder may keep the regression
colour everywhere, so there only the first half is held). Float input, so that small
effects are not rounded away.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tinct
from tinct.models import catalog, get_record

#: knob -> (value a, value b, extra options for both runs)
FLIPS = {
    "temperature": (0.3, 1.0, {}),
    "mrf_weight": (0.0, 2.0, {}),
    "mrf_iters": (1, 5, {"mrf_weight": 2.0}),  # the MRF's own knobs act only with the MRF on
    "mrf_edge": (1.0, 300.0, {"mrf_weight": 2.0}),
    "propagation": (0.0, 0.01, {}),
    "local_hints": (False, True, {}),
}
#: model -> trained weights (only tinct-base's ship with the package)
MODELS = {
    "tinct-base": True,
    "tinct-small": False,
    "zhang2016": False,
    "larsson": False,
    "hwang-zhou-classification": False,
    "sun-shen-regression": False,
    "levin": False,
}


@pytest.fixture(scope="module")
def scene():
    """The bundled sample at a quarter size (a photograph: tinct-base trusts its own colour
    there) as float gray, and three hints in its true colours."""
    from skimage.transform import resize

    from tinct.data import load_sample

    rgb = resize(load_sample(gray=False), (75, 113), anti_aliasing=True)
    gray = (rgb @ np.array([0.299, 0.587, 0.114])).astype(np.float32)
    spots = ((20, 30), (50, 80), (60, 15))
    hints = [tinct.Hint(r, c, color=tuple(int(v * 255) for v in rgb[r, c])) for r, c in spots]
    return gray, hints


def _decoders(cfg) -> list[str | None]:
    """Automatic, and each other decoder the table treats differently (ab, no temperature)."""
    names = catalog.model_decoders(cfg)
    out: list[str | None] = [None]
    out += [d for d in ("ab", "mode") if d in names and d != names[0]]
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_an_inactive_knob_leaves_the_output_alone_and_an_active_one_changes_it(scene, name):
    gray, hints = scene
    record = get_record(name)
    torch.manual_seed(0)
    c = tinct.Colorizer(  # one thread: the same sums in the same order in every run
        name, device="cpu", pretrained=MODELS[name], cache_size=8, num_threads=1
    )
    fusion = catalog.fuses_hints(record)
    wrong = []
    for hinted in (False, True) if not record.config.hints_required else (True,):
        for decoder in _decoders(record.config):
            off = catalog.inactive_knobs(
                record.config, decoder=decoder, hinted=hinted, fusion=fusion
            )
            flips = dict(FLIPS)
            decoders = catalog.model_decoders(record.config)
            if len(decoders) > 1 and decoder is None:
                flips["decoder"] = (*decoders[:2], {})
            for knob, (a, b, extra) in flips.items():
                outs = []
                for value in (a, b):
                    options = {"decoder": decoder, **extra, knob: value}
                    outs.append(
                        c.colorize(
                            gray,
                            hints=hints if hinted else [],
                            options=tinct.ColorizeOptions(model=name, device="cpu", **options),
                        )
                    )
                change = float(np.abs(outs[0] - outs[1]).max())
                same = change <= 1e-6
                if same and knob not in off and not MODELS[name]:
                    # random weights: where the coherent decoder's distribution disagrees
                    # with the regression colour it keeps the latter, whatever the knobs
                    dec = catalog.effective_decoder(record.config, decoder, hinted)
                    same = dec != "coherent"
                if same != (knob in off):
                    wrong.append((hinted, decoder, knob, off.get(knob, "active"), same))
    assert not wrong, wrong


def test_local_hints_and_propagation_in_the_table():
    base = get_record("tinct-base")
    small = get_record("tinct-small")
    assert catalog.fuses_hints(base) and catalog.fuses_hints(get_record("tinct-he"))
    assert not catalog.fuses_hints(small) and not catalog.fuses_hints(get_record("levin"))
    fused = catalog.inactive_knobs(base.config, hinted=True, fusion=True)
    assert "local_hints" not in fused and "propagation" not in fused  # both act on tinct-base
    assert "local_hints" not in catalog.inactive_knobs(
        base.config, decoder="ab", hinted=True, fusion=True
    )
    levin = catalog.inactive_knobs(get_record("levin").config, hinted=True)
    assert "already is the hints' propagation" in levin["propagation"]
    plain = catalog.inactive_knobs(small.config, hinted=True)
    assert "hint-fusing" in plain["local_hints"] and "propagation" not in plain
    auto = catalog.inactive_knobs(base.config, fusion=True)
    assert "hints only" in auto["local_hints"] and "hints only" in auto["propagation"]
