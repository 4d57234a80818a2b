"""Training SiamFC's 1x1 convolutions on GOT-10k pairs, the backbone frozen, with the authors' recipe:
Adam, lr 1e-3 decayed exponentially to 1e-5 over 50 epochs, batch 8, focal loss, one pair per
sequence and epoch from frames fewer than 100 apart (siamfc-pytorch's pair sampling and frame filter).

Every random draw of a pair comes from (seed, epoch, index), so a run is repeatable whatever the
number of loader workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ...config import SIAMFC_STRIDE, TrackEvalConfig
from ...errors import DatasetError
from .crops import logistic_labels, training_pair
from .sequences import TrackingSequence, load_frame
from .siamfc import SiamFC, focal_loss

log = logging.getLogger(__name__)
MAX_PAIR_ATTEMPTS = 100


def valid_frames(boxes: np.ndarray, image_size: tuple[int, int], cfg: TrackEvalConfig) -> np.ndarray:
    """Indices of frames fit for training: box sides within [min_box_side, max_box_side] pixels and
    within [1%, 50%] of the image's, aspect ratio within [1/4, 4]."""
    sides = boxes[:, 2:]
    relative = sides / np.asarray(image_size, dtype=np.float64)[None, :]
    aspect = boxes[:, 2] / np.maximum(1, boxes[:, 3])
    keep = (
        (boxes[:, 2] * boxes[:, 3] >= 20)
        & np.all(sides >= cfg.min_box_side, axis=1)
        & np.all(sides <= cfg.max_box_side, axis=1)
        & np.all(relative >= 0.01, axis=1)
        & np.all(relative <= 0.5, axis=1)
        & (aspect >= 0.25)
        & (aspect <= 4)
    )
    return np.flatnonzero(keep)


def choose_pair(valid: np.ndarray, max_gap: int, rng: np.random.Generator) -> tuple[int, int]:
    """Two valid frames, the exemplar's first, fewer than ``max_gap`` apart; one frame twice when no
    such pair turns up."""
    if len(valid) == 1:
        return int(valid[0]), int(valid[0])
    for _ in range(MAX_PAIR_ATTEMPTS):
        first, second = np.sort(rng.choice(valid, 2, replace=False))
        if second - first < max_gap:
            return int(first), int(second)
    frame = int(rng.choice(valid))
    return frame, frame


class TrainingPairs(Dataset):
    """One (exemplar, search) pair per usable sequence; ``epoch`` selects the pairs' random draws."""

    def __init__(self, sequences: Sequence[TrackingSequence], cfg: TrackEvalConfig):
        self.cfg, self.epoch = cfg, 0
        self.sequences, self.valid = [], []
        for name, frames, boxes in sequences:
            with Image.open(frames[0]) as first:
                valid = valid_frames(boxes, first.size, cfg)
            if len(valid):
                self.sequences.append((name, frames, boxes))
                self.valid.append(valid)
        if not self.sequences:
            raise DatasetError(
                "no training sequence has a frame whose box passes the size filter "
                f"(eval.track.min_box_side={cfg.min_box_side}, max_box_side={cfg.max_box_side}, 1-50% of the image)"
            )

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, self.epoch, index])
        _, frames, boxes = self.sequences[index]
        z, x = choose_pair(self.valid[index], cfg.max_frame_gap, rng)
        return training_pair(
            load_frame(frames[z]),
            boxes[z],
            load_frame(frames[x]),
            boxes[x],
            cfg.exemplar_size,
            cfg.instance_size,
            cfg.context,
            rng,
        )


def train_siamfc(
    net: SiamFC,
    sequences: Sequence[TrackingSequence],
    cfg: TrackEvalConfig,
    workers: int,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float | int]:
    """Train the head of ``net`` in place; returns the last epoch's loss and the data's size."""
    pairs = TrainingPairs(sequences, cfg)
    log.info("SiamFC training: %d of %d sequences have usable frames", len(pairs), len(sequences))
    head = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(head, lr=cfg.lr)
    decay = (cfg.final_lr / cfg.lr) ** (1 / cfg.epochs)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, decay)
    labels: Tensor | None = None
    loss_value = float("nan")
    net.train()
    for epoch in tqdm(range(cfg.epochs), desc="SiamFC training", dynamic_ncols=True):
        pairs.epoch = epoch
        loader = DataLoader(
            pairs,
            batch_size=cfg.batch_size,
            shuffle=True,
            num_workers=workers,
            generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch),
        )
        losses = []
        for exemplars, searches in loader:
            responses = net(exemplars, searches)
            if labels is None or labels.shape[-2:] != responses.shape[-2:]:
                labels = logistic_labels(*responses.shape[-2:], cfg.r_pos / SIAMFC_STRIDE).to(responses.device)
            loss = focal_loss(responses, labels.expand_as(responses), cfg.focal_gamma)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        loss_value = sum(losses) / len(losses)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        log.info("SiamFC epoch %d: lr %.3g, loss %.4f", epoch + 1, lr, loss_value)
        if on_epoch is not None:
            on_epoch(epoch + 1, {"siamfc_loss": loss_value, "siamfc_lr": lr})
    net.eval()
    return {"train_loss": loss_value, "train_sequences": len(pairs), "response_size": int(labels.shape[-1])}
