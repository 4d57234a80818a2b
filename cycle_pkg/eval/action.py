"""UCF101 action recognition on frozen per-frame features (Table 10), AVID-CMA's linear setting.

A clip is 8 frames at 16 fps (0.5 s); its feature is the frozen 2D backbone's pooled features
averaged over the frames. Dropout (0.5) and one linear layer classify it. Training draws 10 random
clips per video and epoch, each with its own RandomResizedCrop(224, scale (0.08, 1)), flip and colour
jitter (0.4, 0.4, 0.4, 0.2) shared by its frames; Adam (lr 1e-4) trains the classifier alone for 5
warm-up epochs at a constant lr, then 16 epochs with lr x0.3 at epochs 6, 10 and 14, batch 64.
At test, 10 clips spread evenly over each video, Resize(256) + CenterCrop(224), their softmax
averaged: video top-1. Because the backbone is frozen, an epoch's clip features are computed first
and the classifier then runs over them in shuffled batches, which is the same computation.

BatchNorm (``batch_norm``): AVID-CMA trains this probe with the model in train mode, so its frozen
backbone normalises each batch with the batch's statistics and its running statistics follow UCF101;
the test clips then see those. ``train`` does the same on a copy of the backbone: each epoch's
videos in a random order, ``batch_size`` at a time, the k-th clips of those videos normalised
together (a batch of clips of distinct videos, as the authors' shuffled loader gives). Train mode
normalises with the batch's statistics only, so computing the features first stays exact. ``eval``
keeps the pretraining statistics throughout.

The clip sampling, transforms, schedule and accuracies are shared with the fine-tuning protocol of
Table 9 (:mod:`cycle_pkg.eval.finetune`), which trains the backbone too.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset
from torchvision.transforms import v2
from tqdm import tqdm

from ..data.augment import IMAGENET_MEAN, IMAGENET_STD
from ..data.ucf101 import clip_frames, read_split, read_video
from ..jobs.mlflow_job import MlflowRun
from ..settings.config import Config
from ..settings.sections import EvalConfig
from .action_settings import ActionEvalConfig
from .divergence import LossHistory, divergence_flags
from .features import FeatureCache, FrozenBackbone, files_digest
from .metrics import topk_accuracy
from .registry import Evaluate
from .video import Video, VideoClips, VideoReader, clip_features

log = logging.getLogger(__name__)


# What each seeded draw of a clip is for: its frames, its crop and flip, its colour.
POSITIONS, GEOMETRY, COLOUR = range(3)
RANDOM_TEST = 2**32 - 1  # the epoch key of test clips at random times (fine-tuning's clip top-1)


def seed_of(*key: int) -> int:
    """A 32-bit seed for one random draw, from a key such as (seed, epoch, video index, purpose)."""
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0])


def normalize() -> v2.Compose:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def crop_transform(cfg: ActionEvalConfig) -> v2.Compose:
    """A clip's random geometry: one RandomResizedCrop(image_size, scale (min_area, 1)) and flip for all
    its frames (v2 treats (t, 3, H, W) as a batch sharing its random parameters)."""
    return v2.Compose(
        [v2.RandomResizedCrop(cfg.image_size, scale=(cfg.min_area, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    )


def colour_transform(cfg: ActionEvalConfig) -> v2.Compose:
    """A clip's random colour jitter (one draw for all its frames), then float and normalisation."""
    return v2.Compose([v2.ColorJitter(*cfg.color_jitter), normalize()])


def train_transform(cfg: ActionEvalConfig) -> v2.Compose:
    return v2.Compose([crop_transform(cfg), colour_transform(cfg)])


def test_crop(cfg: ActionEvalConfig) -> v2.Compose:
    return v2.Compose([v2.Resize(cfg.resize, antialias=True), v2.CenterCrop(cfg.image_size)])


def test_transform(cfg: ActionEvalConfig) -> v2.Compose:
    return v2.Compose([test_crop(cfg), normalize()])


