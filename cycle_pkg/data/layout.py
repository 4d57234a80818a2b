"""Where the data of a data configuration live, outside the results: R2V2's shards and the synthetic
world's stamp. The workflow names these at parse time, so free of torch (the shards' reader and
writer, cycle_pkg.data.shards, decode JPEGs with torchvision). What the jobs write under the results
folder is named by cycle_pkg.jobs.layout."""

from __future__ import annotations

from pathlib import Path

from ..settings.sections import DataConfig

SHARD_INDEX = "index.json"  # a complete shard folder's index, written last
WORLD_STAMP = "world.json"  # the settings of a complete synthetic world, written last


def subset_videos(data: DataConfig) -> int | None:
    return data.r2v2_subset_videos if data.r2v2_subset else None


def shard_dir(data: DataConfig) -> Path:
    """``<r2v2_shards>/<split>``, or ``<split>-s<count>`` for R2V2-S, so both can be kept side by side."""
    count = subset_videos(data)
    return Path(data.r2v2_shards) / (data.r2v2_split if count is None else f"{data.r2v2_split}-s{count}")


def shard_index(data: DataConfig) -> Path:
    return shard_dir(data) / SHARD_INDEX


def world_stamp(root: str | Path) -> Path:
    return Path(root) / WORLD_STAMP
