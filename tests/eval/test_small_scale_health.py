"""The test scale's evaluations train without diverging on the test scale's own checkpoints.

A 12-step run's BatchNorm running statistics kept 28% of their initial values with PyTorch's
momentum of 0.1, so that its frozen features came out ~8x larger than in training (norm ~210):
the linear probe at lr 0.3 reached a training loss of 7000 and every row of Tables 7 and 8 read
33.3 / 100.0. The small scales now keep those averages with momentum 0.3 (1.4% left after 12
steps) and probe with a step size for features of that size.
"""

import json

import pytest
import torch

from cycle_pkg.data.imagenet import imagefolder_samples
from cycle_pkg.eval.checkpoints import load_backbone
from cycle_pkg.eval.features import ImageFiles
from cycle_pkg.eval.linear import val_transform
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS, pretrain_args, run_cycle_here

pytestmark = pytest.mark.long(minutes=2)  # a pretraining run and three probes: about 90 CPU s


@pytest.fixture(scope="module")
def checkpoint(world, tmp_path_factory):
    """A test-scale pretraining run (12 steps), as the test scale's grid trains each point."""
    results = tmp_path_factory.mktemp("health")
    result = run_cycle_here(pretrain_args(world, results, "mlflow.enabled=false"), cwd=results)
    assert result.returncode == 0, result.stderr
    return results / "pretrain" / "r18" / "checkpoint.pt"


def test_frozen_features_have_the_scale_they_had_in_training(world, checkpoint):
    cfg = load_config(PARAMS, "test").eval.linear
    samples, _ = imagefolder_samples(world / "imagenet", "train")
    images = torch.stack([ImageFiles(samples, val_transform(cfg.image_size, cfg.resize))[i][0] for i in range(32)])
    net = load_backbone(str(checkpoint)).net
    with torch.no_grad():
        frozen = net.eval()(images).norm(dim=1).mean()
        training = net.train()(images).norm(dim=1).mean()  # normalised with the batch's own statistics
    assert 0.67 < frozen / training < 1.5, (float(frozen), float(training))


def eval_linear(world, tmp_path, checkpoint, *overrides):
    sets = [
        f"data.imagenet_root={world / 'imagenet'}",
        f"results={tmp_path}",
        f"eval.cache_dir={tmp_path / 'cache'}",
        "mlflow.enabled=false",
        "eval.linear.dataset=imagenet100",
        *overrides,
    ]
    args = ["eval", "linear", "--params", str(PARAMS), "--scale", "test", "--checkpoint", str(checkpoint)]
    result = run_cycle_here(args + [a for s in sets for a in ("--set", s)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads((tmp_path / "eval" / "linear_imagenet100" / "r18.json").read_text())["metrics"], result.stderr


def test_the_test_scales_linear_probe_trains_and_the_old_one_is_flagged(world, tmp_path, checkpoint):
    metrics, _ = eval_linear(world, tmp_path, checkpoint)
    assert not metrics["diverged"] and metrics["train_loss"] < 1.0  # chance: ln 3 = 1.10
    old = ("eval.linear.protocol=moco", "eval.linear.epochs=4", "eval.linear.milestones=[2, 3]", "eval.linear.lr=0.3")
    metrics, log = eval_linear(world, tmp_path, checkpoint, *old)
    assert metrics["diverged"] and "the last epoch's loss" in metrics["divergence"]
    assert "linear probe diverged" in log
