"""The widget's job bodies (tinct.napari_plugin.jobs) with a fake colorizer: no widget, no Qt.

The runner that runs them is tested in ``test_job_runner.py``.
"""

import threading

import numpy as np
import pytest

from tinct.engine.options import ColorizeOptions
from tinct.napari_plugin import jobs, logic


class FakeColorizer:
    """Gray → RGB copy; records its calls."""

    def __init__(self):
        self.options = ColorizeOptions()
        self.calls = []

    def colorize(self, image, hints=(), reference=None, rgb=None, cancel=None, **kw):
        self.calls.append({"shape": image.shape, "hints": list(hints), "cancel": cancel, **kw})
        return np.repeat(image[..., None], 3, axis=-1)

    def suggest_colors(self, image, row, col, k=9, **kw):
        self.suggest_args = (image.shape, row, col, k, kw)
        return np.zeros((k, 3), np.uint8)


def make_job(shape=(2, 8, 10), hints=None, **kw):
    data = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    geometry = logic.plane_geometry(shape, rgb=False)
    return jobs.Job(
        source=None,
        data=data,
        geometry=geometry,
        planes=list(logic.iter_plane_indices(geometry.leading)),
        hints=hints or {},
        hint_size=0,
        reference=None,
        model="fake",
        device="cpu",
        **kw,
    )


def two_hints_on_plane_1():
    coords = np.array([[1.0, 2.0, 3.0], [1.0, 5.0, 6.0]])
    colors = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    return logic.group_hints_by_plane(coords, colors, logic.plane_geometry((2, 8, 10), False))


def run_to_end(gen):
    items = []
    try:
        while True:
            items.append(next(gen))
    except StopIteration as stop:
        return items, stop.value


def test_a_temporal_job_colorizes_the_stack_as_one_sequence_with_carried_hints():
    from tinct.engine.carry import HintStop
    from tinct.engine.hints import Hint

    fake = FakeColorizer()
    opts = ColorizeOptions(temperature=0.5, temporal=True)
    job = make_job(hints=two_hints_on_plane_1(), options=opts, stops=frozenset({1}))
    assert job.temporal
    items, result = run_to_end(jobs.colorize_job(job, lambda m, d: fake, threading.Event()))
    (call,) = fake.calls  # one call for the whole (2, 8, 10) stack
    assert call["shape"] == (2, 8, 10) and call["axis"] == 0 and call["options"] is opts
    assert call["temporal"] is True
    (hint, stop) = jobs.temporal_hints(job)[1]  # both points lie on plane 1; point 1 stops
    assert isinstance(hint, Hint) and (hint.row, hint.col) == (2.0, 3.0)
    assert stop == HintStop(5.0, 6.0, None)
    assert [i[2] for i in items if i[0] == "plane"] == [(0,), (1,)]
    assert result == ("done", job)
    # several leading axes: no single sequence axis, plane by plane as without the option
    flat = make_job(shape=(2, 2, 8, 10), options=opts)
    assert not flat.temporal


def test_colorize_job_yields_each_plane_with_its_hints():
    fake = FakeColorizer()
    cancel = threading.Event()
    job = make_job(hints=two_hints_on_plane_1(), options=ColorizeOptions(temperature=0.5))
    items, result = run_to_end(jobs.colorize_job(job, lambda m, d: fake, cancel))
    assert [i[0] for i in items] == ["status", "status", "plane", "status", "plane"]
    assert items[0] == ("status", "loading model…") and items[1][1] == "colorizing 1/2…"
    _, same_job, idx, rgb, done, total = items[-1]
    assert same_job is job and idx == (1,) and (done, total) == (2, 2)
    assert rgb.shape == (8, 10, 3)
    assert [len(c["hints"]) for c in fake.calls] == [0, 2]
    assert fake.calls[1]["hints"][0].color == pytest.approx((1.0, 0.0, 0.0))
    assert all(c["cancel"] is cancel and c["options"].temperature == 0.5 for c in fake.calls)
    assert result == ("done", job)


def test_colorize_job_says_when_it_downloads():
    items, _ = run_to_end(
        jobs.colorize_job(make_job(download=True), lambda m, d: FakeColorizer(), threading.Event())
    )
    assert items[0] == ("status", "downloading weights…")


def test_suggest_request_leaves_out_the_selected_point():
    job, row, col = jobs.suggest_request(make_job(hints=two_hints_on_plane_1()), 1)
    assert (row, col) == (5.0, 6.0) and job.planes == [(1,)]
    (ph,) = job.hints.values()
    assert ph.index.tolist() == [0]
    assert jobs.suggest_request(make_job(hints=two_hints_on_plane_1()), 7) is None


def test_suggest_request_looks_for_the_point_on_the_shown_plane_only():
    geometry = logic.plane_geometry((3, 8, 10), False)
    every = logic.group_hints_by_plane(
        np.array([[np.nan, 2.0, 3.0], [np.nan, 5.0, 6.0]]), np.eye(3)[:2], geometry
    )  # a 2-D hints layer over the stack: its points lie on every plane
    shown = make_job((3, 8, 10), every)
    shown.planes = [(2,)]
    job, row, col = jobs.suggest_request(shown, 1)
    assert job.planes == [(2,)] and list(job.hints) == [(2,)] and (row, col) == (5.0, 6.0)
    elsewhere = make_job(hints=two_hints_on_plane_1())  # both points on plane 1
    elsewhere.planes = [(0,)]
    assert jobs.suggest_request(elsewhere, 1) is None


