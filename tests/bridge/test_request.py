"""The colorize request without sockets (tinct.bridge.request): frames to jobs.

The engine's output turned into result pixels is test_result.py.
"""

import numpy as np
import pytest

from tinct.bridge import wire as P
from tinct.bridge.backend import RequestError
from tinct.bridge.request import parse_colorize


class Models:
    """A backend stand-in that only lists models and counts how often it was asked."""

    default_model = "fake"

    def __init__(self, names=("fake", "other")):
        self.names = names
        self.asked = 0

    def models(self):
        self.asked += 1
        return [{"name": n} for n in self.names]


def frame(header, sections=()):
    """A received frame, encoded and decoded as on the wire."""
    base = {"type": "colorize", "width": 4, "height": 3, "format": "gray8"}
    return P.decode_frame(P.encode_frame({**base, **header}, list(sections)))


def parse(header, sections=(), max_pixels=10_000, backend=None):
    return parse_colorize(
        frame(header, sections), max_pixels=max_pixels, backend=backend or Models()
    )


def test_gray8_request_with_all_fields():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    job = parse(
        {
            "id": "r1",
            "model": "other",
            "temperature": 0.5,
            "decoder": "mode",
            "mrf_weight": 2,
            "mrf_iters": 3,
            "tile": 64,
            "hint_size": 5,
            "hints": [{"row": 2, "col": 3, "r": 255, "g": 0, "b": 9, "size": 4}],
        },
        [("image", img.tobytes())],
    )
    np.testing.assert_array_equal(job.image, img)
    assert job.alpha is None and job.result_format == "rgb8" and job.request_id == "r1"
    assert (job.model, job.temperature, job.decoder) == ("other", 0.5, "mode")
    assert (job.mrf_weight, job.mrf_iters, job.tile, job.hint_size) == (2.0, 3, 64, 5)
    (hint,) = job.hints
    assert (hint.row, hint.col, hint.color, hint.size) == (2, 3, (255, 0, 9), 4)


def test_defaults_and_a_fresh_request_id():
    backend = Models()
    job = parse({}, [("image", bytes(12))], backend=backend)
    assert job.model is None and job.temperature is None and job.decoder is None
    assert job.mrf_weight == 0.0 and job.mrf_iters is None and job.hints == ()
    assert len(job.request_id) == 16
    assert backend.asked == 0  # the models are listed only to check a named model


def test_rgba16_splits_alpha_and_answers_rgba8():
    px = np.full((3, 4, 4), 1000, "<u2")
    job = parse({"format": "rgba16"}, [("image", px.tobytes())])
    assert job.image.shape == (3, 4, 3) and job.image.dtype == np.uint16
    assert job.alpha.shape == (3, 4) and job.result_format == "rgba8"


def test_hint_layer_and_reference_sections():
    layer = np.zeros((3, 4, 4), np.uint8)
    ref = np.ones((2, 5, 4), np.uint8)
    job = parse(
        {},
        [
            ("image", bytes(12)),
            ("hint_layer", layer.tobytes(), {"width": 4, "height": 3, "format": "rgba8"}),
            ("reference", ref.tobytes(), {"width": 5, "height": 2, "format": "rgba8"}),
        ],
    )
    assert job.hint_layer.shape == (3, 4, 4)
    assert job.reference.shape == (2, 5, 3)  # alpha dropped


@pytest.mark.parametrize(
    ("header", "sections", "code", "words"),
    [
        ({"width": 200}, [("image", bytes(600))], "too_large", "more than this server's limit"),
        ({"format": "cmyk8"}, [("image", bytes(12))], "bad_request", "unknown pixel format"),
        ({}, [], "bad_request", "missing payload section 'image'"),
        ({}, [("image", bytes(11))], "bad_request", "needs 12"),
        ({"model": "nope"}, [("image", bytes(12))], "unknown_model", "available: fake, other"),
        ({"model": 3}, [("image", bytes(12))], "bad_request", '"model" must be a string'),
        ({"result_format": "rgb32"}, [("image", bytes(12))], "bad_request", "result_format"),
        ({"temperature": True}, [("image", bytes(12))], "bad_request", '"temperature"'),
        ({"hints": "x"}, [("image", bytes(12))], "bad_request", '"hints" must be a list'),
        (
            {"hints": [{"row": 3, "col": 0, "r": 0, "g": 0, "b": 0}]},
            [("image", bytes(12))],
            "bad_request",
            'hint 0: "row" must be an integer in [0, 2]',
        ),
        (
            {},
            [("image", bytes(12)), ("hint_layer", bytes(48), {"width": 4, "height": 2})],
            "bad_request",
            "the hint layer must have the image's size",
        ),
    ],
)
def test_refusals(header, sections, code, words):
    with pytest.raises(RequestError) as info:
        parse(header, sections, max_pixels=100)
    assert info.value.code == code and words in info.value.message


