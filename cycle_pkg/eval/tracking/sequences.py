"""Tracking sequences as the readers give them (:data:`cycle_pkg.data.toolkit.TrackingSequence`), checked
for the tracker, their frames as tensors, and the set the got10k toolkit's experiments iterate over."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ...data.toolkit import TrackingSequence
from ...errors import DatasetError


def check_sequences(sequences: Sequence[TrackingSequence], what: str) -> list[TrackingSequence]:
    """The sequences with their boxes as float arrays; a clear error for one whose boxes and frames
    disagree, or whose first box (the tracker's initialisation) is empty."""
    if not sequences:
        raise DatasetError(f"{what}: no sequences to use")
    checked = []
    for name, frames, boxes in sequences:
        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise DatasetError(f"{what}, sequence {name}: expected boxes of shape (N, 4), got {boxes.shape}")
        if len(frames) != len(boxes):
            raise DatasetError(
                f"{what}, sequence {name}: {len(frames)} frames but {len(boxes)} ground-truth boxes; "
                "every frame needs exactly one box (check its groundtruth file against its frames)"
            )
        if len(frames) < 2:
            raise DatasetError(f"{what}, sequence {name}: needs at least two frames")
        if not np.isfinite(boxes[0]).all() or boxes[0, 2] <= 0 or boxes[0, 3] <= 0:
            raise DatasetError(f"{what}, sequence {name}: the first box {boxes[0].tolist()} is empty")
        checked.append((name, [str(f) for f in frames], boxes))
    return checked


def load_frame(path: str | Path) -> Tensor:
    """An RGB frame as float (3, H, W) in 0..255, the range SiamFC's crops and mean colours use."""
    with Image.open(path) as image:
        return image_tensor(image)


def image_tensor(image: Image.Image | np.ndarray) -> Tensor:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    return torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)


class SequenceSet:
    """Sequences in the shape the got10k toolkit's experiments iterate over: ``seq_names``, and
    ``(frame files, boxes)`` by index or name."""

    def __init__(self, sequences: Sequence[TrackingSequence]):
        self.seq_names = [name for name, _, _ in sequences]
        self._items = {name: (list(frames), boxes) for name, frames, boxes in sequences}

    def __len__(self) -> int:
        return len(self.seq_names)

    def __getitem__(self, index: int | str) -> tuple[list[str], np.ndarray]:
        return self._items[index if isinstance(index, str) else self.seq_names[index]]

    def __iter__(self) -> Iterator[tuple[list[str], np.ndarray]]:
        return (self._items[name] for name in self.seq_names)
