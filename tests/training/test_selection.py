"""Checkpoint choice on held-out protocol metrics (tinct.training.selection)."""

import numpy as np
import pytest
from PIL import Image

from tinct.training.config import split_indices
from tinct.training.datasets import find_images
from tinct.training.selection import beats, choose, held_out_images, protocol_scores


def _s(auto, ten, false):
    return {"psnr_auto": auto, "psnr_10": ten, "colourful_auto": 0.5, "false_auto": false}


def test_choose_takes_the_best_psnr_among_snapshots_that_do_not_invent_colour():
    scores = {"a": _s(23.0, 27.0, 0.05), "b": _s(23.5, 27.2, 0.12), "c": _s(23.1, 27.1, 0.08)}
    assert choose(scores) == "c"  # b is better but paints false colour on 12 % of the pixels


def test_choose_falls_back_to_the_lowest_false_colour_rate():
    assert choose({"a": _s(23.0, 27.0, 0.20), "b": _s(22.0, 26.0, 0.10)}) == "b"
    with pytest.raises(ValueError, match="no candidates"):
        choose({})


def test_a_snapshot_ships_only_when_it_beats_the_start():
    start = _s(23.0, 27.0, 0.05)
    assert beats(_s(23.1, 27.0, 0.05), start)
    assert not beats(_s(23.0, 27.0, 0.05), start)
    assert not beats(_s(23.3, 26.6, 0.05), start)  # automatic gained less than hints lost


def test_protocol_scores_reads_the_evaluation_rows():
    rows = {
        "m @ 0 hints": {"psnr": 22.0, "colourfulness": 0.4, "false_colour": 0.06},
        "m @ 10 hints": {"psnr": 26.0, "colourfulness": 0.6, "false_colour": 0.03},
    }
    assert protocol_scores(rows, "m") == _s(22.0, 26.0, 0.06) | {"colourful_auto": 0.4}


def test_held_out_images_are_the_ones_the_training_run_leaves_out(tmp_path):
    for i in range(40):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(tmp_path / f"im{i:02d}.png")
    held = held_out_images(tmp_path, 0.1, seed=3)
    idx, train = split_indices(40, 0.1, 3)
    paths = find_images(tmp_path)
    assert held == [paths[i] for i in idx] and len(held) == 4
    assert not set(held) & {paths[i] for i in train}
