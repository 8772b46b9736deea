"""Colorizers shared by the engine tests: tiny fake models and tinct-small with random weights.

Module-scoped: each test file gets its own instances, so one file's cache state never leaks
into another's.
"""

import pytest

from engine_helpers import JOINT, REGRESSION, TinyModel
from tinct.engine.colorizer import Colorizer


@pytest.fixture(scope="module")
def tiny():
    """A joint-distribution (313-bin) fake model."""
    return Colorizer(TinyModel(JOINT), device="cpu")


@pytest.fixture(scope="module")
def tiny_reg():
    """A regression-only fake model."""
    return Colorizer(TinyModel(REGRESSION), device="cpu")


@pytest.fixture(scope="module")
def small():
    """tinct-small with random weights (hint- and global-hint-aware architecture)."""
    return Colorizer("tinct-small", device="cpu", pretrained=False)
