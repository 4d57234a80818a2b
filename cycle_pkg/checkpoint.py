"""Pretraining checkpoints: written atomically, found again on restart, checked against the config."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from .config import Config
from .io_utils import write_bytes_atomic
from .tracking import flatten

FORMAT = "cycle_pkg.pretrain/1"
CHECKPOINT = "checkpoint.pt"
# Settings a resumed job may change without changing what it computes.
RESUMABLE_CHANGES = (
    "pretrain.workers",
    "pretrain.checkpoint_every",
    "pretrain.log_every",
    "pretrain.max_steps",
    "mlflow.",
    "results",
    "scale",
    "world.",
    "data.",
    "eval.",
)

# ...but not these, which decide what data a step sees.
DATA_SETTINGS = tuple(
    f"data.{key}"
    for key in ("r2v2_split", "r2v2_subset", "r2v2_subset_videos", "r2v2_format", "shard_streams", "shard_buffer")
)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pretraining checkpoint of this package (format {FORMAT})")
    return state


def config_differences(saved: dict[str, Any], current: Config) -> list[str]:
    """Settings that differ between a checkpoint and the current job, ignoring harmless ones."""
    old, new = flatten(saved), flatten(current.to_dict())
    keys = sorted(set(old) | set(new))
    return [
        f"{k}: {old.get(k)!r} -> {new.get(k)!r}"
        for k in keys
        if old.get(k) != new.get(k)
        and (k in DATA_SETTINGS or not any(k == p or (p.endswith(".") and k.startswith(p)) for p in RESUMABLE_CHANGES))
    ]
