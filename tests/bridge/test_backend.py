"""Backend tests: jobs to pixels without any socket (tinct.bridge.backend)."""

import numpy as np
import pytest

from tinct.bridge import wire as P
from tinct.bridge.backend import ColorizeJob, EngineBackend, PointHint, RequestError
from tinct.engine.hints import Hint
from tinct.engine.options import ColorizeOptions


class Recorder:
    """A Colorizer look-alike that records its calls and returns a gray RGB image."""

    def __init__(self, name="tinct-base"):
        self.model_name = name
        self.calls = []

    def colorize(self, image, *, hints, reference, options, progress, cancel, rgb):
        self.calls.append(
            {"hints": list(hints), "temperature": options.temperature, "decoder": options.decoder,
             "rgb": rgb, "cancel": cancel, "progress": progress}
        )  # fmt: skip
        gray = image if image.ndim == 2 else image[..., 0]
        return np.dstack([gray] * 3)


def test_point_hints_and_hint_layer_become_engine_hints():
    rec = Recorder()
    backend = EngineBackend(colorizer=rec)
    layer = np.zeros((8, 10, 4), np.uint8)
    layer[2, 3] = (255, 0, 0, 255)  # one opaque red pixel
    job = ColorizeJob(
        image=np.full((8, 10), 100, np.uint8),
        hints=(PointHint(1, 2, (0, 255, 0), size=3),),
        hint_layer=layer,
        hint_size=5,
        options=ColorizeOptions(temperature=0.4),
    )
    out = backend.colorize(job, lambda f, m: None)
    assert out.shape == (8, 10, 3)
    (call,) = rec.calls
    hints = call["hints"]
    assert all(isinstance(h, Hint) for h in hints) and len(hints) == 2
    assert (hints[0].row, hints[0].col, hints[0].size) == (1, 2, 3)
    assert hints[1].size == 5  # the hint layer's size applies to its hints
    assert call["temperature"] == 0.4 and call["rgb"] is False
    assert call["cancel"] is job.cancel and callable(call["progress"])


def test_single_colorizer_refuses_other_models_and_lists_only_its_own():
    backend = EngineBackend(colorizer=Recorder("tinct-base"))
    assert [m["name"] for m in backend.models()] == ["tinct-base"]
    job = ColorizeJob(image=np.zeros((4, 4), np.uint8), model="zhang-eccv16")
    with pytest.raises(RequestError) as err:
        backend.colorize(job, lambda f, m: None)
    assert err.value.code == P.E_UNKNOWN_MODEL


def test_factory_makes_one_colorizer_per_model_and_caches_it():
    made = []

    def factory(name):
        made.append(name)
        return Recorder(name)

    backend = EngineBackend(colorizer_factory=factory, model="tinct-base")
    for name in (None, "zhang-eccv16", "zhang-eccv16", "tinct-base"):
        backend.colorize(ColorizeJob(image=np.zeros((4, 4), np.uint8), model=name), print)
    assert made == ["tinct-base", "zhang-eccv16"]
    names = [m["name"] for m in backend.models()]
    assert names[0] == "tinct-base" and "zhang-eccv16" in names  # from the registry


def test_a_user_model_trained_while_serving_is_listed(tmp_path, monkeypatch):
    import torch

    from tinct.models import load_model, user_store

    monkeypatch.setenv(user_store.USER_MODELS_ENV, str(tmp_path / "models"))
    user_store.refresh()
    try:
        backend = EngineBackend(colorizer_factory=lambda name: Recorder(name), model="tinct-base")
        assert "late-he" not in [m["name"] for m in backend.models()]
        torch.manual_seed(0)
        small = load_model("tinct-small", pretrained=False)
        user_store.save_user_model(small, "late-he", {"recipe": "tinct-small", "score": 21.5})
        listed = {m["name"]: m for m in backend.models()}
        assert listed["late-he"]["weights"] == "user" and listed["late-he"]["available"]
        assert "21.50 dB" in listed["late-he"]["description"]
        assert backend.models()[0]["name"] == "tinct-base"  # the default stays first
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
    backend = EngineBackend(colorizer=Recorder(), colorizer_factory=None, model="tinct-base")
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
