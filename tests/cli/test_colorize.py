"""``tinct colorize`` and ``tinct demo`` end to end (random-weight tinct-small from a file)."""

import json
import os
import shutil

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from tinct import color
from tinct.cli import main
from tinct.engine.outputs import output_path_for


@pytest.fixture
def gray_png(tmp_path):
    p = tmp_path / "in.png"
    Image.fromarray(np.full((64, 96), 128, np.uint8)).save(p)
    return p


def test_output_path_rule(tmp_path):
    assert output_path_for("a/b/photo.jpeg", tmp_path) == tmp_path / "photo_colorized.png"
    assert output_path_for("x.tif", "out", stack=True).name == "x_colorized.tif"


def test_colorize_with_hints_file(tmp_path, gray_png, weights):
    plain = tmp_path / "plain.png"
    assert main(["colorize", str(gray_png), "-o", str(plain), "--model", weights]) == 0
    hints = tmp_path / "hints.csv"
    hints.write_text("row,col,r,g,b,size\n20,20,230,20,20,12\n40,70,20,40,230,12\n")
    hinted = tmp_path / "hinted.png"
    rc = main(
        ["colorize", str(gray_png), "-o", str(hinted), "--model", weights, "--hints", str(hints)]
    )
    assert rc == 0
    a = np.asarray(Image.open(plain))
    b = np.asarray(Image.open(hinted))
    assert b.shape == (64, 96, 3)
    for (r, c), target in (((20, 20), (230, 20, 20)), ((40, 70), (20, 40, 230))):
        goal = _hint_ab(target, a[r, c])
        before = np.linalg.norm(_ab(a[r - 3 : r + 4, c - 3 : c + 4]) - goal)
        after = np.linalg.norm(_ab(b[r - 3 : r + 4, c - 3 : c + 4]) - goal)
        assert after < 0.5 * before


def _ab(rgb):
    """Mean CIELAB (a, b) of a uint8 RGB patch."""
    x = torch.from_numpy(rgb.reshape(-1, 1, 3).astype(np.float32) / 255).permute(2, 0, 1)
    return color.rgb_to_lab(x)[1:].mean((1, 2)).numpy()


def _hint_ab(target, pixel):
    """The hint colour's (a, b) snapped into gamut at the pixel's lightness (what hints mean)."""
    from tinct.spaces import snap_chroma

    lum = color.rgb_to_lab(torch.tensor(pixel, dtype=torch.float32).view(3, 1, 1) / 255)[0, 0, 0]
    ab = _ab(np.array([[target]], np.uint8))
    return snap_chroma(lum.view(1), torch.tensor(ab).view(1, 2))[0].numpy()


def test_many_files_to_directory_with_a_failure(tmp_path, gray_png, weights, capsys):
    other = tmp_path / "second.png"
    Image.fromarray(np.dstack([np.full((40, 30), v, np.uint8) for v in (10, 200, 90)])).save(other)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    out = tmp_path / "out"
    files = [str(gray_png), str(broken), str(other)]
    opts = ["--model", weights, "--quiet", "--temperature", "0.5", "--mrf-weight", "1"]
    rc = main(["colorize", *files, "-o", str(out), *opts])
    assert rc == 1
    assert (out / "in_colorized.png").exists() and (out / "second_colorized.png").exists()
    assert not (out / "broken_colorized.png").exists()
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if "warning:" not in line]  # constant images warn
    assert len(err) == 1 and "broken.png" in err[0]
    assert any("nearly constant" in line for line in lines)


def test_json_hints_and_reference(tmp_path, gray_png, weights):
    hints = tmp_path / "h.json"
    hints.write_text(json.dumps([{"row": 10, "col": 10, "color": [0, 200, 0]}]))
    ref = tmp_path / "ref.png"
    Image.fromarray(np.full((20, 20, 3), (200, 30, 30), np.uint8)).save(ref)
    out = tmp_path / "o.png"
    args = ["colorize", str(gray_png), "-o", str(out), "--model", weights, "--hints", str(hints),
            "--reference", str(ref), "--tile", "0", "--normalize", "percentile"]  # fmt: skip
    assert main(args) == 0 and out.exists()


