"""Fine-tuning on colour examples: example preparation, held-out split, the run, the job."""

import threading

import numpy as np
import pytest
from PIL import Image

import tinct
from tinct.cancel import Cancelled
from tinct.models import get_record, list_models, load_model, user_store
from tinct.training.colour_examples import prepare_examples
from tinct.training.finetuning import FineTuneJob, finetune


def _colour(seed, shape=(64, 64)):
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 216, 3)
    return np.clip(base + rng.integers(-30, 30, (*shape, 3)), 0, 255).astype(np.uint8)


FAST = {"base": "small0", "batch_size": 2, "crop": 32, "warmup": 1, "threads": 1}


def test_a_large_example_is_tiled_and_one_source_holds_out_its_last_pieces():
    big = _colour(0, (600, 530))
    before = big.copy()
    ex = prepare_examples([big], names=["slide"])
    assert ex.images.shape == (4, 256, 256, 3)  # 2 x 2 tiles at native resolution
    assert ex.held_out == [3] and ex.sources == ["slide"] * 4
    np.testing.assert_array_equal(ex.images[1], big[:256, 256:512])
    np.testing.assert_array_equal(big, before)  # the input is never modified
    assert "1 of 4 pieces of one source" in ex.description


def test_several_sources_are_held_out_by_source(tmp_path):
    for slide in ("a", "b", "c", "d"):
        for x in (0, 256):
            Image.fromarray(_colour(ord(slide) + x)).save(tmp_path / f"{slide}_x{x}_y0.png")
    ex = prepare_examples(folders=[tmp_path])
    held = {ex.sources[i] for i in ex.held_out}
    assert held == {"d"} and len(ex.held_out) == 2 and ex.n_train == 6
    layers = prepare_examples([_colour(i) for i in range(8)], names=list("aabbccdd"))
    assert [layers.sources[i] for i in layers.held_out] == ["d", "d"]
    (tmp_path / "e_x0_y0.png").write_bytes(b"truncated")  # one broken file is left out
    again = prepare_examples(folders=[tmp_path])
    assert len(again.sources) == 8 and "skipped 1 unreadable image" in again.description
    assert "e_x0_y0.png" in again.description


def test_floats_16_bit_and_rgba_examples_are_converted():
    rgb = _colour(1)
    as_float = rgb.astype(np.float32) / 255.0
    as_u16 = rgb.astype(np.uint16) * 257
    rgba = np.dstack((rgb, np.full(rgb.shape[:2], 7, np.uint8)))
    ex = prepare_examples([as_float, as_u16, rgba, rgb])
    for i in range(3):
        np.testing.assert_allclose(ex.images[i].astype(int), ex.images[3].astype(int), atol=1)


@pytest.mark.parametrize(
    ("examples", "match"),
    [
        ([np.zeros((64, 64))], "RGB"),
        ([np.zeros((8, 8, 3), np.uint8)], "too small"),
        ([np.full((64, 64, 3), np.nan)], "NaN"),
        ([np.zeros((64, 64, 3), bool)], "not an image type"),
        ([_colour(0)], "not enough"),
        ([], "no colour examples"),
        ([np.full((64, 64, 3), 128, np.uint8)] * 3, "gray"),
    ],
)
def test_bad_examples_get_a_clear_error(examples, match):
    with pytest.raises(ValueError, match=match):
        prepare_examples(examples)


def test_finetune_registers_a_user_model_with_its_scores(small_store):
    seen = []
    result = finetune(
        [_colour(i) for i in range(6)], name="Mine", steps=3, progress=seen.append, **FAST
    )
    um = result.model
    assert um.name == "mine" and um.path.parent == small_store and result.steps == 3
    assert um.base == "small0" and um.recipe == "tinct-small" and um.steps == 3
    assert result.base_score is not None and result.score >= result.base_score
    assert um.score == result.score and "held-out automatic PSNR" in um.summary()
    assert "mine" in [r.name for r in list_models()]
    assert get_record("mine").config.default_decoder == result.decoder
    phases = [p.phase for p in seen]
    assert phases[0] == "preparing" and phases[-1] == "done" and "training" in phases
    training = [p for p in seen if p.phase == "training"]
    assert training[0].step == 0 and training[0].score is not None  # the base is scored first
    assert max(p.step for p in training) == 3
    rgb = tinct.Colorizer("mine", device="cpu").colorize(np.full((48, 48), 0.4, np.float32))
    assert rgb.shape == (48, 48, 3)


