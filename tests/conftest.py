"""Shared fixtures: device (``TINCT_TEST_DEVICE``, default cpu), float dtypes, the bridge."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Never read or write the user's own fine-tuned models: an empty user-model folder
# for the whole run (set before tinct.models registers user models at import).
os.environ["TINCT_USER_MODELS"] = tempfile.mkdtemp(prefix="tinct-test-user-models-")
atexit.register(shutil.rmtree, os.environ["TINCT_USER_MODELS"], True)

import pytest  # noqa: E402
import torch  # noqa: E402

from bridge_helpers import make_server  # noqa: E402


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("TINCT_TEST_DEVICE", "cpu"))


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random-weight ``tinct-small`` saved as a weights file (CLI and batch tests)."""
    import tinct
    from tinct.models.weights import save_weights

    model = tinct.load_model("tinct-small", pretrained=False)
    return str(save_weights(model, tmp_path_factory.mktemp("w") / "tinct-small-random.safetensors"))


# --------------------------------------------------------------------------- the bridge


@pytest.fixture
def cfgdir(tmp_path, monkeypatch):
    """A fresh TINCT_CONFIG_DIR, so bridge.json goes to a temporary folder."""
    monkeypatch.setenv("TINCT_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


@pytest.fixture
def served(cfgdir):
    """A running bridge server with a :class:`bridge_helpers.FakeBackend`: ``(server, backend)``."""
    server, backend = make_server(cfgdir)
    yield server, backend
    server.shutdown()


@pytest.fixture
def small_store(tmp_path, monkeypatch):
    """A user-model folder holding ``small0`` (tinct-small, random weights, seed 0)."""
    from tinct.models import load_model, user_store

    monkeypatch.setenv(user_store.USER_MODELS_ENV, str(tmp_path / "models"))
    user_store.refresh()
    torch.manual_seed(0)
    small = load_model("tinct-small", pretrained=False)
    user_store.save_user_model(small, "small0", {"recipe": "tinct-small", "base": "random"})
    yield tmp_path / "models"
    monkeypatch.undo()
    user_store.refresh()
