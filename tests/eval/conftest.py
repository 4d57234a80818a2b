"""The evaluation tests' fixtures: the test scale's settings, a random frozen backbone, and videos drawn
with the synthetic world's renderer."""

from __future__ import annotations

import pytest
import torch

from cycle_pkg.eval.checkpoints import load_backbone
from cycle_pkg.eval.features import FrozenBackbone
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS
from ..helpers.eval_inputs import draw_video


@pytest.fixture(scope="module")
def config():
    """The test scale's settings."""
    return load_config(PARAMS, "test")


@pytest.fixture
def frozen():
    """A seeded random ResNet-18, frozen, on the CPU: a fresh one for each test (some change it, to
    see that the change is caught)."""
    backbone = load_backbone("random", arch="resnet18", seed=0)
    return FrozenBackbone(backbone.net, backbone.width, torch.device("cpu"))


@pytest.fixture(scope="module")
def videos(request, tmp_path_factory):
    """Videos of the test module's ``CLASSES``: ``TRAINING_VIDEOS`` training videos and one test video
    per class, as (name, label) lists, and a reader serving the drawn frames by file name. Where the
    module sets ``VIDEO_FILES``, the names are the paths of files that exist (empty)."""
    classes, per_class = request.module.CLASSES, request.module.TRAINING_VIDEOS
    train = [(f"v_{label}_g{g}.avi", label) for label in range(classes) for g in range(per_class)]
    test = [(f"v_{label}_g9.avi", label) for label in range(classes)]
    store = {name: draw_video(label, seed=n) for n, (name, label) in enumerate(train + test)}
    if not getattr(request.module, "VIDEO_FILES", False):
        return train, test, store.__getitem__
    folder = tmp_path_factory.mktemp("ucf")
    for name, _ in train + test:
        (folder / name).write_bytes(b"")
    return [(folder / n, y) for n, y in train], [(folder / n, y) for n, y in test], lambda path: store[path.name]
