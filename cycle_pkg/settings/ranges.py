"""The values each number setting may take (of a list: each of its numbers), by settings class: the
JSON schema of params.yaml bounds the numbers with them, and the checks (:mod:`.checks`) refuse a
value outside them. The cross-field checks (a queue of whole batches, top-K within the neighbour set,
...) are in :mod:`.checks`, and each evaluation's own in its settings module."""

from __future__ import annotations

import dataclasses
import importlib
import typing

from .sections import (
    DataConfig,
    EvalConfig,
    LossConfig,
    MlflowConfig,
    ModelConfig,
    MonitorConfig,
    PretrainConfig,
    WorkflowConfig,
    WorldConfig,
)
from .typed_yaml import AT_LEAST_0, AT_LEAST_1, FRACTION, POSITIVE, Range

RANGES: dict[type, dict[str, Range]] = {
    WorldConfig: {
        "seed": AT_LEAST_0,
        "frame_height": Range(16),
        "frame_width": Range(16),
        "pattern_scale": POSITIVE,
        **dict.fromkeys(
            (
                "classes",
                "videos",
                "val_videos",
                "images_per_class",
                "val_images_per_class",
                "ucf101_motions",
                "ucf101_groups",
                "ucf101_clips",
                "ucf101_frames",
                "got10k_sequences",
                "got10k_frames",
                "otb_frames",
            ),
            AT_LEAST_1,
        ),
    },
    DataConfig: {
        **dict.fromkeys(
            (
                "r2v2_downloads_in_flight",
                "r2v2_subset_videos",
                "shard_videos",
                "shard_streams",
                "shard_buffer",
                "download_retries",
            ),
            AT_LEAST_1,
        ),
        "shard_short_side": Range(16),
        "shard_quality": Range(1, 100),
        "download_timeout": POSITIVE,
    },
    ModelConfig: {
        "embed_dim": AT_LEAST_1,
        "momentum": FRACTION,
        "intra_queue": AT_LEAST_1,
        "cycle_queue": AT_LEAST_1,
        "bn_momentum": Range(0, 1, low_open=True),
    },
    LossConfig: {
        "lambda_cycle": AT_LEAST_0,
        "temperature": POSITIVE,
        "nn_temperature": POSITIVE,
        "neighbors": AT_LEAST_1,
        "topk": AT_LEAST_1,
    },
    MonitorConfig: {
        "bank_per_class": AT_LEAST_1,
        "queries_per_class": AT_LEAST_1,
        "image_size": Range(16),
        "k": AT_LEAST_1,
        "temperature": POSITIVE,
        "videos": AT_LEAST_0,
    },
    PretrainConfig: {
        "epochs": AT_LEAST_1,
        "batch_size": AT_LEAST_1,
        "lr": POSITIVE,
        "sgd_momentum": FRACTION,
        "weight_decay": AT_LEAST_0,
        "image_size": Range(16),
        "workers": AT_LEAST_0,
        "seed": AT_LEAST_0,
        "checkpoint_every": AT_LEAST_1,
        "log_every": AT_LEAST_1,
        "max_steps": AT_LEAST_1,
        "monitor_every": AT_LEAST_0,  # 0: no monitor
        "requeue_margin": AT_LEAST_0,
    },
    EvalConfig: {"batch_size": AT_LEAST_1, "workers": AT_LEAST_0},
    WorkflowConfig: {"seeds": AT_LEAST_0},
    MlflowConfig: {"outage_seconds": AT_LEAST_0},
}


def _evaluations() -> dict[type, dict[str, Range]]:
    """Each evaluation's ranges, beside it (the RANGES of cycle_pkg/eval/<task>_settings.py), found
    from the sections under ``eval`` as their checks are (checks.check_eval)."""
    ranges: dict[type, dict[str, Range]] = {}
    for section in typing.get_type_hints(EvalConfig).values():
        if dataclasses.is_dataclass(section):
            ranges.update(importlib.import_module(section.__module__).RANGES)
    return ranges


RANGES.update(_evaluations())
