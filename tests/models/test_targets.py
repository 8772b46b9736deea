"""The model-target abstraction (tinct.models.targets): one place knows what a head predicts."""

import math
import re
from pathlib import Path

import pytest
import torch

from tinct import bins
from tinct import decode as D
from tinct.models import list_models
from tinct.models.targets import (
    CHANNEL,
    GAMUT313,
    GRID529,
    HUE_CHROMA,
    REGRESSION,
    TARGETS,
    get_target,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "tinct"
#: Where target names may appear: the abstraction, the registry and its entries (model families).
ALLOWED = {"models/targets.py", "models/registry.py"} | {
    f"models/{n}.py"
    for n in ("zhang", "compact", "larsson", "hwang_zhou", "melas_kyriazi", "sun_shen",
              "classical", "tinct_base")
}  # fmt: skip


def test_every_registered_model_has_a_known_target():
    for record in list_models():
        target = get_target(record.config.target)
        assert target.has_logits == ("logits" in record.config.heads)
        target.check(
            record.config.num_bins, record.config.bins_per_channel, record.config.channel_range
        )


def test_unknown_target_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="gamut313"):
        get_target("gamut314")
    assert get_target(GAMUT313) is GAMUT313
    assert set(TARGETS) == {"regression", "gamut313", "grid529", "channel", "hue_chroma"}


def test_check_rejects_bins_that_do_not_fit():
    with pytest.raises(ValueError, match="313"):
        GAMUT313.check(312, None, None)
    with pytest.raises(ValueError, match="bins_per_channel"):
        CHANNEL.check(32, None, None)
    with pytest.raises(ValueError, match="2 \\* bins_per_channel"):
        HUE_CHROMA.check(30, 16, (0.0, 100.0))
    CHANNEL.check(32, 16, (-100.0, 100.0))


def test_centres_per_target():
    assert GAMUT313.centres().shape == (313, 2)
    assert GRID529.centres().shape == (529, 2)
    ch = CHANNEL.centres(16, (-100.0, 100.0))
    assert ch.shape == (2, 16) and torch.equal(ch[0], ch[1])
    hc = HUE_CHROMA.centres(32, (0.0, 100.0))
    assert hc.shape == (2, 32) and float(hc[0].max()) < 2 * math.pi
    assert REGRESSION.centres() is None


def test_log_probs_normalise_per_distribution():
    logits = torch.randn(1, 32, 3, 4)
    joint = GRID529.log_probs(torch.randn(1, 529, 3, 4))
    torch.testing.assert_close(joint.exp().sum(1), torch.ones(1, 3, 4))
    per = CHANNEL.log_probs(logits).exp().view(1, 2, 16, 3, 4).sum(2)
    torch.testing.assert_close(per, torch.ones(1, 2, 3, 4))


def test_decode_is_the_decoder_of_the_target():
    gen = torch.Generator().manual_seed(0)
    c313 = GAMUT313.centres()
    logp = GAMUT313.log_probs(torch.randn(1, 313, 2, 3, generator=gen))
    torch.testing.assert_close(
        GAMUT313.decode(logp, c313, "mean", 1.0), D.decode(logp, c313, "mean", temperature=1.0)
    )
    cc = CHANNEL.centres(16, (-100.0, 100.0))
    lc = CHANNEL.log_probs(torch.randn(1, 32, 2, 3, generator=gen))
    torch.testing.assert_close(
        CHANNEL.decode(lc, cc, "mean", 1.0), D.decode_channels(lc, cc, "mean", temperature=1.0)
    )
    hc = HUE_CHROMA.centres(32, (0.0, 100.0))
    lh = HUE_CHROMA.log_probs(torch.randn(1, 64, 2, 3, generator=gen))
    torch.testing.assert_close(
        HUE_CHROMA.decode(lh, hc, "larsson", 1.0),
        D.decode_hue_chroma(lh, hc[0], hc[1], method="larsson", temperature=1.0),
    )


def test_mrf_applies_where_it_is_defined():
    assert GAMUT313.mrf and GRID529.mrf and CHANNEL.mrf
    assert not HUE_CHROMA.mrf and not REGRESSION.mrf
    with pytest.raises(ValueError, match="hue/chroma"):
        HUE_CHROMA.smooth(torch.zeros(1, 64, 2, 2), torch.zeros(2, 32), torch.zeros(1, 1, 2, 2))


def test_samples_land_on_the_distribution():
    gen = torch.Generator().manual_seed(0)
    c = GAMUT313.centres()
    p = torch.zeros(313)
    p[7] = 1.0
    s = GAMUT313.sample(p, c, 50, gen)
    assert s.shape == (50, 2) and (s - c[7]).abs().max() <= 5.0
    hc = HUE_CHROMA.centres(32, (0.0, 100.0))
    p = torch.zeros(64)
    p[0], p[32 + 10] = 1.0, 1.0  # hue bin 0, chroma bin 10
    s = HUE_CHROMA.sample(p, hc, 20, gen)
    torch.testing.assert_close(s.norm(dim=1), hc[1][10].expand(20))


def test_reference_histograms_sum_to_one_per_channel():
    a, b = torch.randn(500) * 30, torch.randn(500) * 30
    h = CHANNEL.histograms(a, b, CHANNEL.centres(16, (-100.0, 100.0)))
    torch.testing.assert_close(h.view(2, 16).sum(1), torch.ones(2))
    assert HUE_CHROMA.histogram_space("luv") == "lab" and CHANNEL.histogram_space("luv") == "luv"


def test_gamut_target_uses_the_313_bins_of_the_core():
    torch.testing.assert_close(GAMUT313.centres(), bins.gamut_bins())


def test_the_target_switch_lives_in_one_place():
    """Target names appear only in the abstraction, the registry and the registry entries.

    ``"regression"`` is also a decoder's name (an alias of ``"ab"``): it counts only next
    to the word ``target``.
    """
    names = re.compile(
        r"[\"'](gamut313|grid529|channel|hue_chroma)[\"']|target.*[\"']regression[\"']"
    )
    found = [
        f"{path.relative_to(SRC)}:{i}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if str(path.relative_to(SRC)) not in ALLOWED
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if names.search(line)
    ]
    assert not found, "\n".join(found)
