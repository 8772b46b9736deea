"""``tinct models``: the table, and what ``--remove`` refuses."""

from tinct.cli import main


def test_remove_with_an_empty_name_is_a_usage_error(capsys):
    # --remove '' was taken for no --remove: the table was printed, exit 0
    assert main(["models", "--remove", ""]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip() == (
        "tinct models: error: --remove: is empty; name the user model to delete (tinct models)"
    )
