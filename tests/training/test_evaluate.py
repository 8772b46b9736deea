import csv
import json

import numpy as np
import pytest
from PIL import Image

from tinct import cli
from tinct.training.evaluate import EvalConfig, HintSet, evaluate, make_hints


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    for i in range(3):
        arr = np.zeros((60, 90, 3), np.uint8)
        arr[:, :45] = rng.integers(0, 256, 3)
        arr[:, 45:] = rng.integers(0, 256, 3)
        Image.fromarray(arr).save(root / f"e{i}.png")
    return root


def test_make_hints_protocol():
    lab = np.zeros((256, 256, 3))
    lab[..., 1] = np.arange(256)[None, :]
    hs = make_hints(lab, 50, np.random.default_rng(0))
    assert hs.rows.shape == (50,) and hs.ab.shape == (50, 2)
    assert hs.rows.min() >= 0 and hs.rows.max() <= 250
    # mean a of a 6-wide patch starting at column c is c + 2.5
    np.testing.assert_allclose(hs.ab[:, 0], hs.cols + 2.5)
    ab_map, mask = hs.maps((256, 256))
    assert mask.sum() <= 50 * 36 and ab_map[~mask].max() == 0
    assert make_hints(lab, 0, np.random.default_rng(0)).rows.size == 0


def test_hintset_maps_empty():
    hs = HintSet(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 2)))
    _ab, mask = hs.maps((4, 4))
    assert not mask.any()


def test_evaluate_baselines_report_and_reproducible(eval_dir, tmp_path):
    cfg = EvalConfig(
        models=["gray", "levin"], data=[str(eval_dir)], hints=[0, 10], out=str(tmp_path / "r")
    )
    res = evaluate(cfg, log=lambda s: None)
    assert set(res) == {"gray @ 0 hints", "gray @ 10 hints", "levin @ 10 hints"}
    # hints of the ground-truth colour make levin beat gray on two flat regions
    assert res["levin @ 10 hints"]["psnr"] > res["gray @ 10 hints"]["psnr"] + 3
    assert res["gray @ 0 hints"]["colourfulness"] < 0.05
    for name in ("report.md", "results.csv", "results.json", "psnr_vs_hints.png", "examples.png"):
        assert (tmp_path / "r" / name).exists(), name
    again = evaluate(cfg, log=lambda s: None)
    assert again["levin @ 10 hints"]["psnr"] == res["levin @ 10 hints"]["psnr"]


def test_the_report_gives_auc_as_the_fraction_it_is(eval_dir, tmp_path):
    cfg = EvalConfig(models=["gray"], data=[str(eval_dir)], hints=[0], out=str(tmp_path / "r"))
    auc = evaluate(cfg, log=lambda s: None)["gray @ 0 hints"]["auc"]
    assert 0 <= auc <= 1
    lines = (tmp_path / "r" / "report.md").read_text().splitlines()
    header = next(ln for ln in lines if ln.startswith("| model"))
    assert "| AuC ab |" in header and "AuC ab (%)" not in header  # its 0.92 read as 0.92 %
    row = next(ln for ln in lines if ln.startswith("| gray | 0 |"))
    assert row.split(" | ")[4] == f"{auc:.2f}"


