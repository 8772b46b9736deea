"""Shared fixtures: device (``TINCT_TEST_DEVICE``, default cpu) and float dtypes."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("TINCT_TEST_DEVICE", "cpu"))


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param
