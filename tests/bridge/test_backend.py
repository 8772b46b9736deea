"""Backend tests: jobs to pixels without any socket (tinct.bridge.backend).

Listing the models and fetching their weights is test_served_models.py.
"""

import numpy as np
import pytest

from tinct.bridge import wire as P
from tinct.bridge.backend import ColorizeJob, EngineBackend, PointHint, RequestError
from tinct.bridge.served_models import ModelUnavailable
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


def test_a_model_that_cannot_run_is_refused_as_unknown_model(monkeypatch):
    backend = EngineBackend(colorizer_factory=lambda name: Recorder(name), model="tinct-base")

    def unavailable(requested):
        raise ModelUnavailable(f"model {requested!r} cannot run: no weights")

    monkeypatch.setattr(backend, "ready_weights", unavailable)
    with pytest.raises(RequestError) as info:
        backend.prepare(ColorizeJob(image=np.zeros((4, 4), np.uint8), model="zhang-eccv16"))
    assert info.value.code == P.E_UNKNOWN_MODEL
    assert info.value.message == "model 'zhang-eccv16' cannot run: no weights"


def test_the_faint_ring_an_erased_dot_leaves_is_no_hint():
    # GIMP's eraser over a painted dot leaves a ring of alpha up to 63 (seen in GIMP
    # 3.0.4 with each '2. Hardness' brush at 20 px): it was a hint of the erased colour
    rec = Recorder()
    backend = EngineBackend(colorizer=rec)
    layer = np.zeros((20, 20, 4), np.uint8)
    layer[2:5, 2:5] = (0, 0, 255, 255)  # a dot the user kept
    layer[10:16, 10:16] = (255, 0, 0, 63)  # what the eraser left of a red one
    layer[11:15, 11:15] = 0
    job = ColorizeJob(image=np.full((20, 20), 100, np.uint8), hint_layer=layer)
    backend.colorize(job, lambda f, m: None)
    (hint,) = rec.calls[0]["hints"]
    assert (hint.row, hint.col, hint.color) == (3.0, 3.0, (0.0, 0.0, 1.0))
    faint = np.zeros((20, 20, 4), np.uint8)  # dots painted at 20% opacity still count
    faint[2:5, 2:5] = (0, 255, 0, 51)
    faint[2, 2, 3] = 20  # their soft edge
    backend.colorize(ColorizeJob(image=job.image, hint_layer=faint), lambda f, m: None)
    (hint,) = rec.calls[1]["hints"]
    assert hint.color == (0.0, 1.0, 0.0) and hint.size == pytest.approx(8**0.5)
