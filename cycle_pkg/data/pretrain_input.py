"""Where a pretraining run's data path is chosen, once. ``pretrain.augment_on`` decides both which
reader makes the items (loose JPEGs or shards; views augmented in the loader workers, or JPEG bytes
and parameters for MoCo v2 on the training device) and how the feed turns their batches into the
model's views: decided apart, the two could disagree, and the feed would have to guess from a batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..model import uses_same_frame_positive
from ..settings.config import Config
from .augment import moco_v2
from .feed import DeviceFeed
from .jpeg import read_jpeg
from .layout import shard_dir, subset_videos
from .pairs import PairMaker, VideoPairs, read_rgb
from .r2v2 import load_videos
from .shards import read_index
from .stream import ShardPairs, decode_frame, encode_frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainInput:
    """A run's dataset and the feed that matches its items."""

    dataset: VideoPairs | ShardPairs
    feed: DeviceFeed


def pretrain_input(config: Config, device: torch.device) -> PretrainInput:
    """The dataset and its feed for training on ``device``: MoCo v2 in the loader workers, or in
    batches on ``device`` (pretrain.augment_on)."""
    encoded = augments_on_device(config, device)
    log.info("MoCo v2 %s", f"in batches on {device}" if encoded else "in the loader workers")
    return PretrainInput(build_dataset(config, encoded), device_feed(config, device, encoded))


def augments_on_device(config: Config, device: torch.device) -> bool:
    """Whether MoCo v2 runs on the training device (pretrain.augment_on; "auto": on CUDA)."""
    choice = config.pretrain.augment_on
    return device.type == "cuda" if choice == "auto" else choice == "device"


def images_format(config: Config, device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (pretrain.channels_last): the layout of the model's weights and images."""
    return torch.channels_last if device.type == "cuda" and config.pretrain.channels_last else torch.contiguous_format


def build_dataset(config: Config, encoded: bool) -> VideoPairs | ShardPairs:
    """Loose JPEGs in the R2V2 layout, or shards (data.r2v2_format), of the split or of R2V2-S; its
    items are augmented views, or JPEG bytes and parameters when ``encoded`` (the device path)."""
    data = config.data
    views = dict(
        same_frame=uses_same_frame_positive(config.loss),
        query_view=config.loss.query_view_in_neighbors,
        seed=config.pretrain.seed,
        encoded=encoded,
    )
    if data.r2v2_format == "shards":
        index = read_index(shard_dir(data), data.r2v2_split, subset_videos(data))
        reader = encode_frame if encoded else decode_frame
        maker = PairMaker(moco_v2(config.pretrain.image_size), reader=reader, **views)
        return ShardPairs(index, maker, data.shard_streams, data.shard_buffer, config.pretrain.seed)
    videos = load_videos(data.r2v2_root, data.r2v2_split, subset_videos(data))
    return VideoPairs(videos, moco_v2(config.pretrain.image_size), reader=read_jpeg if encoded else read_rgb, **views)


def device_feed(config: Config, device: torch.device, encoded: bool) -> DeviceFeed:
    """The views of each step (the query, its positive and Table 5's k_++) on the training device, in
    the model's layout; prepared ahead on a stream of their own on CUDA."""
    cuda = device.type == "cuda"
    memory_format = images_format(config, device)
    return DeviceFeed(device, config.pretrain.image_size, encoded=encoded, memory_format=memory_format, prefetch=cuda)
