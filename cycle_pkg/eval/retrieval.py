"""UCF101 nearest-neighbour retrieval on frozen features (Table 11).

Frame retrieval (Buchler et al.'s protocol): 10 frames per video at linspace(0, len - 1, 10),
Resize((256, 256)) + CenterCrop(224). Clip retrieval (Xu et al.'s retrieve_clips.py): 10 clips of
16 frames centred at linspace(8, len - 8, 10), Resize((128, 171)) + CenterCrop(112); a clip's
feature is its frames' features averaged. Either way the 10 features of a video are averaged, every
test video queries the training videos by cosine similarity, and a query counts as correct at k
when one of its k nearest neighbours has its class (k = 1, 5, 10, 20, 50).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchvision.transforms import v2

from ..data.augment import IMAGENET_MEAN, IMAGENET_STD
from ..data.ucf101 import centred_clips, linspace_frames, read_split, read_video
from ..jobs.mlflow_job import MlflowRun
from ..settings.config import Config
from ..settings.sections import EvalConfig
from .features import FeatureCache, FrozenBackbone, files_digest
from .metrics import retrieval_chance, retrieval_topk
from .registry import Evaluate
from .retrieval_settings import RetrievalEvalConfig
from .video import Video, VideoClips, VideoReader, clip_features


def _transform(resize: tuple[int, int], crop: int) -> v2.Compose:
    return v2.Compose(
        [
            v2.Resize(resize, antialias=True),
            v2.CenterCrop(crop),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class RetrievalFrames:
    """Frame retrieval's samples as clips of one frame: (frames_per_video, 1, 3, crop, crop)."""

    def __init__(self, cfg: RetrievalEvalConfig):
        self.count = cfg.frames_per_video
        self.transform = _transform((cfg.frame_resize, cfg.frame_resize), cfg.frame_crop)

    def __call__(self, frames: Tensor, fps: float, index: int) -> Tensor:
        return self.transform(frames[linspace_frames(len(frames), self.count)])[:, None]

    def __repr__(self) -> str:
        return f"RetrievalFrames(count={self.count}, {self.transform!r})"


class RetrievalClips:
    """Clip retrieval's samples: (clips_per_video, clip_length, 3, crop, crop)."""

    def __init__(self, cfg: RetrievalEvalConfig):
        self.count, self.length = cfg.clips_per_video, cfg.clip_length
        self.transform = _transform(tuple(cfg.clip_resize), cfg.clip_crop)

    def __call__(self, frames: Tensor, fps: float, index: int) -> Tensor:
        indices = centred_clips(len(frames), self.length, self.count)
        return self.transform(frames[indices.reshape(-1)]).unflatten(0, (self.count, self.length))

    def __repr__(self) -> str:
        return f"RetrievalClips(count={self.count}, length={self.length}, {self.transform!r})"


def video_features(
    backbone: FrozenBackbone,
    videos: Sequence[Video],
    read_video: VideoReader,
    sampler: RetrievalFrames | RetrievalClips,
    name: str,
    eval_cfg: EvalConfig,
    cache: FeatureCache,
) -> Tensor:
    """(videos, C): the average of each video's frame or clip features."""
    features = cache.get(
        name,
        backbone.digest,
        lambda: files_digest([path for path, _ in videos], [label for _, label in videos]),
        repr(sampler),
        lambda: clip_features(
            backbone, VideoClips(videos, read_video, sampler), eval_cfg.batch_size, eval_cfg.workers, name
        ),
    )
    return features.mean(dim=1)


def retrieval(
    backbone: FrozenBackbone,
    train: Sequence[Video],
    test: Sequence[Video],
    read_video: VideoReader,
    cfg: RetrievalEvalConfig,
    eval_cfg: EvalConfig,
    cache: FeatureCache,
) -> dict[str, Any]:
    """Frame and clip retrieval top-k (%), test videos querying training videos."""
    started = time.perf_counter()
    train_labels = torch.tensor([label for _, label in train])
    test_labels = torch.tensor([label for _, label in test])
    metrics: dict[str, Any] = {}
    for mode, sampler in (("frame", RetrievalFrames(cfg)), ("clip", RetrievalClips(cfg))):
        gallery = video_features(backbone, train, read_video, sampler, f"retrieval-{mode}-train", eval_cfg, cache)
        queries = video_features(backbone, test, read_video, sampler, f"retrieval-{mode}-test", eval_cfg, cache)
        scores = retrieval_topk(queries, test_labels, gallery, train_labels, cfg.topk)
        metrics.update({f"{mode}_top{k}": value for k, value in scores.items()})
    backbone.check_unchanged()
    chance = retrieval_chance(test_labels, train_labels, cfg.topk)  # what a random ranking scores, for the tables
    metrics.update({f"chance_top{k}": value for k, value in chance.items()})
    metrics.update(train_videos=len(train), test_videos=len(test), seconds=time.perf_counter() - started)
    return metrics


def retrieval_evaluation(config: Config, output: Path) -> Evaluate:
    """Frame and clip retrieval on UCF101's split ``eval.retrieval.split``."""
    _, train, test = read_split(config.data.ucf101_root, config.eval.retrieval.split)

    def evaluate(frozen: FrozenBackbone, mlflow_run: MlflowRun) -> dict[str, Any]:
        cache = FeatureCache(config.eval.cache_dir)
        return retrieval(frozen, train, test, read_video, config.eval.retrieval, config.eval, cache)

    return evaluate
