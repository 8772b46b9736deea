"""The one bounded colorizer cache (tinct.engine.shared)."""

import numpy as np
import pytest

import tinct
from tinct.engine import shared
from tinct.engine.colorizer import Colorizer


@pytest.fixture(autouse=True)
def empty_cache():
    shared.clear()
    yield
    shared.clear()


def test_get_or_make_makes_once_and_is_bounded():
    made = []

    def maker(i):
        return lambda: made.append(i) or f"colorizer {i}"

    assert shared.get_or_make(("t", 0), maker(0), model="a") == "colorizer 0"
    assert shared.get_or_make(("t", 0), maker(0), model="a") == "colorizer 0"
    assert made == [0]
    for i in range(1, shared.CACHE_SIZE + 2):
        shared.get_or_make(("t", i), maker(i), model=f"m{i}")
    assert len(shared.entries()) == shared.CACHE_SIZE
    assert not shared.contains(("t", 0))  # the least recently used went first
    assert shared.contains(("t", shared.CACHE_SIZE + 1))


def test_clear_by_name_and_by_predicate():
    shared.get_or_make(("t", 1), lambda: 1, model="Keep")
    shared.get_or_make(("t", 2), lambda: 2, model="drop")
    shared.get_or_make(("t", 3), lambda: 3, model="drop-too")
    shared.clear("DROP")
    assert shared.entries() == ["keep", "drop-too"]
    shared.clear(lambda name: name.startswith("drop"))
    assert shared.entries() == ["keep"]
    shared.clear()
    assert shared.entries() == []


def test_get_colorizer_shares_one_colorizer_per_key():
    a = shared.get_colorizer("tinct-base", "cpu", pretrained=False)
    b = shared.get_colorizer("TINCT-BASE", "cpu", pretrained=False)
    c = shared.get_colorizer("tinct-base", "cpu", pretrained=False, cache_size=0)
    assert isinstance(a, Colorizer)
    assert a is b and a is not c
    assert shared.entries() == ["tinct-base", "tinct-base"]


def test_one_shot_colorize_uses_the_cache():
    gray = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    out = tinct.colorize(gray, device="cpu")
    assert out.shape == (32, 32, 3)
    assert shared.entries() == ["tinct-base"]
    tinct.colorize(gray, device="cpu")
    assert shared.entries() == ["tinct-base"]
