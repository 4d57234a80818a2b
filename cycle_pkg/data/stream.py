"""Pretraining pairs streamed from R2V2 shards (``data.r2v2_format: shards``).

Each epoch puts the shards in a seeded order and reads their videos as one sequence. Its first
``steps_per_epoch * batch`` videos are used; the rest, fewer than one global batch, sit this epoch
out (the order changes every epoch, so not always the same ones) and the log says how many. The used
part is cut into contiguous ranges, one per DDP rank and, within a rank, one per stream: stream k
serves the steps t with t % streams == k. A stream reads its range sequentially, shuffles it with a
buffer and turns it into batches of pairs, so no video is read twice in an epoch.

Loader workers take whole streams, and what a batch holds depends on the step it serves, never on
the worker that made it: every random draw comes from (seed, epoch, rank, stream) or from
(seed, epoch, video), and a run resumed at step s has each stream skip, without decoding, the videos
it had used before s. Steps s, s+1, ... are then the same as in an uninterrupted run, whatever the
number of workers.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import IterableDataset, get_worker_info
from torchvision.io import ImageReadMode, decode_jpeg

from ..errors import ConfigError, DatasetError
from .jpeg import EncodedFrame, encoded_frame
from .pairs import PairMaker
from .shards import Frame, Sample, ShardIndex, read_samples

log = logging.getLogger(__name__)
STREAM_TAG = 0x5354  # keeps the streams' seeds apart from the items' (seed, epoch, video) seeds
RECENT = 16  # videos kept after use as replacements for a video without any readable frame


def decode_frame(frame: Frame) -> Tensor | None:
    """Decode a frame of a shard to uint8 (3, H, W); None (and a warning) if it cannot be read."""
    try:
        return decode_jpeg(torch.frombuffer(bytearray(frame.data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except RuntimeError as err:
        log.warning("skipping unreadable frame %s (%s)", frame.name, str(err).splitlines()[0][:120])
        return None


def encode_frame(frame: Frame) -> EncodedFrame | None:
    """A frame of a shard, undecoded (the device path); None (and a warning) if it is not a complete JPEG."""
    return encoded_frame(frame.data, frame.name)


@dataclass(frozen=True)
class Schedule:
    """The steps this process makes and how they are split."""

    global_batch: int
    rank: int
    world: int
    start_step: int
    total_steps: int
    workers: int  # DataLoader worker processes (0: the training process itself)

    @property
    def local_batch(self) -> int:
        return self.global_batch // self.world


class ShardPairs(IterableDataset):
    """Batches of pairs (see PairMaker) plus each video's "index", streamed from shards."""

    def __init__(self, index: ShardIndex, maker: PairMaker, streams: int, buffer: int, seed: int):
        if index.videos == 0:
            raise DatasetError(f"{index.root}: the shards hold no videos")
        self.index, self.maker, self.streams, self.buffer, self.seed = index, maker, streams, buffer, seed
        self.plan: Schedule | None = None

    def __len__(self) -> int:
        return self.index.videos

    def schedule(
        self, global_batch: int, rank: int, world: int, start_step: int, total_steps: int, workers: int
    ) -> None:
        """Fix the steps to make; call before iterating."""
        if global_batch % world:
            raise ConfigError(f"pretrain.batch_size ({global_batch}) must be divisible by the {world} processes")
        if self.index.videos < global_batch:
            raise DatasetError(
                f"{self.index.root}: {self.index.videos} videos, fewer than one batch of pretrain.batch_size="
                f"{global_batch}"
            )
        if self.streams % max(1, workers):
            raise ConfigError(f"data.shard_streams ({self.streams}) must be a multiple of pretrain.workers ({workers})")
        self.plan = Schedule(global_batch, rank, world, start_step, total_steps, workers)
        left_out = self.index.videos - self.steps_per_epoch * global_batch
        if left_out and rank == 0:
            log.info(
                "each epoch uses %d of the %d videos in %s; %d (less than a batch) sit out, others each epoch",
                self.steps_per_epoch * global_batch,
                self.index.videos,
                self.index.root,
                left_out,
            )

    @property
    def steps_per_epoch(self) -> int:
        return self.index.videos // self.plan.global_batch

    def shard_order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch, STREAM_TAG]).permutation(len(self.index.shards))

    def stream_steps(self, epoch: int, stream: int, before: int | None = None) -> int:
        """How many steps of ``epoch`` stream ``stream`` serves (of those before step ``before``)."""
        first = epoch * self.steps_per_epoch
        end = first + self.steps_per_epoch if before is None else before
        return len(range(first + (stream - first) % self.streams, end, self.streams))

    def stream_range(self, epoch: int, stream: int) -> tuple[int, int]:
        """(start, count): the positions of this rank's stream in the epoch's sequence of videos."""
        batch = self.plan.local_batch
        start = self.plan.rank * self.steps_per_epoch * batch
        start += batch * sum(self.stream_steps(epoch, k) for k in range(stream))
        return start, batch * self.stream_steps(epoch, stream)

    def read_range(self, epoch: int, start: int, count: int) -> Iterator[Sample]:
        """The videos at positions [start, start + count) of the epoch's sequence."""
        for number in self.shard_order(epoch):
            shard = self.index.shards[number]
            if count <= 0:
                return
            if start >= shard.videos:
                start -= shard.videos
                continue
            take = min(count, shard.videos - start)
            yield from read_samples(shard.path, shard.offsets[start], take)
            start, count = 0, count - take

    def stream_items(self, epoch: int, stream: int, skip: int) -> Iterator[dict[str, Any]]:
        """The stream's items in order, after consuming its first ``skip`` videos without decoding."""
        rng = np.random.default_rng([self.seed, epoch, self.plan.rank, stream, STREAM_TAG])
        buffer: list[Sample] = []
        recent: deque[Sample] = deque(maxlen=RECENT)

        def replace(generator: torch.Generator) -> tuple[Frame, ...]:
            pool = buffer + list(recent)
            if not pool:
                raise DatasetError(f"{self.index.root}: no other video to stand in for an unreadable one")
            return pool[int(torch.randint(len(pool), (1,), generator=generator))].frames

        def take() -> Sample:
            k = int(rng.integers(len(buffer)))
            buffer[k], buffer[-1] = buffer[-1], buffer[k]
            return buffer.pop()

        def emit() -> Iterator[dict[str, Any]]:
            nonlocal skip
            sample = take()
            if skip:
                skip -= 1
            else:
                video = int(sample.meta["index"])
                yield {**self.maker.make(epoch, video, sample.frames, replace), "index": video}
            recent.append(sample)

        for sample in self.read_range(epoch, *self.stream_range(epoch, stream)):
            buffer.append(sample)
            if len(buffer) >= self.buffer:
                yield from emit()
        while buffer:
            yield from emit()

    def stream_batches(self, epoch: int, stream: int, skip_batches: int) -> Iterator[dict[str, Tensor]]:
        batch = self.plan.local_batch
        items = self.stream_items(epoch, stream, skip_batches * batch)
        while chunk := list(itertools.islice(items, batch)):
            yield self.maker.collate(chunk)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        plan = self.plan
        if plan is None:
            raise RuntimeError("ShardPairs.schedule() must be called before iterating")
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        if workers != max(1, plan.workers):
            raise RuntimeError(f"scheduled for {plan.workers} loader workers, running in {workers}")
        # The loader takes batch i from worker i % workers, so this worker makes steps start + i for
        # those i; as workers divides streams, they are whole streams.
        per_epoch = self.steps_per_epoch
        start_epoch = plan.start_step // per_epoch
        streams: dict[int, Iterator[dict[str, Tensor]]] = {}
        current = -1
        for step in range(plan.start_step + worker, plan.total_steps, workers):
            epoch = step // per_epoch
            if epoch != current:
                streams, current = {}, epoch
            stream = step % self.streams
            if stream not in streams:  # skip the batches it served before the run (re)started
                done = self.stream_steps(epoch, stream, before=plan.start_step) if epoch == start_epoch else 0
                streams[stream] = self.stream_batches(epoch, stream, done)
            batch = next(streams[stream], None)
            if batch is None:
                raise RuntimeError(f"stream {stream} of epoch {epoch} ran out at step {step}")
            yield batch