def test_finetune_checks_name_and_budget_before_training(small_store):
    ex = [_colour(i) for i in range(4)]
    with pytest.raises(ValueError, match="built-in"):
        finetune(ex, name="tinct-base", steps=1, **FAST)
    with pytest.raises(ValueError, match="exists already"):
        finetune(ex, name="small0", steps=1, **FAST)
    with pytest.raises(ValueError, match="budget"):
        finetune(ex, name="new", minutes=0, steps=0, **FAST)
    with pytest.raises(ValueError, match="path separator"):
        finetune(ex, name="../new", steps=1, **FAST)


def test_cancel_before_the_first_step_registers_nothing(small_store):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        finetune([_colour(i) for i in range(4)], name="never", steps=5, cancel=cancel, **FAST)
    assert not user_store.is_user_model("never")


def test_cancel_while_a_folder_loads_stops_the_load(small_store, tmp_path, monkeypatch):
    from tinct.training import datasets

    for i in range(12):
        Image.fromarray(_colour(i)).save(tmp_path / f"tile{i:02d}.png")
    cancel, decoded = threading.Event(), []
    inner = datasets._load_rgb

    def load(path, size):
        decoded.append(path)
        if len(decoded) == 3:
            cancel.set()
        return inner(path, size)

    monkeypatch.setattr(datasets, "_load_rgb", load)
    told = []
    with pytest.raises(Cancelled, match="before the first step"):
        finetune(
            folders=[tmp_path], name="never", steps=5, cancel=cancel, progress=told.append, **FAST
        )
    assert len(decoded) == 3 and not user_store.is_user_model("never")
    assert [p.message for p in told] == [  # the Train widget's status line while a folder
        "preparing the examples",  # is read, and `tinct train`'s: at each tenth, not each file
        "reading images: 0 of 12",
        "reading images: 2 of 12",
    ]


@pytest.mark.parametrize(("at", "where"), [(1, "scoring the base"), (3, "matching the palette")])
def test_cancel_before_training_stops_after_its_batch(small_store, monkeypatch, at, where):
    """Scoring the base (2 batches here) and matching its palette (5) come before any step."""
    import tinct.models

    cancel, forwards = threading.Event(), []
    inner = tinct.models.load_model

    def load_model(*args, **kw):
        model = inner(*args, **kw)

        def hook(*_):
            forwards.append(1)
            if len(forwards) == at:  # Cancel pressed during this batch
                cancel.set()

        model.register_forward_hook(hook)
        return model

    monkeypatch.setattr(tinct.models, "load_model", load_model)
    examples = [_colour(i, (48, 48)) for i in range(48)]  # 12 held out, 36 to match on
    told = []
    with pytest.raises(Cancelled, match="before the first step"):
        finetune(examples, name="never", steps=5, cancel=cancel, progress=told.append, **FAST)
    assert len(forwards) == at, where  # not the rest of this pass, nor the next ones
    assert "scoring small0 on the held-out examples" in [p.message for p in told]
    assert not user_store.is_user_model("never")


def test_a_cancelled_job_keeps_the_best_weights_so_far(small_store):
    job = FineTuneJob([_colour(i) for i in range(6)], name="stopped", minutes=10, **FAST)
    job.start()
    import time

    deadline = time.monotonic() + 120
    while (job.progress is None or job.progress.step < 2) and time.monotonic() < deadline:
        assert not job.done, job.error
        time.sleep(0.05)
    job.cancel()
    result = job.wait(timeout=120)
    assert result.cancelled and 2 <= result.steps < 1000 and job.cancelled
    assert user_store.get_user_model("stopped").steps == result.steps
    assert load_model("stopped").record.name == "stopped"


def test_the_job_reports_an_error_instead_of_losing_it(small_store):
    job = FineTuneJob([np.zeros((64, 64))], name="bad", steps=1, **FAST).start()
    with pytest.raises(ValueError, match="RGB"):
        job.wait(timeout=60)
    assert job.done and isinstance(job.error, ValueError)


def test_the_package_exports_the_function_and_the_job():
    import tinct.training.finetuning  # importing the module keeps tinct.finetune the function

    assert tinct.finetune is finetune and tinct.FineTuneJob is FineTuneJob
