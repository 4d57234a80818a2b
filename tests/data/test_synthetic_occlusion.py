"""The world's occluders and the GOT-10k cover levels they produce, by hand."""

import numpy as np
import pytest

from cycle_pkg.data.synthetic.occlusion import OCCLUDER, cover_level, occlude, occluded_columns, occlusion_of


@pytest.mark.parametrize(
    ("visible", "level"),
    [(0.0, 0), (0.1, 1), (0.15, 2), (0.29, 2), (0.3, 3), (0.5, 4), (0.6, 5), (0.89, 6), (0.9, 7), (0.99, 7), (1.0, 8)],
)
def test_cover_levels_are_got10ks(visible, level):
    assert cover_level(visible) == level


def test_two_of_six_sequences_are_swept_and_one_curtained():
    assert [occlusion_of(n) for n in range(7)] == ["none", "sweep", "none", "none", "sweep", "curtain", "none"]


def test_a_sweep_crosses_the_frame_once_and_a_curtain_stays():
    # 90 px wide, 10 frames: a 30 px band whose left edge goes from -30 (frame 0) to 90 (frame 9).
    columns = [occluded_columns("sweep", t, 10, 90) for t in range(10)]
    assert columns[0] == (0, 0) and columns[9] == (90, 90)
    assert columns[4] == (23, 53)  # -30 + 120 * 4 / 9 = 23.3
    assert [occluded_columns("curtain", t, 10, 90) for t in (0, 1, 9)] == [(0, 0), (0, 90), (0, 90)]
    assert occluded_columns("none", 5, 10, 90) == (0, 0)


def test_occluding_part_of_a_target_sets_its_cover():
    image = np.zeros((4, 20, 3), dtype=np.uint8)
    coverage = np.zeros((4, 20))
    coverage[:, 5:15] = 1.0  # a target 10 columns wide
    hidden, level = occlude(image, coverage, (11, 20))  # 4 of its 10 columns: 60% visible
    assert level == 5 and (hidden[:, 11:] == OCCLUDER).all() and (hidden[:, :11] == 0).all()
    assert occlude(image, coverage, (0, 20))[1] == 0
    assert occlude(image, coverage, (15, 20))[1] == 8  # beside the target
    unchanged, level = occlude(image, coverage, (0, 0))
    assert unchanged is image and level == 8
    assert (image == 0).all()  # the input frame is left as it was
