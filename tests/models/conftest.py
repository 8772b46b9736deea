"""Fixtures shared by the model tests (test_models, test_zhang)."""

import pytest

from tinct.models import load_model

#: The two full-size Zhang et al. networks (32-34 M parameters each).
BIG = ("zhang-eccv16", "zhang-siggraph17")


@pytest.fixture(scope="session")
def big_models():
    """ECCV16 and SIGGRAPH17 built once for the whole run (random weights)."""
    return {name: load_model(name, pretrained=False) for name in BIG}
