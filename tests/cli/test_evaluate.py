"""tinct.cli.evaluate: an unknown --models name is told with what --models takes."""

from tinct.cli import main


def test_an_unknown_model_lists_the_baselines_too(tmp_path, capsys):
    """--models takes 'gray', which the registry's list did not name."""
    argv = ["evaluate", "--models", "gray", "no-such-model", "--data", str(tmp_path)]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinct evaluate: error: --models: unknown model 'no-such-model'; ")
    assert err.endswith("; baselines: gray, levin\n") and err.count("\n") == 1