class TrainClips:
    """``count`` clips (default ``train_clips``) at random times of a video, each with its own draw of
    ``transform`` (default: crop, flip and colour); every draw comes from (seed, epoch, video index)."""

    def __init__(self, cfg: ActionEvalConfig, epoch: int, count: int | None = None, transform=None):
        self.cfg, self.epoch = cfg, epoch
        self.count = cfg.train_clips if count is None else count
        self.transform = transform or train_transform(cfg)

    def __call__(self, frames: Tensor, fps: float, index: int) -> Tensor:
        cfg = self.cfg
        generator = torch.Generator().manual_seed(seed_of(cfg.seed, self.epoch, index, POSITIONS))
        indices = clip_frames(len(frames), fps, cfg.clip_frames, cfg.clip_fps, self.count, generator)
        seed = seed_of(cfg.seed, self.epoch, index, GEOMETRY)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torch.stack([self.transform(frames[clip]) for clip in indices])


class TestClips:
    """``count`` clips (default ``test_clips``) of a video, resized and centre-cropped (``transform``,
    default: also normalised): spread evenly over it, or at random times drawn from (seed, video index)."""

    def __init__(self, cfg: ActionEvalConfig, count: int | None = None, random: bool = False, transform=None):
        self.cfg, self.random = cfg, random
        self.count = cfg.test_clips if count is None else count
        self.transform = transform or test_transform(cfg)

    def __call__(self, frames: Tensor, fps: float, index: int) -> Tensor:
        cfg = self.cfg
        generator = None
        if self.random:
            generator = torch.Generator().manual_seed(seed_of(cfg.seed, RANDOM_TEST, index, POSITIONS))
        indices = clip_frames(len(frames), fps, cfg.clip_frames, cfg.clip_fps, self.count, generator)
        return torch.stack([self.transform(frames[clip]) for clip in indices])

    def __repr__(self) -> str:
        cfg, where = self.cfg, "at random times" if self.random else "spread evenly"
        return (
            f"TestClips({self.count} clips {where}, {cfg.clip_frames} frames at {cfg.clip_fps} fps, {self.transform!r})"
        )


def learning_rate(cfg: ActionEvalConfig, epoch: int) -> float:
    return cfg.lr * cfg.lr_decay ** sum(epoch >= m for m in cfg.milestones)


@dataclass(frozen=True)
class Epoch:
    """One epoch of the protocols' schedule: AVID-CMA's classifier warm-up at a constant lr, then the
    main phase with lr x ``lr_decay`` at each milestone (each phase starts with a fresh Adam)."""

    phase: Literal["warm-up", "main"]
    number: int  # within its phase, from 0
    lr: float


def schedule(cfg: ActionEvalConfig) -> list[Epoch]:
    warmup = [Epoch("warm-up", e, cfg.lr) for e in range(cfg.warmup_epochs)]
    return warmup + [Epoch("main", e, learning_rate(cfg, e)) for e in range(cfg.epochs)]


