"""The cycle's mechanism (cycle_pkg/pretrain/mechanism.py) on hand-made frames with known classes and
similarities, and measured by the monitor of a pretraining run."""

import math

import pytest
import torch

from cycle_pkg.pretrain.mechanism import NO_CLASS, cycle_steps, nearest_frames


def unit_vectors(degrees: list[float]) -> torch.Tensor:
    radians = torch.tensor(degrees) * math.pi / 180
    return torch.stack([torch.cos(radians), torch.sin(radians)], dim=1)


# Four videos of two frames; U = the even videos (0, 2), the negatives the odd ones (1, 3).
ANGLES = [0, 10, 90, 100, 20, 200, 35, 270]
VIDEOS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
CLASSES = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])


def test_cycle_steps_by_hand():
    # Hard neighbours at T = 0.01. Forward (nearest in U): 0->20 10->20 90->20 100->20 20->10 200->0 35->20
    # 270->200; backward (nearest of the query's video and the negatives to that neighbour): 0->10 (own)
    # 10->10 (self) 90->35 100->35 (other videos) 20->20 (self) 200->20 (own) 35->35 (self) 270->270 (self).
    metrics = cycle_steps(unit_vectors(ANGLES), VIDEOS, CLASSES, temperature=0.01)
    assert metrics["back_video"] == pytest.approx(75.0)
    assert metrics["back_self"] == pytest.approx(50.0)
    # same class forward: the frames of videos 0 and 2 (class 0, whose U is class 0), none of 1 and 3
    assert metrics["nn_same_class"] == pytest.approx(50.0)
    assert metrics["nn_class_weight"] == pytest.approx(50.0, abs=1e-3)
    # U's share of the query's class: all of it for the class-0 videos, none for the class-1 ones
    assert metrics["same_class_chance"] == pytest.approx(50.0)


def test_cycle_steps_soft_weight_and_unknown_classes():
    # the query of video 1 (class 0, at 0 degrees) has U = videos 0 (class 0, 30 degrees) and 2 (class 1,
    # -30): at a high temperature half its weight is on its class; videos 0 and 2 see only each other
    embeddings = unit_vectors([30, 0, -30])
    videos, classes = torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1])
    weight = cycle_steps(embeddings, videos, classes, temperature=1000.0)["nn_class_weight"]
    assert weight == pytest.approx((50 + 0 + 0) / 3, abs=0.1)
    unknown = cycle_steps(embeddings, videos, torch.full((3,), NO_CLASS), temperature=0.07)
    assert set(unknown) == {"back_video", "back_self"}


def test_nearest_frames_by_hand():
    # video 0: 0 and 5 degrees; video 1: 50 and 90; video 2: 40 (class 0) and 180
    features = unit_vectors([0, 5, 50, 90, 40, 180])
    videos, classes = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 0, 1, 1, 0, 0])
    metrics = nearest_frames(features, videos, classes)
    # nearest other frame: 0->5 (own) 5->0 (own) 50->40 (no) 90->50 (own) 40->50 (no) 180->90 (no)
    assert metrics["nn_own_video"] == pytest.approx(50.0)
    # nearest frame of another video: 0->40 (same class) 5->40 (same) 50->40 90->40 40->50 180->90 (not)
    assert metrics["nn_same_class"] == pytest.approx(100 * 2 / 6)
    # images each their own video: no video identity to measure
    alone = nearest_frames(features, torch.arange(6), classes)
    assert "nn_own_video" not in alone and "nn_same_class" in alone
