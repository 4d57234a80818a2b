"""Pretraining checkpoints: written atomically, found again on restart, checked against the config."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from .config import SETTING_FACTS, Config
from .io_utils import write_bytes_atomic
from .typed_yaml import flatten

FORMAT = "cycle_pkg.pretrain/1"
CHECKPOINT = "checkpoint.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pretraining checkpoint of this package (format {FORMAT})")
    return state


def affects_training(key: str) -> bool:
    """Whether a (flattened) setting changes what a pretraining run computes from a checkpoint on:
    the most specific entry of SETTING_FACTS with a say on resuming (the key's own, else its
    section's) decides; a setting none speaks of does."""
    covering = [
        facts
        for facts in SETTING_FACTS
        if facts.resumable is not None and (key == facts.key or (facts.key.endswith(".") and key.startswith(facts.key)))
    ]
    return not covering or not max(covering, key=lambda facts: len(facts.key)).resumable


def training_settings(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flatten(config).items() if affects_training(k)}


def config_differences(saved: dict[str, Any], current: Config) -> list[str]:
    """Settings that differ between a checkpoint and the current job, ignoring harmless ones."""
    old, new = training_settings(saved), training_settings(current.to_dict())
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def fingerprint(config: Config) -> str:
    """A short digest of what a pretraining run computes: the workflow reruns a run whose
    fingerprint changed (Snakemake's `params` trigger), whatever the files' times."""
    settings = {**training_settings(config.to_dict()), "pretrain.max_steps": config.pretrain.max_steps}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
