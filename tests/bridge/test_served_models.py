"""Served models without any socket (tinct.bridge.served_models): listing and weights.

The model list follows the user models while the server runs; a model whose
weights cannot be downloaded (offline) is a one-line refusal that says how to
install them.
"""

import numpy as np
import pytest

from tinct.bridge import wire as P
from tinct.bridge.backend import ColorizeJob, EngineBackend, RequestError
from tinct.bridge.served_models import ModelUnavailable, ServedModels


class Stub:
    """A colorizer stand-in that is never asked to colorize here."""

    def __init__(self, name="tinct-base"):
        self.model_name = name


def test_a_user_model_trained_while_serving_is_listed(tmp_path, monkeypatch):
    import torch

    from tinct.models import load_model, user_store

    monkeypatch.setenv(user_store.USER_MODELS_ENV, str(tmp_path / "models"))
    user_store.refresh()
    try:
        served = ServedModels(colorizer_factory=lambda name: Stub(name), model="tinct-base")
        assert "late-he" not in [m["name"] for m in served.models()]
        torch.manual_seed(0)
        small = load_model("tinct-small", pretrained=False)
        user_store.save_user_model(small, "late-he", {"recipe": "tinct-small", "score": 21.5})
        listed = {m["name"]: m for m in served.models()}
        assert listed["late-he"]["weights"] == "user" and listed["late-he"]["available"]
        assert "21.50 dB" in listed["late-he"]["description"]
        assert served.models()[0]["name"] == "tinct-base"  # the default stays first
    finally:
        monkeypatch.undo()
        user_store.refresh()


def test_a_model_whose_weights_cannot_be_downloaded_is_a_clean_refusal(tmp_path, monkeypatch):
    """Offline, a downloadable model is ``unknown_model`` naming it and how to install it;
    the download is tried in ``prepare`` (which the server calls without the engine lock)."""
    from tinct.models import weights

    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "empty-cache"))
    tried = []

    def offline(record_weights, *, progress=True):
        tried.append(record_weights.file_name)
        raise weights.WeightsUnavailableError(
            f"could not download {record_weights.url}: no network. To install it by hand, "
            "fetch that URL and save it as ..."
        )

    monkeypatch.setattr(weights, "fetch", offline)
    backend = EngineBackend(colorizer=Stub(), colorizer_factory=None, model="tinct-base")
    backend._single = False  # serve registry models besides the loaded one
    zhang = next(m for m in backend.models() if m["name"] == "zhang-eccv16")
    assert zhang["status"] == "downloadable" and zhang["ready"] is False
    assert next(m for m in backend.models() if m["name"] == "tinct-base")["ready"] is True
    job = ColorizeJob(image=np.zeros((4, 4), np.uint8), model="zhang-eccv16")
    with pytest.raises(RequestError) as info:
        backend.prepare(job)
    assert tried
    assert info.value.code == P.E_UNKNOWN_MODEL
    message = info.value.message
    assert "'zhang-eccv16'" in message and "not installed" in message
    assert "install it by hand" in message and "\n" not in message
    with pytest.raises(ModelUnavailable) as unavailable:  # what EngineBackend.prepare turns
        backend.ready_weights("zhang-eccv16")  # into unknown_model
    assert str(unavailable.value) == message
