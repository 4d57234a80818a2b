"""Linear classification on frozen features (Tables 3-8).

``moco`` is MoCo's ``main_lincls.py`` protocol: the backbone stays in eval mode (frozen BatchNorm), a
linear layer initialised N(0, 0.01) is trained with SGD (lr 30, momentum 0.9, no weight decay,
batch 256) for 100 epochs, lr x0.1 at epochs 60 and 80, on RandomResizedCrop(224) + flip views drawn
afresh every epoch; validation uses Resize(256) + CenterCrop(224), after every epoch, and the best
top-1 of the epochs is what main_lincls reports (``report: best``; ``last``: the last epoch's).

``fast`` trains the same layer with the same optimiser, schedule, batch size and epochs, but draws
each image's view of an epoch from ``views`` augmented views (the same RandomResizedCrop + flip)
whose features were computed once and kept in the feature cache (in float16: N x views x C x 2
bytes). The backbone then sees every training image ``views`` times instead of once per epoch, and
a repeated probe of one checkpoint none.

Both protocols validate every epoch on the cached features of the val images' centre crops (the
backbone is frozen: they are the same every epoch), so a validation costs one matrix product.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from tqdm import tqdm

from ..data.augment import IMAGENET_MEAN, IMAGENET_STD
from ..data.imagenet import imagefolder_samples, imagenet100_wnids
from ..errors import DatasetError
from ..jobs.mlflow_job import MlflowRun
from ..reproduction.stats import binomial_se
from ..settings.config import Config
from ..settings.sections import EvalConfig
from .divergence import LossHistory, divergence_flags
from .features import FeatureCache, FrozenBackbone, ImageFiles, files_digest, image_features, read_image
from .linear_settings import LinearEvalConfig
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


class AugmentedViews(Dataset):
    """(path, label) samples -> (``views`` augmented views of the image, stacked, label). Image i's
    views come from (seed, i), whatever the loader's workers, so that its cached features can be
    computed again identically."""

    def __init__(self, samples: Samples, transform: Callable[[Tensor], Tensor], views: int, seed: int):
        self.samples, self.transform, self.views, self.seed = samples, transform, views, seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        image = read_image(path)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0]))
            return torch.stack([self.transform(image) for _ in range(self.views)]), label


@torch.no_grad()
def view_features(backbone: FrozenBackbone, dataset: AugmentedViews, batch_size: int, workers: int) -> Tensor:
    """(N, views, C) float16 features of every training image's views, about ``batch_size`` images a pass."""
    loader = DataLoader(dataset, batch_size=max(1, batch_size // dataset.views), shuffle=False, num_workers=workers)
    parts = []
    for images, _ in tqdm(loader, desc=f"linear-train x{dataset.views} views", dynamic_ncols=True):
        parts.append(backbone(images.flatten(0, 1)).view(len(images), dataset.views, -1).half().cpu())
    return torch.cat(parts)


def train_fast(
    features: Tensor,
    labels: Tensor,
    classifier: nn.Linear,
    cfg: LinearEvalConfig,
    on_epoch: EpochCallback | None = None,
) -> LossHistory:
    """Train ``classifier`` on fixed features, (N, C) or (N, views, C), with the MoCo protocol's
    optimiser and schedule: every epoch visits each image once, in a new order, through one of its
    views drawn at random. Returns its losses."""
    device = classifier.weight.device
    features = features[:, None] if features.ndim == 2 else features
    labels = labels.to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = _sgd(classifier, cfg)
    history = LossHistory()
    for epoch in tqdm(range(cfg.epochs), desc="linear probe (fast)", dynamic_ncols=True):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, epoch)
        order = torch.randperm(len(features), generator=generator)
        views = torch.randint(features.shape[1], (len(features),), generator=generator)
        losses = [
            _step(classifier, optimizer, features[b, views[b]].to(device, torch.float32), labels[b.to(device)])
            for b in order.split(cfg.batch_size)
        ]
        _report(epoch, optimizer, history.add_epoch(losses), on_epoch)
    return history


def _report(epoch: int, optimizer: torch.optim.Optimizer, loss: float, on_epoch: EpochCallback | None) -> None:
    lr = optimizer.param_groups[0]["lr"]
    log.info("epoch %d: lr %.4g, train loss %.4f", epoch + 1, lr, loss)
    if on_epoch is not None:
        on_epoch(epoch + 1, {"train_loss": loss, "lr": lr})


@dataclass
class ValCurve:
    """Top-1 / top-5 (%) on the val features after every epoch, as main_lincls validates."""

    features: Tensor  # (N, C), on the classifier's device
    labels: Tensor
    top1: list[float] = field(default_factory=list)
    top5: list[float] = field(default_factory=list)

    @torch.no_grad()
    def add_epoch(self, classifier: nn.Module) -> dict[str, float]:
        accuracy = topk_accuracy(classifier(self.features).cpu(), self.labels, ks=(1, 5))
        self.top1.append(accuracy[1])
        self.top5.append(accuracy[5])
        return {"val_top1": accuracy[1], "val_top5": accuracy[5]}

    def best_epoch(self) -> int:
        """The epoch (from 1) of the best top-1, the first of equals: main_lincls keeps a best until beaten."""
        return self.top1.index(max(self.top1)) + 1

    def reported(self, report: str) -> dict[str, float | int | str]:
        """top1 / top5 of the epoch that ``report`` (best | last) picks, and both candidates' top-1."""
        best = self.best_epoch()
        epoch = best if report == "best" else len(self.top1)
        return {
            "top1": self.top1[epoch - 1],
            "top5": self.top5[epoch - 1],
            "report": report,
            "top1_best": self.top1[best - 1],
            "best_epoch": best,
            "top1_last": self.top1[-1],
        }


def _cached(
    cache: FeatureCache,
    name: str,
    backbone: FrozenBackbone,
    samples: Samples,
    transform: str,
    compute: Callable[[], Tensor],
) -> Tensor:
    """Features of ``samples`` from the cache, keyed by the weights, the files and the transform."""
    return cache.get(
        name,
        backbone.digest,
        lambda: files_digest([p for p, _ in samples], [y for _, y in samples]),
        transform,
        compute,
    )


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
    """Train a linear classifier on the frozen backbone, validating every epoch; report top-1 / top-5 (%)
    on ``val`` of the epoch ``cfg.report`` picks."""
    started = time.perf_counter()
    # Both protocols validate on Resize + CenterCrop views: one computation, cached.
    center = ImageFiles(val, val_transform(cfg.image_size, cfg.resize))
    val_features = _cached(
        cache,
        "linear-val",
        backbone,
        val,
        repr(center.transform),
        lambda: image_features(backbone, center, eval_cfg.batch_size, eval_cfg.workers, "linear-val"),
    )
    torch.manual_seed(cfg.seed)
    classifier = new_classifier(backbone.width, classes).to(backbone.device)
    curve = ValCurve(val_features.to(backbone.device), torch.tensor([y for _, y in val]))

    def validate(epoch: int, metrics: dict[str, float]) -> None:
        accuracy = curve.add_epoch(classifier)
        log.info("epoch %d: val top-1 %.2f", epoch, accuracy["val_top1"])
        if on_epoch is not None:
            on_epoch(epoch, {**metrics, **accuracy})

    if cfg.protocol == "moco":
        history = train_moco(backbone, train, classifier, cfg, eval_cfg.workers, validate)
    else:
        augment = train_transform(cfg.image_size)
        views = AugmentedViews(train, augment, cfg.views, cfg.seed)
        train_features = _cached(
            cache,
            "linear-train-views",
            backbone,
            train,
            f"{augment!r} views={cfg.views} seed={cfg.seed} float16",
            lambda: view_features(backbone, views, eval_cfg.batch_size, eval_cfg.workers),
        )
        history = train_fast(train_features, torch.tensor([y for _, y in train]), classifier, cfg, validate)
    backbone.check_unchanged()
    reported = curve.reported(cfg.report)
    return {
        **reported,
        "top1_se": binomial_se(reported["top1"], len(val)),
        "train_loss": history.last,
        **divergence_flags("linear probe", history),
        "train_images": len(train),
        "val_images": len(val),
        "classes": classes,
        "epochs": cfg.epochs,
        "protocol": cfg.protocol,
        **({"views": cfg.views} if cfg.protocol == "fast" else {}),
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
