import json

import numpy as np
import pytest
import torch

from tinct import color
from tinct.engine.hint_raster import encode_hints, hint_influence, place_hints
from tinct.engine.hints import Hint, hints_from_points, hints_from_rgba, read_hints_file


def test_hint_colour_scales():
    assert Hint(1, 2, color=(255, 0, 0)).color == (1.0, 0.0, 0.0)
    assert Hint(1, 2, color=(1.0, 0.5, 0.0)).color == (1.0, 0.5, 0.0)
    assert Hint(1, 2, color=(128.0, 0.0, 0.0)).color[0] == pytest.approx(128 / 255)
    assert Hint(1, 2, ab=(10, -20)).ab == (10.0, -20.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"color": (1, 0, 0), "ab": (0, 0)},
        {"color": (1, 2)},
        {"color": (300, 0, 0)},
        {"color": (-1.0, 0.0, 0.0)},
        {"ab": (float("nan"), 0)},
        {"color": (1, 0, 0), "size": 0},
        {"color": (1, 0, 0), "size": 1e308},  # finite, but overflowed once scaled
        {"color": (1, 0, 0), "size": float("inf")},
        {"color": (1, 0, 0), "size": float("nan")},
    ],
)
def test_hint_validation(kwargs):
    with pytest.raises(ValueError):
        Hint(1, 2, **kwargs)


def test_hint_position_validation():
    with pytest.raises(ValueError):
        Hint(float("nan"), 2, color=(1, 0, 0))
    with pytest.raises(TypeError):
        Hint("3", 2, color=(1, 0, 0))  # type: ignore[arg-type]


def test_hints_from_points():
    hs = hints_from_points([[0, 5, 6], [0, 7.5, 8]], [[1, 0, 0, 1], [0, 0, 1, 1]], size=[3, 4])
    assert [(h.row, h.col, h.size) for h in hs] == [(5, 6, 3), (7.5, 8, 4)]
    assert hs[1].color == (0, 0, 1)
    assert hints_from_points(np.zeros((0, 2)), np.zeros((0, 4))) == []
    assert hints_from_points([[1, 1]], [[0.5, 0.5, 0.5]])[0].size is None
    with pytest.raises(ValueError):
        hints_from_points([[1, 1]], [[2.0, 0, 0]])


def test_hints_from_rgba_blobs():
    layer = np.zeros((40, 50, 4), np.uint8)
    layer[5:9, 5:9] = (255, 0, 0, 255)  # 4x4 red blob
    layer[20:23, 30:40] = (0, 0, 200, 255)  # blue stroke
    layer[20, 30] = (0, 0, 100, 255)
    layer[30, 45] = (0, 255, 0, 0)  # transparent: ignored
    hs = hints_from_rgba(layer)
    assert len(hs) == 2
    red, blue = hs
    assert (red.row, red.col) == (6.5, 6.5) and red.size == 4 and red.color == (1, 0, 0)
    assert blue.row == pytest.approx(21) and blue.col == pytest.approx(34.5)
    assert blue.color[2] == pytest.approx((200 * 29 + 100) / 30 / 255)
    assert hints_from_rgba(np.zeros((5, 5, 4), np.uint8)) == []
    with pytest.raises(ValueError):
        hints_from_rgba(np.zeros((5, 5, 3), np.uint8))


def test_read_hints_csv_and_json(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("row,col,r,g,b,size\n# comment\n10,20,255,0,0,5\n3, 4, 0, 0, 255\n")
    hs = read_hints_file(p)
    assert [(h.row, h.col, h.size) for h in hs] == [(10, 20, 5), (3, 4, None)]
    assert hs[0].color == (1, 0, 0)
    j = tmp_path / "h.json"
    rows = [
        [1, 2, 0, 255, 0],
        {"row": 5, "col": 6, "color": [0, 0, 255], "size": 3},
        {"row": 1, "col": 1, "ab": [20, -30]},
    ]
    j.write_text(json.dumps(rows))
    hs = read_hints_file(j)
    assert hs[0].color == (0, 1, 0) and hs[1].size == 3 and hs[2].ab == (20, -30)
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="hint 1"):
        read_hints_file(bad)


