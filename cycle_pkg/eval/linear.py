"""Linear classification on frozen features (Tables 3-8).

``moco`` is MoCo's ``main_lincls.py`` protocol: the backbone stays in eval mode (frozen BatchNorm), a
linear layer initialised N(0, 0.01) is trained with SGD (lr 30, momentum 0.9, no weight decay,
batch 256) for 100 epochs, lr x0.1 at epochs 60 and 80, on RandomResizedCrop(224) + flip views;
validation uses Resize(256) + CenterCrop(224). ``fast`` trains the same layer with the same
optimiser, schedule, batch size and epochs on features computed once from the validation
transform (no augmentation) and kept in the feature cache, so repeated probes of one checkpoint
(the ablation grids of Tables 5-8) cost one pass over the images.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision.transforms import v2
from tqdm import tqdm

from ..config import Config, EvalConfig, LinearEvalConfig
from ..data.augment import IMAGENET_MEAN, IMAGENET_STD
from ..data.imagenet import imagefolder_samples, imagenet100_wnids
from ..errors import DatasetError
from ..mlflow_run import MlflowRun
from .divergence import LossHistory, divergence_flags
from .features import FeatureCache, FrozenBackbone, ImageFiles, files_digest, image_features
from .metrics import topk_accuracy
from .registry import Evaluate

log = logging.getLogger(__name__)
Samples = Sequence[tuple[Path, int]]
EpochCallback = Callable[[int, dict[str, float]], None]


def train_transform(size: int) -> v2.Compose:
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def val_transform(size: int, resize: int) -> v2.Compose:
    return v2.Compose(
        [
            v2.Resize(resize, antialias=True),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def new_classifier(width: int, classes: int) -> nn.Linear:
    layer = nn.Linear(width, classes)
    nn.init.normal_(layer.weight, mean=0.0, std=0.01)
    nn.init.zeros_(layer.bias)
    return layer


def learning_rate(cfg: LinearEvalConfig, epoch: int) -> float:
    """MoCo's step schedule: x0.1 at every milestone passed."""
    return cfg.lr * 0.1 ** sum(epoch >= m for m in cfg.milestones)


def _sgd(classifier: nn.Module, cfg: LinearEvalConfig) -> torch.optim.SGD:
    return torch.optim.SGD(classifier.parameters(), cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _step(classifier: nn.Module, optimizer: torch.optim.Optimizer, features: Tensor, labels: Tensor) -> float:
    loss = nn.functional.cross_entropy(classifier(features), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def train_moco(
    backbone: FrozenBackbone,
    train: Samples,
    classifier: nn.Linear,
    cfg: LinearEvalConfig,
    workers: int,
    on_epoch: EpochCallback | None = None,
) -> LossHistory:
    """Train ``classifier`` on augmented views through the frozen backbone; its losses."""
    loader = DataLoader(
        ImageFiles(train, train_transform(cfg.image_size)),
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(cfg.seed),
        pin_memory=backbone.device.type == "cuda",
        persistent_workers=workers > 0,
    )
    optimizer = _sgd(classifier, cfg)
    history = LossHistory()
    for epoch in tqdm(range(cfg.epochs), desc="linear probe (moco)", dynamic_ncols=True):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, epoch)
        losses = [_step(classifier, optimizer, backbone(x), y.to(backbone.device)) for x, y in loader]
        _report(epoch, optimizer, history.add_epoch(losses), on_epoch)
    return history


def train_fast(
    features: Tensor,
    labels: Tensor,
    classifier: nn.Linear,
    cfg: LinearEvalConfig,
    on_epoch: EpochCallback | None = None,
) -> LossHistory:
    """Train ``classifier`` on fixed features with the MoCo protocol's optimiser and schedule; its losses."""
    device = classifier.weight.device
    features, labels = features.to(device), labels.to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = _sgd(classifier, cfg)
    history = LossHistory()
    for epoch in tqdm(range(cfg.epochs), desc="linear probe (fast)", dynamic_ncols=True):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, epoch)
        order = torch.randperm(len(features), generator=generator).to(device)
        losses = [_step(classifier, optimizer, features[b], labels[b]) for b in order.split(cfg.batch_size)]
        _report(epoch, optimizer, history.add_epoch(losses), on_epoch)
    return history


