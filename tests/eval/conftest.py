"""The evaluation tests' fixtures: the test scale's settings and a random frozen backbone."""

from __future__ import annotations

import pytest
import torch

from cycle_pkg.eval.checkpoints import load_backbone
from cycle_pkg.eval.features import FrozenBackbone
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS


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
