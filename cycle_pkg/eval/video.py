"""Video features from a per-frame 2D backbone: K clips of t frames per video, each clip's feature
the per-frame pooled features averaged over its frames.

A video is ``(path, label)``; ``read_video(path) -> (uint8 (T, H, W, 3), fps)`` decodes it (UCF101's
reader, or any other source of frames); a sampler picks and transforms the clips (the protocols'
frame and clip indices come from :mod:`cycle_pkg.data.ucf101`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..errors import DatasetError
from .features import FrozenBackbone

Video = tuple[str | Path, int]
VideoReader = Callable[[str | Path], tuple[Tensor, float]]
# (frames (T, 3, H, W) uint8, fps, video index) -> clips (K, t, 3, h, w) float
ClipSampler = Callable[[Tensor, float, int], Tensor]


class VideoClips(Dataset):
    """videos[i] -> (clips (K, t, 3, h, w), label), clips drawn by ``sampler``."""

    def __init__(self, videos: Sequence[Video], read_video: VideoReader, sampler: ClipSampler):
        self.videos, self.read_video, self.sampler = videos, read_video, sampler

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.videos[index]
        frames, fps = self.read_video(path)
        if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise DatasetError(f"{path}: expected decoded frames of shape (T, H, W, 3), got {tuple(frames.shape)}")
        return self.sampler(frames.permute(0, 3, 1, 2), float(fps), index), label


@torch.no_grad()
def clip_features(backbone: FrozenBackbone, dataset: VideoClips, batch_size: int, workers: int, desc: str) -> Tensor:
    """(videos, K, C): the per-frame features of each clip, averaged over its frames. Frames of
    consecutive videos share forward passes of up to ``batch_size`` images."""
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers)
    features: list[Tensor] = []
    pending: list[Tensor] = []

    def flush() -> None:
        per_frame = torch.cat(
            [backbone(chunk).cpu() for chunk in torch.cat([c.flatten(0, 1) for c in pending]).split(batch_size)]
        )
        for clips, part in zip(pending, per_frame.split([c.shape[0] * c.shape[1] for c in pending]), strict=True):
            features.append(part.view(*clips.shape[:2], -1).mean(dim=1))
        pending.clear()

    for clips, _ in tqdm(loader, total=len(dataset), desc=desc, dynamic_ncols=True):
        pending.append(clips)
        if sum(c.shape[0] * c.shape[1] for c in pending) >= batch_size:
            flush()
    if pending:
        flush()
    return torch.stack(features)