def _report(epoch: int, optimizer: torch.optim.Optimizer, loss: float, on_epoch: EpochCallback | None) -> None:
    lr = optimizer.param_groups[0]["lr"]
    log.info("epoch %d: lr %.4g, train loss %.4f", epoch + 1, lr, loss)
    if on_epoch is not None:
        on_epoch(epoch + 1, {"train_loss": loss, "lr": lr})


def linear_probe(
    backbone: FrozenBackbone,
    train: Samples,
    val: Samples,
    classes: int,
    cfg: LinearEvalConfig,
    eval_cfg: EvalConfig,
    cache: FeatureCache,
    on_epoch: EpochCallback | None = None,
) -> dict[str, float | int | str]:
    """Train a linear classifier on the frozen backbone and report top-1 / top-5 (%) on ``val``."""
    started = time.perf_counter()
    transform = val_transform(cfg.image_size, cfg.resize)

    def features_of(name: str, samples: Samples) -> Tensor:
        return cache.get(
            name,
            backbone.digest,
            lambda: files_digest([p for p, _ in samples], [y for _, y in samples]),
            repr(transform),
            lambda: image_features(
                backbone, ImageFiles(samples, transform), eval_cfg.batch_size, eval_cfg.workers, desc=name
            ),
        )

    torch.manual_seed(cfg.seed)
    classifier = new_classifier(backbone.width, classes).to(backbone.device)
    if cfg.protocol == "moco":
        history = train_moco(backbone, train, classifier, cfg, eval_cfg.workers, on_epoch)
    else:
        train_features = features_of("linear-train", train)
        train_labels = torch.tensor([y for _, y in train])
        history = train_fast(train_features, train_labels, classifier, cfg, on_epoch)
    # Both protocols validate on Resize + CenterCrop views: one computation, cached.
    val_features = features_of("linear-val", val)
    with torch.no_grad():
        scores = classifier(val_features.to(backbone.device)).cpu()
    accuracy = topk_accuracy(scores, torch.tensor([y for _, y in val]), ks=(1, 5))
    backbone.check_unchanged()
    return {
        "top1": accuracy[1],
        "top5": accuracy[5],
        "train_loss": history.last,
        **divergence_flags("linear probe", history),
        "train_images": len(train),
        "val_images": len(val),
        "classes": classes,
        "epochs": cfg.epochs,
        "protocol": cfg.protocol,
        "seconds": time.perf_counter() - started,
    }


def linear_evaluation(config: Config, output: Path) -> Evaluate:
    """The linear probe on ``eval.linear.dataset``: ImageNet, or its ImageNet-100 subset."""
    cfg = config.eval.linear
    wnids = imagenet100_wnids() if cfg.dataset == "imagenet100" else None
    train, classes = imagefolder_samples(config.data.imagenet_root, "train", wnids)
    val, val_classes = imagefolder_samples(config.data.imagenet_root, "val", wnids)
    if val_classes != classes:
        extra = sorted(set(val_classes) ^ set(classes))[:5]
        raise DatasetError(f"{config.data.imagenet_root}: train and val hold different classes (e.g. {extra})")
    log.info(
        "linear probe on %s: %d classes, %d train / %d val images", cfg.dataset, len(classes), len(train), len(val)
    )

    def evaluate(frozen: FrozenBackbone, mlflow_run: MlflowRun) -> dict[str, Any]:
        cache = FeatureCache(config.eval.cache_dir)
        return linear_probe(frozen, train, val, len(classes), cfg, config.eval, cache, on_epoch=mlflow_run.log_epoch)

    return evaluate