def test_suggest_job_asks_the_engine_at_the_point():
    fake = FakeColorizer()
    request = jobs.suggest_request(make_job(hints=two_hints_on_plane_1()), 1)
    items, result = run_to_end(jobs.suggest_job(request, lambda m, d: fake, k=4))
    assert items == [("status", "suggesting colours…")]
    shape, row, col, k, kw = fake.suggest_args
    assert (shape, row, col, k) == ((8, 10), 5, 6, 4)
    assert len(kw["hints"]) == 1 and kw["rgb"] is False
    assert result[0] == "suggest" and result[1].shape == (4, 3)


def test_cancel_stops_before_the_next_plane():
    import threading

    from tinct.cancel import Cancelled

    fake = FakeColorizer()
    cancel = threading.Event()
    job = make_job(shape=(12, 8, 10))
    body = jobs.colorize_job(job, lambda m, d: fake, cancel)
    done = 0
    with pytest.raises(Cancelled):
        for item in body:
            if item[0] == "plane":
                done += 1
                if done == 3:
                    cancel.set()  # Cancel pressed at 3/12
    assert done == 3 and len(fake.calls) == 3


def test_engine_warnings_are_yielded_once():
    import warnings

    class Warns(FakeColorizer):
        def colorize(self, image, **kw):
            warnings.warn("the input maps to nearly black", UserWarning, stacklevel=1)
            return super().colorize(image, **kw)

    items = list(jobs.colorize_job(make_job((8, 10)), lambda m, d: Warns(), threading.Event()))
    assert [i[1] for i in items if i[0] == "warning"] == ["the input maps to nearly black"]
    items = list(jobs.colorize_job(make_job((4, 8, 10)), lambda m, d: Warns(), threading.Event()))
    assert [i[1] for i in items if i[0] == "warning"] == [  # not once per plane
        "plane 0 of 4: the input maps to nearly black",
        "planes 0, 1, 2, 3 of 4: the input maps to nearly black",
    ]


def test_a_stack_runs_warnings_name_their_planes():
    """A blank plane in a whole-stack run: the note says which plane, and which planes."""
    import warnings

    class WarnsOnBlank(FakeColorizer):
        def colorize(self, image, **kw):
            if not image.any():
                warnings.warn("the input is nearly constant", UserWarning, stacklevel=1)
            return super().colorize(image, **kw)

    job = make_job(shape=(5, 8, 10))
    job.data[1] = 0
    job.data[3] = 0
    items = list(jobs.colorize_job(job, lambda m, d: WarnsOnBlank(), threading.Event()))
    assert [i[1] for i in items if i[0] == "warning"] == [
        "plane 1 of 5: the input is nearly constant",  # at once, as plane 1 is done
        "planes 1, 3 of 5: the input is nearly constant",  # once more at the end: all of them
    ]


def test_a_warnings_advice_names_the_normalisation_box():
    """The engine's advice, in napari: the box and its choice, not the CLI's flag."""
    import warnings

    import torch

    from tinct.engine.contrast import contrast_notes

    (note,) = contrast_notes(torch.full((1, 1, 8, 8), 0.5), "dtype")

    class Warns(FakeColorizer):
        def colorize(self, image, **kw):
            warnings.warn(note, UserWarning, stacklevel=1)
            return super().colorize(image, **kw)

    items = list(jobs.colorize_job(make_job((8, 10)), lambda m, d: Warns(), threading.Event()))
    (told,) = [i[1] for i in items if i[0] == "warning"]
    assert told.endswith("; if the data varies more, try normalisation 'percentiles 0.5-99.5'")
    assert told.startswith("the input is nearly constant after normalisation")
    labels = [label for label, value in logic.NORMALIZATIONS]
    assert "percentiles 0.5-99.5" in labels  # the choice it names is in the box


def test_a_plane_without_a_finite_pixel_is_left_black_and_the_stack_goes_on():
    """An all-NaN channel of a cube failed the whole run there, with no word of which plane."""
    fake = FakeColorizer()
    job = make_job(shape=(4, 8, 10))
    job.data = job.data.astype(np.float32)
    job.data[1] = np.nan
    job.data[3] = np.inf
    items, result = run_to_end(jobs.colorize_job(job, lambda m, d: fake, threading.Event()))
    assert result == ("done", job) and len(fake.calls) == 2  # planes 0 and 2
    planes = {item[2]: item[3] for item in items if item[0] == "plane"}
    assert sorted(planes) == [(0,), (1,), (2,), (3,)]
    assert not planes[(1,)].any() and planes[(1,)].shape == (8, 10, 3)
    assert [i[1] for i in items if i[0] == "warning"] == [
        f"plane 1 of 4: {jobs.BLANK_PLANE}",
        f"planes 1, 3 of 4: {jobs.BLANK_PLANE}",
    ]
    image = make_job(shape=(8, 10))  # one image without a pixel: the engine's error stands
    image.data = np.full((8, 10), np.nan, np.float32)
    list(jobs.colorize_job(image, lambda m, d: fake, threading.Event()))
    assert len(fake.calls) == 3
