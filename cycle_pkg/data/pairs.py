"""Pretraining samples: one item is one video, turned into a query and a positive view.

Every random choice of an item (its frames, its augmentations) is drawn from a seed derived
from (seed, epoch, index) alone, never from a worker's RNG, so that the data of step s is the
same whether a run went there in one go or was interrupted and resumed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from ..errors import DatasetError

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


class PairMaker:
    """Turns the frames of one video into {"query", "positive"[, "query_view"], "skipped"}.

    The query is a view of a random frame I_i, the positive a view of another random frame I_j
    of the same video (possibly I_i itself), or of I_i when ``same_frame`` (intra-image learning).
    ``query_view`` adds a second view of I_i (Table 5's k_++). Unreadable frames are skipped and
    counted in "skipped"; a video with no readable frame is replaced by another one.
    """

    def __init__(
        self,
        transform: Callable[[Tensor], Tensor],
        same_frame: bool = False,
        query_view: bool = False,
        seed: int = 0,
        reader: Callable[[Any], Tensor | None] = read_rgb,
    ):
        self.transform, self.reader = transform, reader
        self.same_frame, self.query_view, self.seed = same_frame, query_view, seed

    def _draw(self, frames: Sequence[Any], decoded: dict[int, Tensor | None], rng: torch.Generator) -> Tensor | None:
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
    ) -> tuple[Tensor, Tensor, int]:
        skipped = 0
        for _ in range(MAX_VIDEO_ATTEMPTS):
            decoded: dict[int, Tensor | None] = {}
            first = self._draw(frames, decoded, rng)
            second = first if self.same_frame else self._draw(frames, decoded, rng)
            skipped += sum(image is None for image in decoded.values())
            if first is not None and second is not None:
                return first, second, skipped
            frames = replace(rng)
        raise DatasetError(f"no readable frame in {MAX_VIDEO_ATTEMPTS} videos in a row: check the frames on disk")

    def make(
        self, epoch: int, index: int, frames: Sequence[Any], replace: Callable[[torch.Generator], Sequence[Any]]
    ) -> dict[str, Tensor | int]:
        """The item of video ``index`` in ``epoch``; ``replace(rng)`` gives the frames of another video."""
        seed = derived_seed(self.seed, epoch, index)
        rng = torch.Generator().manual_seed(seed)
        frame_i, frame_j, skipped = self._pick_frames(frames, rng, replace)
        # torchvision's transforms draw from the global RNG: fork it so the draws depend on the
        # item alone and the caller's RNG is left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            item: dict[str, Tensor | int] = {"query": self.transform(frame_i), "positive": self.transform(frame_j)}
            if self.query_view:
                item["query_view"] = self.transform(frame_i)
        item["skipped"] = skipped
        return item


class VideoPairs(PairMaker, Dataset):
    """``dataset[(epoch, index)]`` -> the pair item (see PairMaker) of video ``index`` of ``videos``."""

    def __init__(
        self,
        videos: Sequence[Sequence[str | Path]],
        transform: Callable[[Tensor], Tensor],
        same_frame: bool = False,
        query_view: bool = False,
        seed: int = 0,
        reader: Callable[[str | Path], Tensor | None] = read_rgb,
    ):
        if not videos:
            raise DatasetError("no videos to train on: the id list names none")
        super().__init__(transform, same_frame, query_view, seed, reader)
        self.videos = videos

    def __len__(self) -> int:
        return len(self.videos)

    def _random_video(self, rng: torch.Generator) -> Sequence[str | Path]:
        return self.videos[int(torch.randint(len(self.videos), (1,), generator=rng))]

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Tensor | int]:
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