def test_sixteen_bit_input(tmp_path, weights):
    p = tmp_path / "deep.png"
    Image.fromarray(np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)).save(p)
    from tinct.engine.imagefiles import read_image

    assert read_image(p).dtype == np.uint16
    out = tmp_path / "deep_out.png"
    assert main(["colorize", str(p), "-o", str(out), "--model", weights]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (48, 64, 3) and img[-1].mean() > img[0].mean() + 100


def test_input_is_never_overwritten(tmp_path, gray_png, weights, capsys):
    before = gray_png.read_bytes()
    assert main(["colorize", str(gray_png), "-o", str(gray_png), "--model", weights]) == 2
    assert gray_png.read_bytes() == before
    assert "-o: would overwrite the input" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["s.tiff", "s.TIF"])
def test_stack_output_name_is_honoured(tmp_path, weights, name):
    import tifffile

    src = tmp_path / "stack.tif"  # three gray pages
    planes = np.tile(np.arange(48, dtype=np.uint8) * 5, (3, 32, 1))
    tifffile.imwrite(src, planes, photometric="minisblack")
    out = tmp_path / "o" / name
    assert main(["colorize", str(src), "-o", str(out), "--model", weights, "-q"]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == [name]
    assert tifffile.imread(out).shape == (3, 32, 48, 3)


def test_stack_into_a_folder_is_a_tiff(tmp_path, weights):
    import tifffile

    src = tmp_path / "stack.tif"  # three gray pages
    planes = np.tile(np.arange(48, dtype=np.uint8) * 5, (3, 32, 1))
    tifffile.imwrite(src, planes, photometric="minisblack")
    out = tmp_path / "o"
    assert main(["colorize", str(src), "-o", f"{out}/", "--model", weights, "-q"]) == 0
    assert [p.name for p in out.iterdir()] == ["stack_colorized.tif"]


@pytest.mark.parametrize("alpha", [False, True])
def test_planar_rgb_tiff_is_one_colour_image(tmp_path, weights, alpha):
    """A TIFF stored as colour planes, (3|4, H, W) with photometric RGB, is one image."""
    import tifffile

    ramp = np.tile(np.arange(48, dtype=np.uint8) * 5, (32, 1))
    rgb = np.dstack([ramp, ramp[::-1], 255 - ramp] + [np.full_like(ramp, 200)] * alpha)
    src = tmp_path / "planar.tif"
    alpha_tag = {"extrasamples": ["unassalpha"]} if alpha else {}
    tifffile.imwrite(src, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate",
                     **alpha_tag)  # fmt: skip
    out = tmp_path / "o.png"  # one image: a PNG holds it (a stack would need .tif)
    assert main(["colorize", str(src), "-o", str(out), "--model", weights, "-q"]) == 0
    got = np.asarray(Image.open(out))
    assert got.shape == (32, 48, 4 if alpha else 3)
    if alpha:
        assert (got[..., 3] == 200).all()

    def lightness(a):
        return color.rgb_to_lab(torch.from_numpy(a[..., :3] / 255.0).permute(2, 0, 1).float())[0]

    assert (lightness(rgb) - lightness(got)).abs().max() < 3  # the colour image's, kept


def test_a_warnings_advice_names_the_flag(tmp_path, gray_png, weights, capsys):
    out = tmp_path / "o.png"
    assert main(["colorize", str(gray_png), "-o", str(out), "--model", weights, "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning: the input is nearly constant after normalisation (dtype: " in err
    assert "; if the data varies more, try --normalize percentile\n" in err
    assert "normalize 'percentile'" not in err and "percentile normalisation" not in err


@pytest.mark.parametrize(
    "extra",
    [["--temperature", "-1"], ["--decoder", "nope"], ["--normalize", "zscore"], ["--tile", "x"],
     ["--hints", "/nonexistent/h.csv"], ["--model", "no-such-model"]],
)  # fmt: skip
def test_usage_errors_exit_2(tmp_path, gray_png, weights, extra, capsys):
    args = ["colorize", str(gray_png), "-o", str(tmp_path / "x.png")]
    if "--model" not in extra:
        args += ["--model", weights]
    assert main(args + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct colorize: error:") and len(err.splitlines()) == 1


@pytest.mark.parametrize("case", ["too-big", "too-many"])
def test_a_hints_file_over_its_bounds_is_one_line_naming_hints(
    tmp_path, gray_png, weights, case, capsys
):
    hints = tmp_path / "h.csv"
    if case == "too-big":  # 64 MiB passed before, and parsed JSON costs ~20 times its text
        hints.write_text("row,col,r,g,b\n10,10,0,0,255\n" + "#" * 2**21 + "\n")
    else:  # no count was checked: each hint costs time to place
        hints.write_text("row,col,r,g,b\n" + "10,10,0,0,255\n" * 2049)
    args = ["colorize", str(gray_png), "-o", str(tmp_path / "x.png"), "--model", weights]
    assert main([*args, "--hints", str(hints)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct colorize: error: --hints") and len(err.splitlines()) == 1
    assert ("1,048,576 bytes" if case == "too-big" else "(2048)") in err
    assert not (tmp_path / "x.png").exists()


def test_help(capsys):
    for cmd in (["colorize", "--help"], ["demo", "--help"]):
        assert main(cmd) == 0
    out = capsys.readouterr().out
    assert "colorize" in out and "``" not in out and ":func:" not in out  # no RST markup
    assert "default: the model's" in out


def test_demo_writes_png(tmp_path, weights):
    out = tmp_path / "ba.png"
    assert main(["demo", "-o", str(out), "--model", weights]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (300, 2 * 451 + 8, 3)
    left = img[:, :451]
    assert (left[..., 0] == left[..., 1]).all()  # the "before" half is gray


def test_demo_default_model(tmp_path):
    from tinct.models import get_record
    from tinct.models.loading import weights_status

    if weights_status(get_record("tinct-base")) not in ("bundled", "downloaded"):
        pytest.skip("tinct-base weights are not available yet")
    out = tmp_path / "before_after.png"
    assert main(["demo", "-o", str(out)]) == 0 and out.exists()


def test_sample_image_is_small():
    from tinct.data import load_sample, sample_path

    assert sample_path().stat().st_size < 300_000
    assert load_sample().shape == (300, 451) and load_sample(gray=False).shape == (300, 451, 3)


def test_local_hints_note_names_the_models_it_acts_on(tmp_path, gray_png, weights, capsys):
    hints = tmp_path / "hints.csv"
    hints.write_text("row,col,r,g,b\n20,20,230,20,20\n")
    run = ["colorize", str(gray_png), "-o", str(tmp_path / "o.png"), "--local-hints", "-q"]
    capsys.readouterr()
    assert main([*run, "--model", weights, "--hints", str(hints)]) == 0  # no fusion head
    err = capsys.readouterr().err
    assert "note: --local-hints has no effect here: local hints act on hint-fusing" in err
    assert main([*run, "--device", "cpu"]) == 0  # tinct-base, but no hints
    assert "--local-hints has no effect here: local hints act on colour hints only" in (
        capsys.readouterr().err
    )
    assert main([*run, "--device", "cpu", "--hints", str(hints)]) == 0  # tinct-base fuses them
    assert "--local-hints" not in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".fits", ".fits.gz"])
def test_a_fits_cube_into_an_image_name_is_refused_before_any_work(
    tmp_path, suffix, monkeypatch, capsys
):
    fits = pytest.importorskip("astropy.io.fits")
    from tinct.engine import colorizer

    src = tmp_path / f"cube{suffix}"
    fits.PrimaryHDU(np.random.default_rng(0).random((3, 32, 48)).astype(">f4")).writeto(src)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output name was checked")

    monkeypatch.setattr(colorizer.Colorizer, "from_options", no_model)
    out = tmp_path / "o" / "out.png"
    assert main(["colorize", str(src), "-o", str(out), "--device", "cpu", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tinct colorize: error: -o: ")
    assert "is a stack of 3 images" in err and ".tif or .tiff output name" in err
    assert not out.parent.exists()  # nothing created


def test_only_warnings_meant_for_users_are_told(tmp_path, gray_png, weights, monkeypatch, capsys):
    import warnings

    from tinct.engine.colorizer import Colorizer
    from tinct.engine.inputs import InputWarning

    real = Colorizer.colorize

    def noisy(self, *args, **kwargs):
        warnings.warn("unclosed file <_io.BufferedWriter name=6>", ResourceWarning, stacklevel=1)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        warnings.warn("the input is nearly black", InputWarning, stacklevel=1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Colorizer, "colorize", noisy)
    out = tmp_path / "o.png"
    assert main(["colorize", str(gray_png), "-o", str(out), "--model", weights, "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning: the input is nearly black" in err
    assert "unclosed" not in err and "old API" not in err


def test_several_inputs_into_a_folder_named_like_an_image(tmp_path, gray_png, weights):
    other = tmp_path / "other.png"
    other.write_bytes(gray_png.read_bytes())
    files = [str(gray_png), str(other)]
    opts = ["--model", weights, "-q"]
    assert main(["colorize", *files, "-o", str(tmp_path / "many.png"), *opts]) == 2
    assert not (tmp_path / "many.png").exists()  # no folder made from a file name
    assert main(["colorize", *files, "-o", f"{tmp_path / 'many.png'}/", *opts]) == 0
    assert sorted(p.name for p in (tmp_path / "many.png").iterdir()) == [
        "in_colorized.png", "other_colorized.png"
    ]  # fmt: skip
    one = tmp_path / "one.png"  # one input: a trailing / makes it a folder too
    assert main(["colorize", str(gray_png), "-o", f"{one}/", *opts]) == 0
    assert [p.name for p in one.iterdir()] == ["in_colorized.png"]


def test_a_hint_outside_the_image_fails_that_file_naming_hints(tmp_path, gray_png, weights, capsys):
    tall = tmp_path / "tall.png"
    Image.fromarray(np.full((6000, 8), 128, np.uint8)).save(tall)  # the hint is on this one
    hints = tmp_path / "h.csv"
    hints.write_text("row,col,r,g,b\n5000,5,255,0,0\n")
    out = tmp_path / "out"
    args = ["colorize", str(gray_png), str(tall), "-o", str(out), "--model", weights, "--quiet"]
    assert main([*args, "--hints", str(hints)]) == 1  # one file failed, the other done
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if "warning:" not in line]  # constant images warn
    assert err == [
        f"tinct colorize: {gray_png}: --hints: hint at (row=5000, col=5) is outside the 64x96 "
        "image (rows 0-63, columns 0-95)"
    ]
    assert (out / "tall_colorized.png").exists() and not (out / "in_colorized.png").exists()


@pytest.mark.parametrize("command", ["colorize", "evaluate"])
def test_cuda_without_a_gpu_is_refused_once_naming_device(
    tmp_path, gray_png, weights, command, capsys, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    if command == "colorize":
        args = ["colorize", str(gray_png), "-o", str(out), "--model", weights]
    else:
        args = ["evaluate", "--models", weights, "--data", str(tmp_path), "--out", str(out)]
    assert main([*args, "--device", "cuda"]) == 1  # the machine's fault: a runtime failure
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tinct {command}: error: --device: device 'cuda' requested but CUDA")
    assert len(err.splitlines()) == 1 and not out.exists()


def test_demo_on_a_missing_gpu_names_the_flag(tmp_path, weights, capsys, monkeypatch):
    # it said "cannot load model ...: device 'cuda' requested ..." without naming --device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "ba.png"
    assert main(["demo", "-o", str(out), "--model", weights, "--device", "cuda"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct demo: error: --device: device 'cuda' requested but CUDA is not")
    assert len(err.splitlines()) == 1 and not out.exists()


def test_a_bad_input_is_named_once_and_an_empty_one_said_so(tmp_path, weights, capsys):
    good, text, empty = tmp_path / "good.png", tmp_path / "notes.png", tmp_path / "empty.png"
    Image.fromarray(np.tile(np.arange(48, dtype=np.uint8) * 5, (32, 1))).save(good)
    text.write_text("this is not an image\n")
    empty.write_bytes(b"")
    out = tmp_path / "out"
    argv = ["colorize", str(text), str(empty), str(good), "-o", str(out), "--model", weights]
    assert main([*argv, "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    # they were "PATH: PATH: not an image file of a format tinct reads", twice
    assert err == [
        f"tinct colorize: {text}: not an image file of a format tinct reads",
        f"tinct colorize: {empty}: the file is empty (0 bytes)",
    ]
    assert (out / "good_colorized.png").is_file()


def test_too_many_tiles_names_the_flags_and_is_a_usage_error(tmp_path, gray_png, weights, capsys):
    # it was "tinct colorize: in.png: tile: cuts this image ..." and exit 1
    out = tmp_path / "out.png"
    args = ["colorize", str(gray_png), "-o", str(out), "--model", weights, "-q"]
    assert main([*args, "--tile", "16", "--net-size", "4096"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tinct colorize: {gray_png}: --tile: cuts this image into ")
    assert "at --net-size 4096" in err and "a smaller --tile-overlap or a smaller --net-size" in err
    assert len(err.splitlines()) == 1 and not out.exists()


# --------------------------------------------------------------------------- --output-depth


@pytest.fixture
def scan16(tmp_path):
    """A smooth 16-bit gray ramp as a PNG (read back as uint16)."""
    from depth_helpers import gradient16

    p = tmp_path / "scan16.png"
    Image.fromarray(gradient16()).save(p)
    return p


def test_a_16_bit_scan_gives_a_16_bit_png_whose_lightness_follows_it(tmp_path, scan16, weights):
    from depth_helpers import gradient16, lightness, png_bits, read_png

    args = ["colorize", str(scan16), "--model", weights, "--normalize", "dtype", "-q"]
    assert main([*args, "-o", f"{tmp_path}/out/"]) == 0
    out = tmp_path / "out" / "scan16_colorized.png"
    assert png_bits(out) == 16
    rgb = read_png(out)
    assert rgb.shape == (64, 96, 3) and rgb.dtype == np.uint16
    assert min(len(np.unique(rgb[..., c])) for c in range(3)) > 256
    from tinct.engine.colorizer import Colorizer
    from tinct.engine.imagefiles import read_image
    from tinct.engine.options import ColorizeOptions

    opts = ColorizeOptions(model=weights, normalize="dtype")
    engine = Colorizer.from_options(opts).colorize(read_image(scan16))
    assert engine.dtype == np.float32  # written from the float result, never through 8 bits
    np.testing.assert_allclose(rgb, np.clip(engine, 0, 1) * 65535.0, atol=0.5 + 1e-3)
    gray = gradient16() / 65535.0
    err = np.abs(lightness(rgb / 65535.0) - lightness(np.dstack([gray] * 3)))
    # L* follows the input within a 16-bit step (100 / 65535 = 0.0015) at most pixels
    # (random weights: a median of 0.0003-0.0005; near black a random chroma costs up to
    # 0.02 where it is shortened into the gamut); 8 bits give a median of 0.066 here
    assert np.median(err) < 0.003
    assert main([*args, "-o", str(tmp_path / "o.tif")]) == 0
    tif = tifffile.imread(tmp_path / "o.tif")
    assert tif.dtype == np.uint16 and tif.shape == (64, 96, 3)
    np.testing.assert_array_equal(tif, rgb)  # PNG and TIFF hold the same pixels


def test_a_16_bit_rgba_scan_keeps_its_alpha_at_16_bits(tmp_path, weights):
    from depth_helpers import gradient16, png_bits, read_png

    g = gradient16()
    alpha = np.tile(np.linspace(0, 65535, 96).astype(np.uint16), (64, 1))
    src = tmp_path / "rgba16.tif"
    tifffile.imwrite(src, np.dstack([g, g, g, alpha]), photometric="rgb", extrasamples=[2])
    assert main(["colorize", str(src), "-o", str(tmp_path / "o.png"), "--model", weights]) == 0
    assert png_bits(tmp_path / "o.png") == 16
    out = read_png(tmp_path / "o.png")
    assert out.shape == (64, 96, 4)
    np.testing.assert_array_equal(out[..., 3], alpha)


def test_8_bit_input_is_written_byte_for_byte_as_before(tmp_path, weights):
    from tinct.engine.colorizer import Colorizer
    from tinct.engine.imagefiles import read_image
    from tinct.engine.options import ColorizeOptions

    yy, xx = np.mgrid[0:48, 0:64]
    src = tmp_path / "in8.png"
    Image.fromarray((127 + 80 * np.sin(0.2 * yy) * np.cos(0.1 * xx)).astype(np.uint8)).save(src)
    result = Colorizer.from_options(ColorizeOptions(model=weights)).colorize(read_image(src))
    assert result.dtype == np.uint8
    for suffix in (".png", ".tif", ".jpg"):
        before = tmp_path / f"before{suffix}"
        Image.fromarray(result).save(before)  # what write_image always did with uint8
        for depth in ("auto", "8"):
            out = tmp_path / f"{depth}{suffix}"
            args = ["colorize", str(src), "-o", str(out), "--model", weights, "-q"]
            assert main([*args, "--output-depth", depth]) == 0
            assert out.read_bytes() == before.read_bytes(), (suffix, depth)


def test_output_depth_8_and_16_force_the_depth(tmp_path, scan16, gray_png, weights):
    from depth_helpers import png_bits, read_png

    args = ["--model", weights, "-q"]
    assert main(["colorize", str(scan16), "-o", str(tmp_path / "a.png"), *args,
                 "--output-depth", "8"]) == 0  # fmt: skip
    assert png_bits(tmp_path / "a.png") == 8
    assert main(["colorize", str(scan16), "-o", str(tmp_path / "a.jpg"), *args]) == 0
    assert Image.open(tmp_path / "a.jpg").mode == "RGB"  # auto: JPEG stays 8-bit
    assert main(["colorize", str(gray_png), "-o", str(tmp_path / "b.png"), *args,
                 "--output-depth", "16"]) == 0  # fmt: skip
    assert png_bits(tmp_path / "b.png") == 16
    b = read_png(tmp_path / "b.png")  # the uint8 result widened: v * 257
    np.testing.assert_array_equal(b, np.asarray(Image.open(tmp_path / "b.png"), np.uint16) * 257)


def test_a_float_input_is_written_with_8_bits_as_before(tmp_path, weights):
    from depth_helpers import png_bits

    src = tmp_path / "f.tif"
    tifffile.imwrite(src, np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64))
    assert main(["colorize", str(src), "-o", str(tmp_path / "f.png"), "--model", weights]) == 0
    assert png_bits(tmp_path / "f.png") == 8


def test_a_16_bit_stack_stays_float32_unless_a_depth_is_forced(tmp_path, weights):
    from depth_helpers import gradient16

    src = tmp_path / "stack16.tif"
    tifffile.imwrite(src, np.stack([gradient16(32, 48)] * 2), photometric="minisblack")
    args = ["colorize", str(src), "--model", weights, "-q"]
    assert main([*args, "-o", str(tmp_path / "s.tif")]) == 0
    assert tifffile.imread(tmp_path / "s.tif").dtype == np.float32
    assert main([*args, "-o", str(tmp_path / "s16.tif"), "--output-depth", "16"]) == 0
    s16 = tifffile.imread(tmp_path / "s16.tif")
    assert s16.dtype == np.uint16 and s16.shape == (2, 32, 48, 3)


@pytest.mark.parametrize("name", ["x.jpg", "x.webp", "x.bmp"])
def test_16_bits_into_an_8_bit_format_is_one_line_naming_output_depth(
    tmp_path, scan16, weights, name, capsys
):
    out = tmp_path / name
    args = ["colorize", str(scan16), "-o", str(out), "--model", weights]
    assert main([*args, "--output-depth", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct colorize: error: --output-depth: ") and len(err.splitlines()) == 1
    assert "8 bits a channel" in err and not out.exists()


def test_help_tells_output_depth(capsys):
    assert main(["colorize", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--output-depth {auto,8,16}" in out and "16 bits in a PNG or TIFF" in out


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [("big_row.json", '[{"row": 1' + "0" * 400 + ', "col": 2, "color": [1, 2, 3]}]',
      "Hint.row must be finite"),
     ("big_colour.json", '[{"row": 1, "col": 2, "color": [1' + "0" * 400 + ", 2, 3]}]",
      "Hint.color must be (r, g, b)"),
     ("long_field.csv", "row,col,r,g,b\n1,2," + "3" * 200_000 + ",4,5\n",
      "not a readable CSV file"),
     ("latin1.csv", "row,col,r,g,b\n1,2,3,4,5 # r\xf6t\n".encode("latin-1"), "not UTF-8 text"),
     ("digits.json", '[{"row": 1' + "0" * 5000 + ', "col": 2, "color": [1, 2, 3]}]',
      "too many digits")],
)  # fmt: skip
def test_a_malformed_hints_file_is_one_line_naming_hints(
    tmp_path, gray_png, weights, name, content, said, capsys
):
    # a JSON integer too large for a float (OverflowError) and a CSV value over the csv
    # module's field limit (csv.Error) escaped as "error: OverflowError: ..." with exit 1
    hints = tmp_path / name
    hints.write_bytes(content if isinstance(content, bytes) else content.encode())
    args = ["colorize", str(gray_png), "-o", str(tmp_path / "x.png"), "--model", weights]
    assert main([*args, "--hints", str(hints)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tinct colorize: error: --hints: {hints}: ") and said in err
    assert len(err.splitlines()) == 1 and len(err) < 400


def test_a_folder_a_fifo_or_a_broken_link_among_several_inputs_fails_that_file_only(
    tmp_path, gray_png, weights, capsys
):
    # "colorize scans/* -o out/" with a sub-folder named like an image among the matches
    # refused the whole run (exit 2) before: a failed file never stops the others
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "b_folder.png").mkdir()
    (scans / "a_dead.png").symlink_to(tmp_path / "gone.png")
    os.mkfifo(scans / "d_fifo.png")  # never opened: reading it would wait for ever
    shutil.copy(gray_png, scans / "c_good.png")
    out = tmp_path / "out"
    inputs = sorted(str(p) for p in scans.iterdir())
    assert main(["colorize", *inputs, "-o", str(out), "--model", weights, "-q"]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ": warning: " not in ln]
    assert err == [
        f"tinct colorize: {scans / 'a_dead.png'}: a broken link (to {tmp_path / 'gone.png'})",
        f"tinct colorize: {scans / 'b_folder.png'}: a directory, not a file",
        f"tinct colorize: {scans / 'd_fifo.png'}: not a regular file",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["c_good_colorized.png"]


def test_a_missing_input_among_several_is_still_a_usage_error(tmp_path, gray_png, weights, capsys):
    missing = tmp_path / "typo.png"
    args = ["colorize", str(gray_png), str(missing), "-o", str(tmp_path / "out"), "-q"]
    assert main([*args, "--model", weights]) == 2
    assert capsys.readouterr().err.strip() == (
        f"tinct colorize: error: IN: no such file: {missing}"
    )
    assert not (tmp_path / "out").exists()


def test_a_stack_of_many_small_pages_is_colorized_a_few_planes_a_call(
    tmp_path, weights, monkeypatch
):
    # the network output of a call is kept whole (~16 MB a plane): a 460 KB TIFF of 2000
    # pages of 8 x 8 pixels was killed for memory; now a call gets PLANES_PER_CALL planes
    from tinct.engine import stacks
    from tinct.engine.colorizer import Colorizer

    src = tmp_path / "pages.tif"
    pages = (
        np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
        + np.arange(9, dtype=np.uint8)[:, None, None]
    )
    tifffile.imwrite(src, pages, photometric="minisblack")
    monkeypatch.setattr(stacks, "PLANES_PER_CALL", 4)
    planes = []
    colorize = Colorizer.colorize

    def spy(self, image, *args, **kwargs):
        planes.append(int(np.prod(np.shape(image)[:-2])))
        return colorize(self, image, *args, **kwargs)

    monkeypatch.setattr(Colorizer, "colorize", spy)
    out = tmp_path / "out"
    assert main(["colorize", str(src), "-o", str(out), "--model", weights, "-q"]) == 0
    assert planes == [4, 4, 1]
    assert tifffile.imread(out / "pages_colorized.tif").shape == (9, 8, 8, 3)


def test_a_tiff_declaring_a_huge_image_is_one_line_naming_the_file(
    tmp_path, weights, capsys, caplog
):
    # tifffile logged its findings first ("<tifffile.TiffPage 0 @8> incorrect StripByteCounts
    # count (1 != 12500)", two more lines), and the line named the file twice
    import struct

    src = tmp_path / "claims.tif"
    tifffile.imwrite(src, np.zeros((8, 8), np.uint8))
    raw = bytearray(src.read_bytes())
    ifd = struct.unpack("<I", raw[4:8])[0]
    for i in range(struct.unpack("<H", raw[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack("<HH", raw[entry : entry + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: 60000 each
            value = struct.pack("<HH", 60000, 0) if kind == 3 else struct.pack("<I", 60000)
            raw[entry + 8 : entry + 12] = value
    src.write_bytes(bytes(raw))
    args = ["colorize", str(src), "-o", str(tmp_path / "out"), "--model", weights, "-q"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tinct colorize: {src}: declares 60000 x 60000 = 3,600,000,000 ")
    assert len(err.strip().splitlines()) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "tifffile"] == []


def test_a_broken_link_or_an_unmatched_pattern_is_said_as_such(tmp_path, weights, capsys):
    # both were "no such file: PATH", the link's name being there and the pattern the
    # shell's, left as typed when it matched nothing
    dead = tmp_path / "dead.png"
    dead.symlink_to(tmp_path / "moved.png")
    pattern = str(tmp_path / "scan*.png")
    cases = [
        (dead, f"{dead} is a broken link (to {tmp_path / 'moved.png'})"),
        (pattern, f"no such file: {pattern} (no file matched the pattern)"),
    ]
    for given, said in cases:
        args = ["colorize", str(given), "-o", str(tmp_path / "out"), "--model", weights]
        assert main(args) == 2
        assert capsys.readouterr().err.strip() == f"tinct colorize: error: IN: {said}"


def test_an_empty_output_name_is_a_usage_error(tmp_path, gray_png, weights, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # -o '' wrote into the working folder, exit 0
    assert main(["colorize", str(gray_png), "-o", "", "--model", weights, "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "tinct colorize: error: -o: is empty; name an output file or folder"
    assert not (tmp_path / "in_colorized.png").exists()


def test_an_input_given_twice_is_colorized_once(tmp_path, gray_png, weights, monkeypatch):
    from tinct.engine.colorizer import Colorizer

    calls = []
    colorize = Colorizer.colorize
    monkeypatch.setattr(
        Colorizer, "colorize", lambda self, *a, **k: calls.append(1) or colorize(self, *a, **k)
    )
    out = tmp_path / "out"
    args = ["colorize", str(gray_png), str(gray_png), "-o", str(out), "--model", weights, "-q"]
    assert main(args) == 0
    assert len(calls) == 1 and [p.name for p in out.iterdir()] == ["in_colorized.png"]


def test_a_tiff_of_thousands_of_pages_that_are_not_one_stack_is_refused_at_once(
    tmp_path, weights, capsys
):
    # tifffile made each page its own series and compared each with every other: 50,000
    # pages of 2 x 2 took 5 minutes to open, twice, and then only the first page was read
    from tinct.engine.tifffiles import MAX_PAGES

    src = tmp_path / "pages.tif"
    with tifffile.TiffWriter(src) as tif:
        for _ in range(MAX_PAGES + 1):
            tif.write(np.zeros((2, 2), np.uint8), contiguous=False, photometric="minisblack")
    args = ["colorize", str(src), "-o", str(tmp_path / "out"), "--model", weights, "-q"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"tinct colorize: {src}: holds 4,097 pages that are not one stack, more than the 4,096 "
        "a TIFF may hold (tifffile sorts each such page on its own); refused before reading"
    )


def test_a_broken_fits_file_is_one_line_in_a_users_words(tmp_path, weights, capfd):
    # astropy's own "WARNING: File may have been truncated ..." (three lines for a short
    # header) came first, then "cannot reshape array of size 30 into shape (64,80)" or
    # its advice "try with ignore_missing_simple=True"
    from astropy.io import fits

    good = tmp_path / "good.fits"
    fits.PrimaryHDU(np.arange(64 * 80, dtype=np.float32).reshape(64, 80)).writeto(good)
    (tmp_path / "cut.fits").write_bytes(good.read_bytes()[:3000])
    (tmp_path / "text.fits").write_text("hello\n")
    (tmp_path / "short.fits").write_bytes(b"SIMPLE  =                    T")
    for name, said in (
        ("cut.fits", "File may have been truncated: actual file length (3000) is smaller"),
        ("text.fits", "No SIMPLE card found, this file does not appear to be a valid FITS file"),
        ("short.fits", "Empty or corrupt FITS file"),
    ):
        src = tmp_path / name
        for out in (tmp_path / "out", tmp_path / "o.png"):  # -o a file: its shape is asked first
            assert main(["colorize", str(src), "-o", str(out), "--model", weights, "-q"]) == 1
            err = capfd.readouterr().err
            assert err.startswith(
                f"tinct colorize: {src}: not a FITS file that can be read: {said}"
            )
            assert err.count("\n") == 1 and "ignore_missing_simple" not in err


def test_normalize_and_intensity_range_that_conflict_are_a_usage_error(
    tmp_path, gray_png, weights, capsys
):
    # --normalize percentile --intensity-range 0 100 ran with the range, silently
    args = ["colorize", str(gray_png), "-o", str(tmp_path / "o.png"), "--model", weights, "-q"]
    assert main([*args, "--normalize", "percentile", "--intensity-range", "0", "100"]) == 2
    assert capsys.readouterr().err.strip() == (
        "tinct colorize: error: --normalize: percentile conflicts with --intensity-range, which "
        "maps its two values to black and white; give one of them (or --normalize range)"
    )
    assert not (tmp_path / "o.png").exists()
    assert main([*args, "--normalize", "range", "--intensity-range", "0", "100"]) == 0


def test_a_broken_or_empty_video_says_why(tmp_path, weights, capsys):
    # each was "Could not load meta information", imageio-ffmpeg's first line
    pytest.importorskip("imageio_ffmpeg")
    (tmp_path / "text.mp4").write_text("not a video\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    inputs = [str(tmp_path / "text.mp4"), str(tmp_path / "empty.mp4")]
    assert main(["colorize", *inputs, "-o", str(tmp_path / "out"), "--model", weights, "-q"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"tinct colorize: {inputs[0]}: not a readable video (ffmpeg: Invalid data found when "
        "processing input)",
        f"tinct colorize: {inputs[1]}: the file is empty (0 bytes)",
    ]