def test_csv_header_names_the_columns_in_any_order(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("col,row,b,g,r\n20,10,0,0,255\n")
    (h,) = read_hints_file(p)
    assert (h.row, h.col, h.color) == (10, 20, (1, 0, 0))
    p.write_text("x,y,r,g,b,size\n7,3,0,255,0,4\n")
    (h,) = read_hints_file(p)
    assert (h.row, h.col, h.size) == (3, 7, 4)


@pytest.mark.parametrize(
    ("text", "match"),
    [("", "no hints"), ("row,col,r,g,b\n", "no hints"), ("# only a comment\n", "no hints"),
     ("row,col,hue\n1,2,3\n", "unknown column 'hue'"), ("row,col,r\n1,2,3\n", "lacks column"),
     ("[1, 2", "not valid JSON")],
)  # fmt: skip
def test_empty_or_malformed_hint_files_are_refused(tmp_path, text, match):
    p = tmp_path / "h.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_hints_file(p)


def test_csv_with_a_byte_order_mark(tmp_path):
    p = tmp_path / "excel.csv"
    p.write_bytes("row,col,r,g,b\r\n10,20,255,0,0\r\n".encode("utf-8-sig"))
    (h,) = read_hints_file(p)
    assert (h.row, h.col, h.color) == (10, 20, (1, 0, 0))


def test_json_nested_too_deeply_is_refused(tmp_path):
    p = tmp_path / "deep.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        read_hints_file(p)


def test_oversized_hints_file_is_refused_before_reading(tmp_path, monkeypatch):
    from tinct.engine import hints

    p = tmp_path / "big.csv"
    p.write_text("row,col,r,g,b\n" + "1,1,0,0,0\n" * 20)
    monkeypatch.setattr(hints, "MAX_HINTS_FILE_BYTES", 100)
    with pytest.raises(ValueError, match="more than a hints file may have"):
        read_hints_file(p)


def test_encode_hints_patch_and_gray_mask():
    gray = torch.full((1, 1, 100, 200), 0.5)
    hints = [Hint(50, 100, color=(128, 128, 128), size=20), Hint(10, 10, ab=(30, 20))]
    patches = place_hints(hints, gray, (64, 128), default_side=3)
    ab, mask = encode_hints(patches, (64, 128), 1)
    assert ab.shape == (1, 2, 64, 128) and mask.shape == (1, 1, 64, 128)
    # gray hint: mask set, ab ~ 0; patch ~ 20 * 0.64 = 13 px
    assert mask[0, 0, 32, 64] == 1 and ab[0, :, 32, 64].abs().max() < 1
    assert 10 <= mask[0, 0, :, 64].sum() <= 14
    # second hint: 3x3 patch at (6.1, 6.1) with the given ab
    assert mask[0, 0, 5:8, 5:8].sum() == 9
    assert ab[0, 0, 6, 6] == pytest.approx(30, abs=1) and ab[0, 1, 6, 6] == pytest.approx(20, abs=1)
    assert mask.sum() == mask[0, 0, 5:8, 5:8].sum() + mask[0, 0, 20:45, 50:80].sum()


def test_hint_colours_snapped_into_gamut():
    bright = torch.full((1, 1, 10, 10), 0.98)
    p = place_hints([Hint(5, 5, color=(0, 0, 255))], bright, (10, 10))[0]
    lab = torch.cat((torch.tensor([[98.5]]), p.chroma), 1)[..., None, None]
    # the snapped colour is (nearly) representable at this lightness
    rgb = color.lab_to_rgb(lab, clip=False)
    assert rgb.min() > -0.02 and rgb.max() < 1.02
    blue = color.rgb_to_lab(torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1))[0, 1:, 0, 0]
    assert p.chroma.norm() < blue.norm()  # chroma reduced


def test_place_hints_out_of_bounds():
    with pytest.raises(ValueError, match="outside"):
        place_hints([Hint(10, 50, color=(1.0, 0.0, 0.0))], torch.zeros(1, 1, 10, 50), (10, 50))


def test_hint_influence_falloff():
    gray = torch.full((1, 1, 64, 64), 0.5)
    patches = place_hints([Hint(32, 32, color=(255, 0, 0), size=4)], gray, (64, 64))
    w, target = hint_influence(patches, (16, 16), 0.25, 1, spread=2.0)
    assert w[0, 0, 7:9, 7:9].max() == 1.0 and w[0, 0, 8, 15] < 0.05
    assert torch.allclose(target[0, :, 7, 7], patches[0].chroma[0])
    w0, _ = hint_influence(patches, (16, 16), 0.25, 1, spread=0.0)
    assert w0.sum() == 1.0
    assert hint_influence([], (4, 4), 1.0, 1, 1.0) is None