def clip_accuracy(probabilities: Tensor, labels: Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Top-k (%) of every clip on its own; ``probabilities`` is (videos, clips, classes)."""
    clips = probabilities.shape[1]
    return topk_accuracy(probabilities.flatten(0, 1), labels.repeat_interleave(clips), ks)


def video_accuracy(probabilities: Tensor, labels: Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Top-k (%) of each video's clips' softmax averaged; ``probabilities`` is (videos, clips, classes)."""
    return topk_accuracy(probabilities.mean(dim=1), labels, ks)


@torch.no_grad()
def adapting_clip_features(
    net: nn.Module, clips: VideoClips, group: int, generator: torch.Generator, workers: int, device: torch.device
) -> Tensor:
    """(videos, K, C) clip features like :func:`clip_features`, with ``net``'s BatchNorm in train mode: the
    videos in a random order, ``group`` at a time; the k-th clips of a group's videos are one forward pass,
    normalised together, and every pass updates the running statistics. ``net``'s weights do not change.
    A group is held in memory: at the paper's sizes (64 videos, 10 clips of 8 frames at 224 px) 3 GB."""
    order = torch.randperm(len(clips), generator=generator)
    loader = DataLoader(Subset(clips, order.tolist()), batch_size=None, num_workers=workers)
    net.train()
    parts: list[Tensor] = []
    pending: list[Tensor] = []

    def flush() -> None:
        batch = torch.stack(pending)  # (videos, K, t, 3, h, w)
        videos, count, frames = batch.shape[:3]
        passes = [net(batch[:, k].flatten(0, 1).to(device)).float().view(videos, frames, -1) for k in range(count)]
        parts.append(torch.stack([features.mean(dim=1).cpu() for features in passes], dim=1))
        pending.clear()

    for video_clips, _ in tqdm(loader, total=len(clips), desc="clips, BatchNorm adapting", dynamic_ncols=True):
        pending.append(video_clips)
        if len(pending) == group:
            flush()
    if pending:
        flush()
    return torch.cat(parts)[order.argsort()]


def action_recognition(
    backbone: FrozenBackbone,
    train: Sequence[Video],
    test: Sequence[Video],
    classes: int,
    read_video: VideoReader,
    cfg: ActionEvalConfig,
    eval_cfg: EvalConfig,
    cache: FeatureCache,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train the dropout + linear classifier on the frozen backbone's clip features; video top-1 (%)."""
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(backbone.width, classes)).to(backbone.device)
    train_labels = torch.tensor([label for _, label in train])
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = None
    history = LossHistory()  # warm-up and main epochs, one history
    adapting = copy.deepcopy(backbone.net) if cfg.batch_norm == "train" else None  # the checkpoint's stays as it is
    for step, epoch in enumerate(tqdm(schedule(cfg), desc="action recognition", dynamic_ncols=True)):
        if epoch.number == 0:  # AVID-CMA starts the warm-up and the main phase with a fresh Adam
            optimizer = torch.optim.Adam(classifier.parameters(), lr=epoch.lr, weight_decay=0.0)
        for group in optimizer.param_groups:
            group["lr"] = epoch.lr
        clips = VideoClips(train, read_video, TrainClips(cfg, step))
        if adapting is None:
            desc = f"{epoch.phase} epoch {epoch.number + 1}"
            features = clip_features(backbone, clips, eval_cfg.batch_size, eval_cfg.workers, desc)
        else:
            order = torch.Generator().manual_seed(seed_of(cfg.seed, step))  # the epoch's order of videos
            features = adapting_clip_features(adapting, clips, cfg.batch_size, order, eval_cfg.workers, backbone.device)
        features = features.flatten(0, 1)
        labels = train_labels.repeat_interleave(cfg.train_clips)
        order = torch.randperm(len(features), generator=generator)
        classifier.train()
        losses = []
        for batch in order.split(cfg.batch_size):
            logits = classifier(features[batch].to(backbone.device))
            batch_loss = nn.functional.cross_entropy(logits, labels[batch].to(backbone.device))
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            optimizer.step()
            losses.append(batch_loss.item())
        loss = history.add_epoch(losses)
        log.info("%s epoch %d: lr %.3g, loss %.4f", epoch.phase, epoch.number + 1, epoch.lr, loss)
        if on_epoch is not None:
            on_epoch(step + 1, {"train_loss": loss, "lr": epoch.lr})

    sampler = TestClips(cfg)
    tested = backbone if adapting is None else FrozenBackbone(adapting, backbone.width, backbone.device)
    test_features = cache.get(
        "action-test",
        tested.digest,  # adapted statistics: another key
        lambda: files_digest([path for path, _ in test], [label for _, label in test]),
        repr(sampler),
        lambda: clip_features(
            tested, VideoClips(test, read_video, sampler), eval_cfg.batch_size, eval_cfg.workers, "test clips"
        ),
    )
    test_labels = torch.tensor([label for _, label in test])
    classifier.eval()
    with torch.no_grad():
        probabilities = classifier(test_features.flatten(0, 1).to(backbone.device)).softmax(dim=1).cpu()
    probabilities = probabilities.view(len(test), cfg.test_clips, -1)
    video = video_accuracy(probabilities, test_labels)
    clip = clip_accuracy(probabilities, test_labels, ks=(1,))
    backbone.check_unchanged()
    return {
        "top1": video[1],
        "top5": video[5],
        "clip_top1": clip[1],
        "train_loss": history.last,
        **divergence_flags("action classifier", history),
        "train_videos": len(train),
        "test_videos": len(test),
        "classes": classes,
        "seconds": time.perf_counter() - started,
    }


def action_evaluation(config: Config, output: Path) -> Evaluate:
    """Action recognition on UCF101's split ``eval.action.split``."""
    cfg = config.eval.action
    classes, train, test = read_split(config.data.ucf101_root, cfg.split)

    def evaluate(frozen: FrozenBackbone, mlflow_run: MlflowRun) -> dict[str, Any]:
        cache = FeatureCache(config.eval.cache_dir)
        return action_recognition(
            frozen, train, test, len(classes), read_video, cfg, config.eval, cache, on_epoch=mlflow_run.log_epoch
        )

    return evaluate
