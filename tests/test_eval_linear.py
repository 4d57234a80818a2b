"""The linear probe's protocol: MoCo's schedule and initialisation, and a fast probe that separates
informative features from label-independent ones (so the evaluation can tell representations apart)."""

import pytest
import torch

from cycle_pkg.config import LinearEvalConfig, load_config
from cycle_pkg.eval.linear import learning_rate, new_classifier, train_fast
from cycle_pkg.eval.metrics import topk_accuracy

from .conftest import PARAMS


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
    assert (cfg.image_size, cfg.resize) == (224, 256)
    assert [learning_rate(cfg, e) for e in (0, 59, 60, 79, 80, 99)] == pytest.approx([30, 30, 3, 3, 0.3, 0.3])


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