def test_cli_evaluate(eval_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli.main(
        ["evaluate", "--models", "gray", "--data", str(eval_dir), "--hints", "0",
         "--out", str(out), "--no-full-res"]
    )  # fmt: skip
    assert code == 0
    data = json.loads((out / "results.json").read_text())
    assert "gray @ 0 hints" in data
    assert cli.main(["evaluate", "--data", str(eval_dir), "--hints", "x", "--out", str(out)]) == 2


def test_options_reach_the_engine(monkeypatch, eval_dir, tmp_path):
    from tinct.engine.options import ColorizeOptions

    seen = {}

    def fake_method_for(name, **kw):
        seen.update(kw)
        return lambda rgb, hints: rgb

    monkeypatch.setattr("tinct.training.evaluate.method_for", fake_method_for)
    opts = ColorizeOptions(decoder="mode", temperature=0.5, mrf_weight=2.0, propagation=1e-3)
    cfg = EvalConfig(
        models=["m"], data=[str(eval_dir)], hints=[0], out=str(tmp_path), full_res=False,
        options=opts,
    )  # fmt: skip
    evaluate(cfg, log=lambda s: None)
    assert seen == {"device": "cpu", "options": opts}


def test_cli_flags_become_one_options_object(monkeypatch, eval_dir, tmp_path):
    seen = {}

    def fake_evaluate(cfg, log=print):
        seen["cfg"] = cfg
        return {}

    monkeypatch.setattr("tinct.training.evaluate.evaluate", fake_evaluate)
    args = ["evaluate", "--models", "gray", "--data", str(eval_dir), "--out", str(tmp_path),
            "--decoder", "mode", "--mrf-weight", "2", "--mrf-edge", "3"]  # fmt: skip
    assert cli.main(args) == 0
    o = seen["cfg"].options
    assert (o.decoder, o.mrf_weight, o.mrf_edge, o.device) == ("mode", 2.0, 3.0, "cpu")


def test_images_are_read_turned_as_shown(tmp_path):
    """An EXIF-rotated photo is evaluated upright, as training reads it."""
    from tinct.training.eval_files import read_rgb as _read_rgb

    upright = np.zeros((20, 30, 3), np.uint8)
    upright[:5] = (250, 30, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees anticlockwise
    path = tmp_path / "phone.png"
    Image.fromarray(np.rot90(upright).copy()).save(path, exif=exif.tobytes())
    np.testing.assert_array_equal(_read_rgb(path), upright)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_planar_colour_tiff_is_evaluated_in_its_colours(tmp_path, dtype):
    """A TIFF stored as colour planes reads as tinct colorize reads it (Pillow: wrong colours)."""
    import tifffile

    from tinct.training.eval_files import read_rgb as _read_rgb

    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = tmp_path / "planar.tif"
    scale = 257 if dtype == np.uint16 else 1
    tifffile.imwrite(path, np.moveaxis(rgb.astype(dtype) * scale, -1, 0), photometric="rgb",
                     planarconfig="separate")  # fmt: skip
    np.testing.assert_array_equal(_read_rgb(path), rgb)


def test_a_bad_file_in_the_users_folder_is_left_out_not_fatal(eval_dir, tmp_path, capsys):
    data = tmp_path / "mine"
    data.mkdir()
    for p in sorted(eval_dir.glob("*.png"))[:2]:
        (data / p.name).write_bytes(p.read_bytes())
    (data / "empty.png").write_bytes(b"")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(data / "dot.png")
    out = tmp_path / "r"
    argv = ["evaluate", "--models", "gray", "levin", "--data", str(data), "--hints", "0,1"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "skipped 2 unreadable images" in said and "dot.png" in said and "empty.png" in said
    assert "(2 images)" in (out / "report.md").read_text()
    (data / "e0.png").unlink()
    (data / "e1.png").unlink()
    assert cli.main([*argv, "--out", str(out)]) == 1  # nothing left: one line, exit 1
    err = capsys.readouterr().err  # with the first file's reason, as tinct train says it
    assert "none of the 2 images can be used (first: " in err
    assert "dot.png: 1x1 pixels, smaller than 2x2)" in err


def test_a_gray_image_is_left_out_so_no_average_is_infinite(eval_dir, tmp_path, capsys):
    """Every method reproduces a gray photo exactly: its PSNR (inf) would swamp the mean."""
    data = tmp_path / "mine"
    data.mkdir()
    for p in sorted(eval_dir.glob("*.png"))[:2]:
        (data / p.name).write_bytes(p.read_bytes())
    ramp = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))
    Image.fromarray(ramp).convert("RGB").save(data / "bw.png")
    out = tmp_path / "r"
    argv = ["evaluate", "--models", "gray", "--data", str(data), "--hints", "0"]
    assert cli.main([*argv, "--out", str(out), "--no-full-res"]) == 0
    said = capsys.readouterr().out
    assert "skipped 1 gray image: " in said and "bw.png: no colour to measure" in said
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert rows and all(np.isfinite(float(r["psnr"])) for r in rows)


def test_out_of_gamut_colours_are_clipped_without_skimages_warning():
    """Levin's colours outside sRGB made `tinct evaluate` print skimage's clipping warning."""
    import warnings

    from tinct.training.evaluate import _lab_to_u8

    lum = np.full((4, 4), 50.0)
    ab = np.full((4, 4, 2), 300.0)  # far outside sRGB: lab2rgb clips negative Z
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _lab_to_u8(lum, ab)
    assert out.dtype == np.uint8 and out.shape == (4, 4, 3)
    assert out[..., 0].min() == 255  # the clip still happens
