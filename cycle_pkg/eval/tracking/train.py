"""Training SiamFC's 1x1 convolutions on GOT-10k pairs, the backbone frozen, with the authors' recipe:
Adam, lr 1e-3 decayed exponentially to 1e-5 over 50 epochs, batch 8, focal loss, one pair per
sequence and epoch from frames fewer than 100 apart (siamfc-pytorch's pair sampling and frame filter).

A frame is fit for training when its box passes the size and aspect filters and, where the data has
GOT-10k's per-frame visibility (``cover.label``, 0-8), its target is visible enough: cover above
max(1, 0.3 x the sequence's largest cover), as the authors' code reads it. A sequence with fewer than
two such frames gives no pair of its own: its place in the epoch goes to another usable sequence.

Every random draw of a pair comes from (seed, epoch, index), so a run is repeatable whatever the
number of loader workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ...errors import DatasetError
from ..divergence import LossHistory, divergence_flags
from ..track_settings import SIAMFC_STRIDE, TrackEvalConfig
from .crops import logistic_labels, training_pair
from .sequences import TrackingSequence, load_frame
from .siamfc import SiamFC, focal_loss

log = logging.getLogger(__name__)
MAX_PAIR_ATTEMPTS = 100


def valid_frames(
    boxes: np.ndarray, image_size: tuple[int, int], cfg: TrackEvalConfig, cover: np.ndarray | None = None
) -> np.ndarray:
    """Indices of frames fit for training: box sides within [min_box_side, max_box_side] pixels and
    within [1%, 50%] of the image's, aspect ratio within [1/4, 4], and, given the per-frame ``cover``,
    a target visible enough (:func:`visible`)."""
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
    if cover is not None:
        if len(cover) != len(boxes):
            raise DatasetError(f"{len(cover)} cover labels for {len(boxes)} boxes: every frame needs one of each")
        keep &= visible(cover)
    return np.flatnonzero(keep)


def visible(cover: np.ndarray) -> np.ndarray:
    """GOT-10k frames whose target is visible enough to train on: cover (0 = hidden ... 8 = whole)
    above max(1, 0.3 x the sequence's largest cover)."""
    cover = np.asarray(cover, dtype=np.float64)
    return cover > max(1.0, 0.3 * float(cover.max(initial=0)))


def choose_pair(valid: np.ndarray, max_gap: int, rng: np.random.Generator) -> tuple[int, int]:
    """Two of at least two valid frames, the exemplar's first, fewer than ``max_gap`` apart (of just
    two: those two, whatever their gap); one frame twice when no such pair turns up in 100 draws."""
    if len(valid) == 2:
        return int(valid[0]), int(valid[1])
    for _ in range(MAX_PAIR_ATTEMPTS):
        first, second = np.sort(rng.choice(valid, 2, replace=False))
        if second - first < max_gap:
            return int(first), int(second)
    frame = int(rng.choice(valid))
    return frame, frame


class TrainingPairs(Dataset):
    """One (exemplar, search) pair per training sequence and epoch; ``epoch`` selects the pairs' random
    draws. ``covers`` (sequence name -> per-frame cover) adds the visibility filter. A sequence with
    fewer than two usable frames lends its place to a usable one drawn at random (never a same-frame
    pair of its own), so an epoch has as many pairs as there are sequences."""

    def __init__(
        self, sequences: Sequence[TrackingSequence], cfg: TrackEvalConfig, covers: Mapping[str, np.ndarray] | None
    ):
        self.cfg, self.epoch = cfg, 0
        self.sequences, self.valid = list(sequences), []
        for name, frames, boxes in self.sequences:
            with Image.open(frames[0]) as first:
                self.valid.append(valid_frames(boxes, first.size, cfg, None if covers is None else covers[name]))
        self.usable = [i for i, valid in enumerate(self.valid) if len(valid) >= 2]
        if not self.usable:
            raise DatasetError(
                "no training sequence has two frames whose boxes pass the size filter "
                f"(eval.track.min_box_side={cfg.min_box_side}, max_box_side={cfg.max_box_side}, 1-50% of the image)"
                + (" and whose targets are visible (cover.label above max(1, 0.3 x its maximum))" if covers else "")
            )

    def __len__(self) -> int:
        return len(self.sequences)

    def pair(self, index: int, rng: np.random.Generator) -> tuple[int, int, int]:
        """Item ``index``'s sequence and its exemplar and search frames."""
        if len(self.valid[index]) < 2:
            index = self.usable[int(rng.integers(len(self.usable)))]
        return (index, *choose_pair(self.valid[index], self.cfg.max_frame_gap, rng))

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, self.epoch, index])
        sequence, z, x = self.pair(index, rng)
        _, frames, boxes = self.sequences[sequence]
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
    covers: Mapping[str, np.ndarray] | None = None,
) -> dict[str, float | int | bool | str]:
    """Train the head of ``net`` in place (``covers``: see :class:`TrainingPairs`); returns the last
    epoch's loss, whether the training diverged, and the data's size."""
    pairs = TrainingPairs(sequences, cfg, covers)
    log.info(
        "SiamFC training: %d of %d sequences have two usable frames%s",
        len(pairs.usable),
        len(sequences),
        " (size, aspect and visibility filters)" if covers is not None else " (size and aspect filters)",
    )
    head = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(head, lr=cfg.lr)
    decay = (cfg.final_lr / cfg.lr) ** (1 / cfg.epochs)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, decay)
    labels: Tensor | None = None
    history = LossHistory()
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
        loss_value = history.add_epoch(losses)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        log.info("SiamFC epoch %d: lr %.3g, loss %.4f", epoch + 1, lr, loss_value)
        if on_epoch is not None:
            on_epoch(epoch + 1, {"siamfc_loss": loss_value, "siamfc_lr": lr})
    net.eval()
    return {
        "train_loss": history.last,
        **divergence_flags("SiamFC training", history),
        "train_sequences": len(pairs.usable),
        "response_size": int(labels.shape[-1]),
    }
