"""The evaluations tell representations apart: on the synthetic world, `cycle eval linear` and `cycle
eval retrieval` rank a backbone that holds the world's classes above a random one.

The backbone that holds the classes is trained on the world's latent labels
(``cycle_pkg.eval.reference``): CPU pretraining budgets leave the contrastive loss on its starting
plateau (README, Performance), so a pretrained backbone that holds them takes a GPU budget.
"""

import json

import pytest

from cycle_pkg.cli import main
from cycle_pkg.config import load_config
from cycle_pkg.data.synthetic import generate_world
from cycle_pkg.eval.reference import train_supervised

from .conftest import PARAMS

# Labelled images and UCF101 groups enough that a few points of accuracy are several images.
EVAL_SETS = ["world.images_per_class=40", "world.val_images_per_class=20", "world.ucf101_groups=8"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    config = load_config(PARAMS, "test", [f"world.root={tmp_path_factory.mktemp('world')}", *EVAL_SETS])
    return generate_world(config.world)


def evaluate(task, world, results, checkpoint, *options):
    sets = [
        f"data.imagenet_root={world / 'imagenet'}",
        f"data.ucf101_root={world / 'ucf101'}",
        f"results={results}",
        f"eval.cache_dir={results / 'cache'}",
        "mlflow.enabled=false",
    ]
    output = results / f"{task}.json"
    args = ["eval", task, "--params", str(PARAMS), "--scale", "test", "--checkpoint", str(checkpoint), *options]
    assert main([*args, "--output", str(output), *(a for s in sets for a in ("--set", s))]) == 0
    return json.loads(output.read_text())["metrics"]


def test_labels_trained_backbone_beats_random_on_linear_probe_and_retrieval(world, tmp_path):
    weights = tmp_path / "reference.pth"
    training = train_supervised(world / "r2v2", "resnet18", image_size=32, epochs=30, output=weights)
    assert training["train_top1"] > 100 / 6 + 10  # it has learnt the 6 classes, if not well
    scores = {}
    for name, checkpoint, options in (("random", "random", []), ("reference", weights, ["--format", "torchvision"])):
        scores[name] = {
            **evaluate("linear", world, tmp_path / name, checkpoint, *options),
            **evaluate("retrieval", world, tmp_path / name, checkpoint, *options),
        }
    random, reference = scores["random"], scores["reference"]
    assert reference["top1"] >= random["top1"] + 4, scores  # 120 validation images: >= 5 more right
    assert reference["frame_top1"] >= random["frame_top1"] + 4, scores  # 72 queries: >= 3 more right
    assert reference["clip_top5"] > random["clip_top5"], scores
