"""tinct.cli.evaluate: an unknown --models name is told with what --models takes."""

from tinct.cli import main


def test_an_unknown_model_lists_the_baselines_too(tmp_path, capsys):
    """--models takes 'gray', which the registry's list did not name."""
    argv = ["evaluate", "--models", "gray", "no-such-model", "--data", str(tmp_path)]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinct evaluate: error: --models: unknown model 'no-such-model'; ")
    assert err.endswith("; baselines: gray, levin\n") and err.count("\n") == 1


def test_a_report_inside_a_data_folder_is_refused(tmp_path, capsys):
    # examples.png and psnr_vs_hints.png were written among the images, and the next run
    # with the same --data read them as data
    import numpy as np
    from PIL import Image

    data = tmp_path / "photos"
    data.mkdir()
    Image.fromarray(np.full((32, 32, 3), (200, 40, 30), np.uint8)).save(data / "a.png")
    for out in (data, data / "report"):
        argv = ["evaluate", "--models", "gray", "--data", str(data), "--out", str(out)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"tinct evaluate: error: --out: {out} is inside --data {data}: ")
        assert err.count("\n") == 1
    assert sorted(p.name for p in data.iterdir()) == ["a.png"]
