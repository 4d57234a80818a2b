"""Pretraining samples: one item is one video, turned into a query and a positive view.

Every random choice of an item (its frames, its augmentations' parameters) is drawn from a seed
derived from (seed, epoch, index) alone, never from a worker's RNG, so that the data of step s is
the same whether a run went there in one go or was interrupted and resumed.

An item holds either its augmented views (the CPU-worker path: the worker decodes and augments) or,
with ``encoded``, the JPEG bytes of its frames and each view's parameters (the device path: the
training process decodes and augments whole batches, ``batch_augment``); both draw the same
parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler, default_collate
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from ..errors import DatasetError
from .augment import MocoV2
from .jpeg import EncodedFrame

log = logging.getLogger(__name__)
MAX_VIDEO_ATTEMPTS = 100


def derived_seed(*entropy: int) -> int:
    return int(np.random.SeedSequence(list(entropy)).generate_state(1, dtype=np.uint64)[0])


def read_rgb(path: str | Path) -> Tensor | None:
    """Decode a JPEG file to a uint8 (3, H, W) tensor; None (and a warning) if it cannot be read."""
    try:
        return decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB)
    except (RuntimeError, OSError) as err:
        log.warning("skipping unreadable frame %s (%s)", path, str(err).splitlines()[0][:120])
        return None


VIEWS = ("query", "positive", "query_view")  # the views an item may hold, in batch order


class PairMaker:
    """Turns the frames of one video into {"query", "positive"[, "query_view"], "skipped"}.

    The query is a view of a random frame I_i, the positive a view of another random frame I_j
    of the same video (possibly I_i itself), or of I_i when ``same_frame`` (intra-image learning).
    ``query_view`` adds a second view of I_i (Table 5's k_++). Unreadable frames are skipped and
    counted in "skipped"; a video with no readable frame is replaced by another one. With
    ``encoded`` the reader gives EncodedFrames and the item holds "jpeg" (the bytes of I_i, then of
    I_j unless it is I_i) and, per view, its parameters with "frame", the position of its source in
    "jpeg" (see ``collate_encoded``).
    """

    def __init__(
        self,
        augment: MocoV2,
        same_frame: bool = False,
        query_view: bool = False,
        seed: int = 0,
        reader: Callable[[Any], Tensor | EncodedFrame | None] = read_rgb,
        encoded: bool = False,
    ):
        self.augment, self.reader, self.encoded = augment, reader, encoded
        self.same_frame, self.query_view, self.seed = same_frame, query_view, seed

    def _draw(self, frames: Sequence[Any], decoded: dict[int, Any], rng: torch.Generator) -> Any:
        """A random readable frame of the video; ``decoded`` caches reads (None = unreadable)."""
        candidates = [k for k in range(len(frames)) if decoded.get(k, True) is not None]
        while candidates:
            k = candidates[int(torch.randint(len(candidates), (1,), generator=rng))]
            if k not in decoded:
                decoded[k] = self.reader(frames[k])
            if decoded[k] is not None:
                return decoded[k]
            candidates.remove(k)
        return None

    def _pick_frames(
        self, frames: Sequence[Any], rng: torch.Generator, replace: Callable[[torch.Generator], Sequence[Any]]
    ) -> tuple[Any, Any, int]:
        skipped = 0
        for _ in range(MAX_VIDEO_ATTEMPTS):
            decoded: dict[int, Any] = {}
            first = self._draw(frames, decoded, rng)
            second = first if self.same_frame else self._draw(frames, decoded, rng)
            skipped += sum(image is None for image in decoded.values())
            if first is not None and second is not None:
                return first, second, skipped
            frames = replace(rng)
        raise DatasetError(f"no readable frame in {MAX_VIDEO_ATTEMPTS} videos in a row: check the frames on disk")

    def make(
        self, epoch: int, index: int, frames: Sequence[Any], replace: Callable[[torch.Generator], Sequence[Any]]
    ) -> dict[str, Any]:
        """The item of video ``index`` in ``epoch``; ``replace(rng)`` gives the frames of another video."""
        seed = derived_seed(self.seed, epoch, index)
        frame_i, frame_j, skipped = self._pick_frames(frames, torch.Generator().manual_seed(seed), replace)
        sources = {"query": frame_i, "positive": frame_j, "query_view": frame_i}
        names = VIEWS if self.query_view else VIEWS[:2]
        # The augmentations' own stream from the same seed: the draws torchvision's pipeline made
        # from the global RNG after torch.manual_seed(seed), without touching the global RNG.
        draws = torch.Generator().manual_seed(seed)
        params = {name: self.augment.draw(*sources[name].shape[-2:], draws) for name in names}
        item: dict[str, Any]
        if self.encoded:
            jpeg = [frame_i] if frame_j is frame_i else [frame_i, frame_j]
            item = {"jpeg": jpeg}
            for name in names:
                item[name] = {**params[name].tensors(), "frame": torch.tensor(0 if sources[name] is frame_i else 1)}
        else:
            item = {name: self.augment.apply(sources[name], params[name]) for name in names}
        item["skipped"] = skipped
        return item

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_encoded(items) if self.encoded else default_collate(items)


def collate_encoded(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch of encoded items: "jpeg" (every frame's bytes, concatenated, uint8) with "jpeg_offsets"
    (F + 1), "frame_sizes" (F, 2: height, width) and "frame_names"; per view, its parameters stacked,
    with "frame" the position of its source among the F frames; the other fields stacked. One tensor
    for all the bytes, so that a loader worker hands over a batch in a few pieces of shared memory."""
    frames: list[EncodedFrame] = []
    views: dict[str, list[dict[str, Tensor]]] = {}
    rest: list[dict[str, Any]] = []
    for item in items:
        first = len(frames)
        frames.extend(item["jpeg"])
        for name in VIEWS:
            if name in item:
                views.setdefault(name, []).append({**item[name], "frame": item[name]["frame"] + first})
        rest.append({k: v for k, v in item.items() if k != "jpeg" and k not in VIEWS})
    lengths = torch.tensor([0] + [len(frame.data) for frame in frames])
    return {
        "jpeg": torch.cat([frame.data for frame in frames]),
        "jpeg_offsets": torch.cumsum(lengths, 0),
        "frame_sizes": torch.tensor([[frame.height, frame.width] for frame in frames]),
        "frame_names": [frame.name for frame in frames],
        **{name: default_collate(params) for name, params in views.items()},
        **default_collate(rest),
    }


class VideoPairs(PairMaker, Dataset):
    """``dataset[(epoch, index)]`` -> the pair item (see PairMaker) of video ``index`` of ``videos``."""

    def __init__(
        self,
        videos: Sequence[Sequence[str | Path]],
        augment: MocoV2,
        same_frame: bool = False,
        query_view: bool = False,
        seed: int = 0,
        reader: Callable[[str | Path], Tensor | EncodedFrame | None] = read_rgb,
        encoded: bool = False,
    ):
        if not videos:
            raise DatasetError("no videos to train on: the id list names none")
        super().__init__(augment, same_frame, query_view, seed, reader, encoded)
        self.videos = videos

    def __len__(self) -> int:
        return len(self.videos)

    def _random_video(self, rng: torch.Generator) -> Sequence[str | Path]:
        return self.videos[int(torch.randint(len(self.videos), (1,), generator=rng))]

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        return self.make(epoch, index, self.videos[index], self._random_video)


class StepSampler(Sampler[tuple[int, int]]):
    """(epoch, index) keys for this process's share of every step from ``start_step`` on.

    Each epoch is a seeded permutation of the dataset cut into global batches (the remainder is
    dropped, as in MoCo); process ``rank`` takes its contiguous slice of each global batch, so no
    video is read twice in an epoch.
    """

    def __init__(
        self, size: int, global_batch: int, rank: int, world: int, seed: int, start_step: int, total_steps: int
    ):
        if global_batch % world:
            raise ValueError(f"pretrain.batch_size ({global_batch}) must be divisible by the {world} processes")
        self.steps_per_epoch = size // global_batch
        if self.steps_per_epoch == 0:
            raise DatasetError(
                f"the dataset has {size} videos, fewer than one batch of pretrain.batch_size={global_batch}"
            )
        self.size, self.global_batch, self.local_batch = size, global_batch, global_batch // world
        self.rank, self.seed, self.start_step, self.total_steps = rank, seed, start_step, total_steps

    def epoch_order(self, epoch: int) -> Tensor:
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(derived_seed(self.seed, epoch)))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order, order_epoch = None, -1
        for step in range(self.start_step, self.total_steps):
            epoch, within = divmod(step, self.steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = self.epoch_order(epoch), epoch
            start = within * self.global_batch + self.rank * self.local_batch
            for index in order[start : start + self.local_batch].tolist():
                yield epoch, index

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step) * self.local_batch