def test_a_hints_file_may_have_at_most_one_mib(tmp_path):
    """A 64 MiB JSON file was read and parsed (1.7 GB at its peak): now 1 MiB, checked first."""
    from tinct.engine.hints import MAX_HINTS_FILE_BYTES

    assert MAX_HINTS_FILE_BYTES == 2**20
    p = tmp_path / "padded.json"
    p.write_text('[{"row": 1, "col": 2, "color": [0, 0, 255]}' + " " * 2**21 + "]")
    with pytest.raises(ValueError, match=r"more than a hints file may have \(1,048,576 bytes"):
        read_hints_file(p)


def test_a_hints_file_gives_at_most_as_many_hints_as_a_bridge_request(tmp_path):
    from tinct.bridge.wire import DEFAULT_MAX_HINTS
    from tinct.engine.hints import MAX_FILE_HINTS

    assert MAX_FILE_HINTS == DEFAULT_MAX_HINTS == 2048
    p = tmp_path / "h.csv"
    p.write_text("row,col,r,g,b\n" + "1,2,0,0,255\n" * MAX_FILE_HINTS)
    assert len(read_hints_file(p)) == MAX_FILE_HINTS
    p.write_text("row,col,r,g,b\n" + "1,2,0,0,255\n" * (MAX_FILE_HINTS + 1))
    with pytest.raises(ValueError, match="2,049 hints, more than a hints file may give"):
        read_hints_file(p)
    j = tmp_path / "h.json"
    j.write_text(json.dumps([[1, 2, 0, 0, 255]] * (MAX_FILE_HINTS + 1)))
    with pytest.raises(ValueError, match="more than a hints file may give"):
        read_hints_file(j)


def test_a_fifo_is_refused_before_it_is_opened(tmp_path):
    """Opening a FIFO waits for a writer: read_hints_file blocked for ever."""
    import os

    from engine_helpers import finishes_despite_fifo

    fifo = tmp_path / "hints.csv"
    os.mkfifo(fifo)
    raised: list[BaseException] = []

    def read() -> None:
        try:
            read_hints_file(fifo)
        except BaseException as exc:  # recorded for the assertion
            raised.append(exc)

    if not finishes_despite_fifo(read, fifo, 30):
        pytest.fail("read_hints_file blocked on a FIFO")
    assert len(raised) == 1 and isinstance(raised[0], OSError)
    assert "is not a regular file" in str(raised[0])
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_hints_file(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"row": 10**400, "col": 1, "color": (1, 2, 3)}, "Hint.row must be finite"),
     ({"row": 1, "col": 1, "color": (10**400, 2, 3)}, "Hint.color must be"),
     ({"row": 1, "col": 1, "ab": (10**400, 3)}, "Hint.ab must be")],
)  # fmt: skip
def test_an_integer_too_large_for_a_float_is_a_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):  # was OverflowError
        Hint(**kwargs)


@pytest.mark.parametrize(
    ("text", "match"),
    [('[{"row": 1, "col": 2}]', "hint 1 .* it has no r, g, b"),
     ('[{"col": 2, "color": [1, 2, 3]}]', "it has no row"),
     ('[{"row": 1, "col": 2, "color": 5}]', "color must be a list of numbers, got 5"),
     ('[{"row": 1, "col": 2, "ab": "x"}]', "ab must be a list of numbers"),
     ("[null]", "a hint is an object"),
     ('[{"row": 1' + "0" * 5000 + "}]", "a number in the JSON has too many digits"),
     ("row,col,r,g,b\n1,2," + "3" * 200_000 + ",4,5\n", "not a readable CSV file")],
)  # fmt: skip
def test_malformed_hint_rows_are_worded_for_a_user(tmp_path, text, match):
    p = tmp_path / "h.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        read_hints_file(p)
    assert len(str(info.value)) < 400  # a huge value is cut, not quoted whole


def test_a_hints_file_that_is_not_utf8_names_the_file(tmp_path):
    p = tmp_path / "h.csv"
    p.write_bytes(b"row,col,r,g,b\n1,2,3,4,5\n\xff\n")
    with pytest.raises(ValueError, match=r"h\.csv: not UTF-8 text \(byte 24 is 0xff\)"):
        read_hints_file(p)
