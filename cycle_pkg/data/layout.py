"""Where the shards of a data configuration live: a path the workflow names at parse time, so free of
torch (the shards' reader and writer, cycle_pkg.data.shards, decode JPEGs with torchvision)."""

from __future__ import annotations

from pathlib import Path

from ..settings.sections import DataConfig


def subset_videos(data: DataConfig) -> int | None:
    return data.r2v2_subset_videos if data.r2v2_subset else None


def shard_dir(data: DataConfig) -> Path:
    """``<r2v2_shards>/<split>``, or ``<split>-s<count>`` for R2V2-S, so both can be kept side by side."""
    count = subset_videos(data)
    return Path(data.r2v2_shards) / (data.r2v2_split if count is None else f"{data.r2v2_split}-s{count}")