def test_cost_limits_name_the_limit():
    hint = {"row": 0, "col": 0, "r": 1, "g": 2, "b": 3}
    with pytest.raises(RequestError) as info:
        parse_colorize(frame({"mrf_iters": 101}, [("image", bytes(12))]), max_pixels=100,
                       backend=Models(), max_mrf_iters=100)  # fmt: skip
    assert info.value.code == "too_large" and "max_mrf_iters" in info.value.message
    assert "100" in info.value.message
    with pytest.raises(RequestError) as info:
        parse_colorize(frame({"hints": [hint] * 3}, [("image", bytes(12))]), max_pixels=100,
                       backend=Models(), max_hints=2)  # fmt: skip
    assert info.value.code == "too_large" and "max_hints" in info.value.message
    # hint-layer blobs count too: a checkerboard of isolated opaque pixels is 4 blobs
    layer = np.zeros((3, 4, 4), np.uint8)
    layer[::2, ::2, 3] = 255
    sections = [
        ("image", bytes(12)),
        ("hint_layer", layer.tobytes(), {"width": 4, "height": 3, "format": "rgba8"}),
    ]
    with pytest.raises(RequestError) as info:
        parse_colorize(frame({"hints": [hint]}, sections), max_pixels=100, backend=Models(),
                       max_hints=4)  # fmt: skip
    assert "1 hints and 4 hint-layer blobs" in info.value.message
    job = parse_colorize(frame({}, sections), max_pixels=100, backend=Models(), max_hints=4)
    assert job.hint_layer is not None
    with pytest.raises(RequestError) as info:
        parse({}, [("image", bytes(12)),
               ("reference", bytes(400), {"width": 10, "height": 10, "format": "gray8"})],
              max_pixels=99)  # fmt: skip
    assert info.value.code == "too_large" and "reference" in info.value.message


def test_decoder_must_be_one_the_model_offers():
    class WithDecoders(Models):
        def models(self):
            return [{"name": "fake", "decoders": ["mode", "ab"]}, {"name": "other"}]

    assert parse({"decoder": "mode"}, [("image", bytes(12))], backend=WithDecoders()).decoder
    with pytest.raises(RequestError) as info:
        parse({"decoder": "median"}, [("image", bytes(12))], backend=WithDecoders())
    assert info.value.code == "bad_request"
    assert info.value.message == (  # it was "unknown decoder 'median' for this model; use one
        # of ['mode', 'ab']": which model, and a Python list, for a GIMP user
        "model 'fake' has no decoder 'median'; it has: mode, ab (or leave the decoder to the "
        "model's default)"
    )
    job = parse({"model": "other", "decoder": "median"}, [("image", bytes(12))],
                backend=WithDecoders())  # fmt: skip
    assert job.decoder == "median"  # "other" does not list its decoders


@pytest.mark.parametrize(
    "header",
    [{"format": ["gray8"]}, {"format": {"x": 1}}, {"result_format": {"rgb8": 1}},
     {"decoder": ["mode"]}, {"model": {"fake": 1}}, {"id": 7}, {"id": ""}],
)  # fmt: skip
def test_odd_json_types_are_bad_requests(header):
    with pytest.raises(RequestError) as info:
        parse(header, [("image", bytes(12))])
    assert info.value.code == "bad_request"


def test_regression_is_the_engines_other_name_for_ab():
    class WithDecoders(Models):
        def models(self):
            return [{"name": "fake", "decoders": ["mode", "ab"]}, {"name": "other",
                    "decoders": ["mode"]}]  # fmt: skip

    job = parse({"decoder": "regression"}, [("image", bytes(12))], backend=WithDecoders())
    assert job.decoder == "regression"  # the engine reads it as "ab"
    with pytest.raises(RequestError) as info:  # no regression head: refused here already
        parse({"model": "other", "decoder": "regression"}, [("image", bytes(12))],
              backend=WithDecoders())  # fmt: skip
    assert info.value.code == "bad_request"


