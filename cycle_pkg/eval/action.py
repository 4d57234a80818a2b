"""UCF101 action recognition on frozen per-frame features (Tables 9-10), AVID-CMA's linear setting.

A clip is 8 frames at 16 fps (0.5 s); its feature is the frozen 2D backbone's pooled features
averaged over the frames. Dropout (0.5) and one linear layer classify it. Training draws 10 random
clips per video and epoch, each with its own RandomResizedCrop(224, scale (0.08, 1)), flip and colour
jitter (0.4, 0.4, 0.4, 0.2) shared by its frames; Adam (lr 1e-4) trains the classifier alone for 5
warm-up epochs at a constant lr, then 16 epochs with lr x0.3 at epochs 6, 10 and 14, batch 64.
At test, 10 clips spread evenly over each video, Resize(256) + CenterCrop(224), their softmax
averaged: video top-1. Because the backbone is frozen, an epoch's clip features are computed first
and the classifier then runs over them in shuffled batches, which is the same computation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.transforms import v2
from tqdm import tqdm

from ..config import ActionEvalConfig, Config, EvalConfig
from ..data.augment import IMAGENET_MEAN, IMAGENET_STD
from ..data.ucf101 import clip_frames, read_split, read_video
from ..mlflow_run import MlflowRun
from .features import FeatureCache, FrozenBackbone, files_digest
from .metrics import topk_accuracy
from .registry import Evaluate
from .video import Video, VideoClips, VideoReader, clip_features

log = logging.getLogger(__name__)


def train_transform(cfg: ActionEvalConfig) -> v2.Compose:
    """One draw of crop, flip and jitter for all frames of a clip (v2 treats (t, 3, H, W) as a batch
    sharing its random parameters)."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(cfg.image_size, scale=(cfg.min_area, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(*cfg.color_jitter),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def test_transform(cfg: ActionEvalConfig) -> v2.Compose:
    return v2.Compose(
        [
            v2.Resize(cfg.resize, antialias=True),
            v2.CenterCrop(cfg.image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class TrainClips:
    """``train_clips`` clips at random times of a video, drawn from (seed, epoch, video index)."""

    def __init__(self, cfg: ActionEvalConfig, epoch: int):
        self.cfg, self.epoch, self.transform = cfg, epoch, train_transform(cfg)

    def __call__(self, frames: Tensor, fps: float, index: int) -> Tensor:
        cfg = self.cfg
        seed = int(np.random.SeedSequence([cfg.seed, self.epoch, index]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        indices = clip_frames(len(frames), fps, cfg.clip_frames, cfg.clip_fps, cfg.train_clips, generator)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the transforms draw from torch's global generator
            return torch.stack([self.transform(frames[clip]) for clip in indices])


class TestClips:
    """``test_clips`` clips spread evenly over a video, centre-cropped."""

    def __init__(self, cfg: ActionEvalConfig):
        self.cfg, self.transform = cfg, test_transform(cfg)

    def __call__(self, frames: Tensor, fps: float, index: int) -> Tensor:
        cfg = self.cfg
        indices = clip_frames(len(frames), fps, cfg.clip_frames, cfg.clip_fps, cfg.test_clips)
        return torch.stack([self.transform(frames[clip]) for clip in indices])

    def __repr__(self) -> str:
        cfg = self.cfg
        return f"TestClips({cfg.test_clips} clips, {cfg.clip_frames} frames at {cfg.clip_fps} fps, {self.transform!r})"


def learning_rate(cfg: ActionEvalConfig, epoch: int) -> float:
    return cfg.lr * cfg.lr_decay ** sum(epoch >= m for m in cfg.milestones)


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
    schedule = [("warm-up", e, cfg.lr) for e in range(cfg.warmup_epochs)]
    schedule += [("main", e, learning_rate(cfg, e)) for e in range(cfg.epochs)]
    optimizer = None
    loss = float("nan")
    for step, (phase, epoch, lr) in enumerate(tqdm(schedule, desc="action recognition", dynamic_ncols=True)):
        if epoch == 0:  # AVID-CMA starts the warm-up and the main phase with a fresh Adam
            optimizer = torch.optim.Adam(classifier.parameters(), lr=lr, weight_decay=0.0)
        for group in optimizer.param_groups:
            group["lr"] = lr
        clips = VideoClips(train, read_video, TrainClips(cfg, step))
        features = clip_features(backbone, clips, eval_cfg.batch_size, eval_cfg.workers, f"{phase} epoch {epoch + 1}")
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
        loss = sum(losses) / len(losses)
        log.info("%s epoch %d: lr %.3g, loss %.4f", phase, epoch + 1, lr, loss)
        if on_epoch is not None:
            on_epoch(step + 1, {"train_loss": loss, "lr": lr})

    sampler = TestClips(cfg)
    test_features = cache.get(
        "action-test",
        backbone.digest,
        lambda: files_digest([path for path, _ in test], [label for _, label in test]),
        repr(sampler),
        lambda: clip_features(
            backbone, VideoClips(test, read_video, sampler), eval_cfg.batch_size, eval_cfg.workers, "test clips"
        ),
    )
    test_labels = torch.tensor([label for _, label in test])
    classifier.eval()
    with torch.no_grad():
        probabilities = classifier(test_features.flatten(0, 1).to(backbone.device)).softmax(dim=1).cpu()
    probabilities = probabilities.view(len(test), cfg.test_clips, -1)
    video = topk_accuracy(probabilities.mean(dim=1), test_labels, ks=(1, 5))
    clip = topk_accuracy(probabilities.flatten(0, 1), test_labels.repeat_interleave(cfg.test_clips), ks=(1,))
    backbone.check_unchanged()
    return {
        "top1": video[1],
        "top5": video[5],
        "clip_top1": clip[1],
        "train_loss": loss,
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
