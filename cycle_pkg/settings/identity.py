"""The settings that make a pretraining run what it is: those a checkpoint is checked against on
resuming, and the fingerprint of them that the workflow reruns a run on. Free of torch, so that
reading the Snakefile (every `snakemake` call, and every job of a cluster run) imports none."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .config import Config
from .facts import SETTING_FACTS
from .typed_yaml import flatten


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