def test_size_messages_say_width_x_height():
    with pytest.raises(RequestError) as info:
        parse({"width": 5, "height": 1}, [("image", bytes(5))])
    assert info.value.code == "bad_request"
    assert "at least 2x2 pixels (width x height), got 5x1" in info.value.message
    with pytest.raises(RequestError) as info:
        parse({"width": 5, "height": 3}, [("image", bytes(15))], max_pixels=10)
    assert "the image is 5x3 pixels" in info.value.message


@pytest.mark.parametrize("missing", ["width", "height"])
def test_a_reference_without_its_size_says_so(missing):
    sec = {"width": 2, "height": 2, "format": "gray8"}
    del sec[missing]
    with pytest.raises(RequestError) as info:
        parse({}, [("image", bytes(12)), ("reference", bytes(4), sec)])
    assert info.value.code == "bad_request"
    assert "'reference'" in info.value.message and f'"{missing}"' in info.value.message


def test_cancel_ids_are_checked_like_request_ids():
    from tinct.bridge.request import check_request_id

    assert check_request_id({"request_id": "job-1"}, "request_id") == "job-1"
    assert check_request_id({}, "request_id") is None
    for bad in (5, ["x"], {"a": 1}, "", "y" * 129):
        with pytest.raises(RequestError) as info:
            check_request_id({"request_id": bad}, "request_id")
        assert info.value.code == "bad_request" and '"request_id"' in info.value.message


def test_local_hints_travel_and_default_to_off():
    assert parse({"local_hints": True}, [("image", bytes(12))]).options.local_hints is True
    assert parse({"local_hints": False}, [("image", bytes(12))]).options.local_hints is False
    old = parse({"temperature": 0.5}, [("image", bytes(12))])  # a client without the field
    assert old.options.local_hints is False and old.temperature == 0.5
    for value in ("yes", 1, [True]):  # JSON true or false only, never a truthy stand-in
        with pytest.raises(RequestError) as info:
            parse({"local_hints": value}, [("image", bytes(12))])
        assert info.value.code == "bad_request"
        assert info.value.message == '"local_hints" must be true or false'


def test_too_large_is_worded_in_megapixels_for_the_gimp_user():
    # it was "9000x8000 exceeds the server limit of 67108864 pixels (max_pixels; tinct serve
    # --max-megapixels)": a protocol field and raw pixels for a limit set in megapixels
    with pytest.raises(RequestError) as info:
        parse({"width": 9000, "height": 8000}, [], max_pixels=67_108_864)
    assert info.value.code == "too_large"
    assert info.value.message == (
        "the image is 9000x8000 pixels (72 megapixels), more than this server's limit of "
        "67.1 megapixels: scale it down or crop it, or whoever runs the server can raise the "
        "limit (tinct serve --max-megapixels 72)"  # not "colorize a selection": the plug-in
    )  # sends the whole layer whatever is selected (the model sees it all)
    with pytest.raises(RequestError) as info:
        parse({}, [("image", bytes(12)),
               ("reference", bytes(4000), {"width": 2001, "height": 2, "format": "gray8"})],
              max_pixels=1000)  # fmt: skip
    assert info.value.message.startswith("the reference image is 2001x2 pixels (0.004 megap")
    assert info.value.message.endswith("(tinct serve --max-megapixels 0.1)")


def test_sizes_past_the_engines_limits_say_so_and_suggest_no_flag():
    # a side over 65536 passed to the engine, whose refusal said "image of 10x70000 pixels"
    # (height x width) for a 70000x10 layer; over 2^31 pixels the message suggested
    # --max-megapixels 4295, which tinct serve refuses (its most is the engine's 2147)
    image = [("image", bytes(70000 * 10))]
    with pytest.raises(RequestError) as info:
        parse({"width": 70000, "height": 10}, image, max_pixels=10**9)
    assert info.value.code == P.E_TOO_LARGE
    assert info.value.message.startswith("the image is 70000x10 pixels, and the engine")
    assert "at most 65536 pixels a side" in info.value.message
    with pytest.raises(RequestError) as info:
        parse({"width": 65536, "height": 65536}, max_pixels=10**9)  # refused before its pixels
    assert info.value.code == P.E_TOO_LARGE
    assert "(4.29e+03 megapixels), more than the engine colorizes (2147 megapixels)" in (
        info.value.message
    )
    assert "--max-megapixels" not in info.value.message
