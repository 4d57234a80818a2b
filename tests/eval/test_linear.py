"""The linear probe's protocol: MoCo's schedule and initialisation, and a fast probe that separates
informative features from label-independent ones (so the evaluation can tell representations apart)."""

import pytest
import torch

from cycle_pkg.data.imagenet import imagefolder_samples
from cycle_pkg.eval.linear import (
    AugmentedViews,
    ValCurve,
    learning_rate,
    new_classifier,
    train_fast,
    train_transform,
    view_features,
)
from cycle_pkg.eval.linear_settings import LinearEvalConfig
from cycle_pkg.eval.metrics import topk_accuracy
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS


def test_paper_scale_is_mocos_protocol():
    cfg = load_config(PARAMS, "paper").eval.linear
    assert (cfg.protocol, cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay) == (
        "moco",
        100,
        256,
        30.0,
        0.9,
        0.0,
    )
    assert (cfg.image_size, cfg.resize, cfg.report) == (224, 256, "best")
    assert [learning_rate(cfg, e) for e in (0, 59, 60, 79, 80, 99)] == pytest.approx([30, 30, 3, 3, 0.3, 0.3])


def test_the_science_scale_keeps_its_pre_registered_protocol():
    """docs/science.md's run 1 fixed the last epoch's top-1 and the cosine lr updated every step."""
    config = load_config(PARAMS, "science")
    assert (config.eval.linear.report, config.pretrain.lr_schedule) == ("last", "step")


def test_validation_after_each_epoch_and_the_reported_epoch():
    # Three val images whose features are one-hot: an identity classifier gets all of them right, one that
    # swaps classes 0 and 1 only the third; top-5 of 3 classes is always 100.
    curve = ValCurve(torch.eye(3), torch.tensor([0, 1, 2]))
    classifier = torch.nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        classifier.weight.copy_(torch.eye(3)[[1, 0, 2]])
        assert curve.add_epoch(classifier) == pytest.approx({"val_top1": 100 / 3, "val_top5": 100.0})
        classifier.weight.copy_(torch.eye(3))
        assert curve.add_epoch(classifier)["val_top1"] == pytest.approx(100.0)
    # A known curve: its best top-1 (30) first comes at epoch 2, again at 4; the last epoch has 20.
    curve = ValCurve(torch.eye(3), torch.tensor([0, 1, 2]), top1=[10, 30, 25, 30, 20], top5=[50, 70, 60, 80, 90])
    common = {"top1_best": 30, "best_epoch": 2, "top1_last": 20}
    assert curve.reported("best") == {"top1": 30, "top5": 70, "report": "best", **common}
    assert curve.reported("last") == {"top1": 20, "top5": 90, "report": "last", **common}


def test_classifier_starts_at_n_0_001():
    torch.manual_seed(0)
    layer = new_classifier(2048, 1000)
    assert layer.weight.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert layer.weight.std().item() == pytest.approx(0.01, rel=0.01)
    assert torch.count_nonzero(layer.bias) == 0


def features(classes: int, per_class: int, informative: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Small non-negative features (like pooled ReLU outputs); class means differ only if informative."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(per_class)
    values = torch.rand(len(labels), 64, generator=generator) * 0.1
    if informative:
        values[torch.arange(len(labels)), labels] += 0.2
    return values, labels


@pytest.mark.parametrize(("informative", "low", "high"), [(True, 95.0, 100.0), (False, 0.0, 40.0)])
def test_fast_probe_tells_informative_features_from_noise(informative, low, high):
    cfg = LinearEvalConfig(protocol="fast", epochs=30, milestones=[18, 24], batch_size=32, seed=0)
    train_x, train_y = features(4, 60, informative, seed=1)
    val_x, val_y = features(4, 50, informative, seed=2)
    torch.manual_seed(0)
    classifier = new_classifier(64, 4)
    epochs = []
    train_fast(train_x, train_y, classifier, cfg, on_epoch=lambda e, m: epochs.append(m["lr"]))
    assert epochs[0] == 30.0 and epochs[-1] == pytest.approx(0.3) and len(epochs) == 30
    with torch.no_grad():
        top1 = topk_accuracy(classifier(val_x), val_y, ks=(1,))[1]
    assert low <= top1 <= high  # chance is 25%


def test_fast_probe_visits_every_image_once_an_epoch_through_one_of_its_views():
    # Feature (i, v) holds 10 i + v in its first place: the batches fed to the classifier say which
    # image and view each row is.
    images, views = 6, 3
    features = torch.zeros(images, views, 4)
    features[..., 0] = 10 * torch.arange(images)[:, None] + torch.arange(views)[None, :]
    cfg = LinearEvalConfig(protocol="fast", epochs=30, milestones=[20], batch_size=4, lr=0.0)
    classifier = new_classifier(4, 2)
    seen: list[list[float]] = []
    classifier.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0][:, 0].tolist()))
    train_fast(features, torch.tensor([0, 1] * 3), classifier, cfg)
    assert len(seen) == 30 * 2  # two batches (4 + 2 rows) an epoch
    drawn = set()
    for epoch in range(30):
        rows = seen[2 * epoch] + seen[2 * epoch + 1]
        assert sorted(int(r) // 10 for r in rows) == list(range(images))  # every image once
        drawn.update((int(r) // 10, int(r) % 10) for r in rows)
    assert drawn == {(i, v) for i in range(images) for v in range(views)}  # every view in use


def test_augmented_views_are_drawn_from_the_seed_and_the_image(world, frozen):
    samples, _ = imagefolder_samples(world / "imagenet", "train")
    samples = samples[:5]
    views = AugmentedViews(samples, train_transform(32), views=3, seed=7)
    first, label = views[2]
    assert first.shape == (3, 3, 32, 32) and label == samples[2][1]
    assert not torch.equal(first[0], first[1])  # three different crops
    assert torch.equal(views[2][0], first)  # the same draw again, whatever came before
    assert not torch.equal(AugmentedViews(samples, train_transform(32), views=3, seed=8)[2][0], first)
    features = view_features(frozen, views, batch_size=6, workers=0)  # two images (six views) a pass
    assert features.shape == (5, 3, 512) and features.dtype == torch.float16
    expected = frozen(first).half()
    assert torch.allclose(features[2].float(), expected.float(), rtol=1e-3, atol=1e-3)
