"""The representation monitor: the weighted kNN classifier against hand-computed votes, the fixed
labelled set of the synthetic world, and a look at a model in training that leaves no trace on its
weights, its BatchNorm statistics, its modes or any random number generator."""

import math

import pytest
import torch
from torch import nn

from cycle_pkg.eval.features import eval_mode
from cycle_pkg.eval.knn import knn_accuracy, knn_scores
from cycle_pkg.model import build_backbone
from cycle_pkg.pretrain.monitor import (
    FEATURES,
    LabelledSet,
    Monitor,
    first_per_class,
    is_due,
    labelled_samples,
    load_features,
    load_labelled_set,
)


def test_knn_votes_by_hand():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2])
    query = torch.tensor([[2.0, 0.0]])  # cosines: 1, 0, 1/sqrt(2), -1
    scores = knn_scores(query, bank, labels, classes=3, k=2, temperature=0.5)
    # the two nearest are bank 0 (class 0, cos 1) and bank 2 (class 1, cos 0.707)
    expected = torch.tensor([[math.exp(1 / 0.5), math.exp(2**-0.5 / 0.5), 0.0]])
    assert torch.allclose(scores, expected)
    # k beyond the bank counts all of it: class 1 collects exp(0) + exp(1.414), class 2 exp(-2)
    everything = knn_scores(query, bank, labels, classes=3, k=200, temperature=0.5)
    assert torch.allclose(everything, torch.tensor([[math.exp(2), 1 + math.exp(2**0.5), math.exp(-2)]]))
    with pytest.raises(ValueError, match="expected queries"):
        knn_scores(query, bank, labels[:3], classes=3, k=2, temperature=0.5)


def test_knn_temperature_decides_between_many_far_and_one_near_neighbour():
    # one class-0 neighbour at cos 1, three class-1 neighbours at cos 0.8
    bank = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.8, 0.6], [0.8, 0.6]])
    labels = torch.tensor([0, 1, 1, 1])
    query, truth = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    # T = 0.07: exp(1/0.07) = 1.6e6 > 3 exp(0.8/0.07) = 2.8e5; T = 1: e = 2.7 < 3 e^0.8 = 6.7
    assert knn_accuracy(query, truth, bank, labels, 2, k=4, temperature=0.07, ks=(1,))[1] == 100.0
    assert knn_accuracy(query, truth, bank, labels, 2, k=4, temperature=1.0, ks=(1,))[1] == 0.0


def test_eval_mode_restores_every_submodule_and_stops_gradients():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout())
    net.train()
    net[2].eval()  # a mixed model: its own choice survives the look
    with eval_mode(net) as looked:
        assert not any(m.training for m in looked.modules())
        assert not net(torch.randn(3, 2)).requires_grad
    assert [m.training for m in net.modules()] == [True, True, True, False]


def test_labelled_set_is_the_first_images_of_each_class(world):
    bank, queries, classes = labelled_samples(world / "imagenet", "imagenet", 3, 2)
    assert len(classes) == 6 and len(bank) == 18 and len(queries) == 12
    assert [label for _, label in bank] == [c for c in range(6) for _ in range(3)]
    assert all(path.parent.parent.name == "train" for path, _ in bank)
    assert all(path.parent.parent.name == "val" for path, _ in queries)
    assert first_per_class([("a", 0), ("b", 1), ("c", 0), ("d", 0)], 2) == [("a", 0), ("b", 1), ("c", 0)]
    # ImageNet-100's classes: every other class of the world is one of them
    _, _, in100 = labelled_samples(world / "imagenet", "imagenet100", 3, 2)
    assert len(in100) == 3 and set(in100) < set(classes)


def test_labelled_set_is_decoded_once_at_the_monitors_size(world):
    labelled = load_labelled_set(world / "imagenet", "imagenet", 3, 2, size=24, workers=0)
    assert labelled.images.dtype == torch.uint8 and labelled.images.shape == (30, 3, 24, 24)
    assert int(labelled.bank.sum()) == 18 and labelled.labels.tolist()[18:] == [c for c in range(6) for _ in range(2)]


def colour_set() -> LabelledSet:
    """Class c is a flat image of colour c: average pooling tells the classes apart exactly."""
    colours = torch.tensor([[250, 10, 10], [10, 250, 10], [10, 10, 250]], dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2] * 4)
    noise = torch.randint(0, 5, (12, 3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    images = colours[labels][:, :, None, None] + noise
    return LabelledSet(images, labels, torch.arange(12) < 9, ["red", "green", "blue"])


def test_monitor_classifies_a_separable_set_and_keeps_its_curve(tmp_path):
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    monitor = Monitor(colour_set(), k=200, temperature=0.07, batch_size=5)
    assert monitor.look(pool, 0) == {"knn_top1": 100.0, "knn_top5": 100.0}
    monitor.look(pool, 4)
    summary = monitor.summary()
    assert summary["steps"] == [0, 4] and summary["knn_top1"] == [100.0, 100.0]
    assert summary["bank_images"] == 9 and summary["query_images"] == 3 and summary["k"] == 9
    assert summary["seconds"] > 0

    resumed = Monitor(colour_set())
    resumed.load_state_dict(monitor.state_dict())
    assert resumed.summary()["steps"] == [0, 4]

    monitor.save_features(tmp_path / FEATURES, pool)
    saved = load_features(tmp_path / FEATURES)
    assert saved["features"].shape == (12, 3) and saved["classes"] == ["red", "green", "blue"]
    assert saved["bank"].tolist() == [True] * 9 + [False] * 3


def test_a_look_at_a_training_backbone_leaves_no_trace():
    torch.manual_seed(0)
    net, _ = build_backbone("resnet18")
    net.train()
    net(torch.randn(4, 3, 32, 32))  # running statistics away from their initial values
    before = {k: v.clone() for k, v in net.state_dict().items()}
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    labelled = LabelledSet(images, torch.arange(10) % 2, torch.arange(10) < 6, ["a", "b"])
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    Monitor(labelled, batch_size=4).look(net, 0)
    assert torch.equal(torch.rand(3), expected_draw)  # the global RNG did not move
    assert all(m.training for m in net.modules())
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # num_batches_tracked included


def test_the_monitor_looks_at_the_start_every_n_steps_and_at_the_end():
    assert [s for s in range(0, 11) if is_due(s, 4, 10)] == [0, 4, 8, 10]
    assert not any(is_due(s, 0, 10) for s in range(11))  # off
