"""Video features from a per-frame 2D backbone: the protocols' frame and clip sampling, and the
features of K clips of t frames per video (per-frame pooled features averaged over each clip).

A video is ``(path, label)``; ``read_video(path) -> (uint8 (T, H, W, 3), fps)`` decodes it, so the
same code serves UCF101 through PyAV and any other source of frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
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


def clip_indices(frame_count: int, video_fps: float, start: float, length: int, fps: float) -> list[int]:
    """The frames of a clip of ``length`` frames sampled at ``fps`` from time ``start`` (s); a clip
    running past the video's end repeats its frames cyclically (AVID-CMA's pad_missing)."""
    times = start + np.arange(length) / fps
    indices = [int(i) for i in np.floor(times * video_fps + 1e-6) if i < frame_count] or [frame_count - 1]
    return [indices[k % len(indices)] for k in range(length)]


def uniform_starts(frame_count: int, video_fps: float, clip_duration: float, count: int) -> np.ndarray:
    """``count`` clip start times spread evenly over the video (the protocols' dense test clips)."""
    return np.linspace(0.0, max(0.0, frame_count / video_fps - clip_duration), count)


def linspace_frames(frame_count: int, count: int) -> np.ndarray:
    """Frame retrieval's frames: linspace(0, len - 1, count), truncated."""
    return np.linspace(0, frame_count - 1, count).astype(int)


def centred_clips(frame_count: int, count: int, length: int) -> np.ndarray:
    """Clip retrieval's clips: ``count`` clips of ``length`` frames centred at
    linspace(length / 2, len - length / 2, count), indices clamped to the video: (count, length)."""
    half = length // 2
    centres = np.linspace(half, frame_count - half, count).astype(int)
    return np.clip(centres[:, None] + np.arange(-half, length - half)[None, :], 0, frame_count - 1)


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
