"""Checks of the settings beyond their types and ranges (:mod:`.ranges`): what one setting alone cannot
express (a queue that whole batches fill, a neighbour set that leaves negatives, ...), section by
section; each evaluation's own are its settings' ``check`` (``cycle_pkg/eval/<task>_settings.py``).
:func:`.config.load_config` runs them; every message names the keys and what to change."""

from __future__ import annotations

import dataclasses
import re

from ..errors import ConfigError
from .sections import PAPER_GPUS, DataConfig, EvalConfig, LossConfig, ModelConfig, PretrainConfig, WorldConfig

# A run's name is one folder under results/ (and a file name of its metrics): these characters, not . or ..
RUN_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def check_run_name(name: str, where: str) -> str:
    """``name`` if it is a run name, else a ConfigError naming ``where`` it came from."""
    if not RUN_NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(
            f"{where} {name!r}: a run name is one folder under the results folder, made of letters, digits, "
            "'-', '_' and '.' (not '.' or '..')"
        )
    return name


def check_training(model: ModelConfig, loss: LossConfig, pretrain: PretrainConfig) -> None:
    """The method's queues, neighbour set and key BatchNorm groups against the batch."""
    if loss.components in ("intra_video+cycle", "cycle") and loss.neighbors >= model.cycle_queue:
        raise ConfigError(
            f"loss.neighbors ({loss.neighbors}) must be smaller than model.cycle_queue ({model.cycle_queue}): "
            "the rest of the cycle queue are the backward step's negatives"
        )
    if loss.topk is not None and loss.topk > loss.neighbors:
        raise ConfigError(f"loss.topk ({loss.topk}) must lie in [1, loss.neighbors={loss.neighbors}]")
    for name in ("intra_queue", "cycle_queue"):
        size = getattr(model, name)
        if size % pretrain.batch_size:
            raise ConfigError(
                f"model.{name} ({size}) must be divisible by the global batch pretrain.batch_size "
                f"({pretrain.batch_size}) so that whole batches are enqueued"
            )
    group = model.key_bn_group_size(pretrain.batch_size)
    if group < 2 or pretrain.batch_size % group:
        what = (
            f"model.key_bn_group ({group})" if model.key_bn_group else f"pretrain.batch_size / {PAPER_GPUS} ({group})"
        )
        raise ConfigError(
            f"{what} must be at least 2 and divide pretrain.batch_size ({pretrain.batch_size}): keys are "
            "BatchNorm-ed in groups of that many samples; set model.key_bn_group to such a size"
        )


def check_seeds(seeds: list[int]) -> None:
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"workflow.seeds: expected one or more different seeds, e.g. [0, 1, 2], got {seeds}")


def check_tables(tables: list[str]) -> None:
    from ..reproduction.paper import (
        paper_tables,  # here: the paper's tables read the evaluations, which read the settings
    )

    unknown = sorted(set(tables) - set(paper_tables()))
    if unknown:
        raise ConfigError(f"workflow.tables: unknown tables {unknown}; expected some of {', '.join(paper_tables())}")


def check_eval(cfg: EvalConfig) -> None:
    """Each evaluation's own checks, in the order of its section under ``eval``."""
    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        if dataclasses.is_dataclass(section):
            section.check(f"eval.{f.name}")


def check_data(data: DataConfig, world: WorldConfig, pretrain: PretrainConfig) -> None:
    workers = max(1, pretrain.workers)
    if data.r2v2_format == "shards" and data.shard_streams % workers:
        raise ConfigError(
            f"data.shard_streams ({data.shard_streams}) must be a multiple of pretrain.workers ({workers}) "
            "so that every loader process reads whole streams"
        )
    if "{name}" not in data.otb_url:
        raise ConfigError(f"data.otb_url ({data.otb_url}) must contain {{name}}, the sequence's name")
    if len(world.got10k_sequences) != 3:
        raise ConfigError("world.got10k_sequences: expected three positive counts [train, val, test]")
    if len(world.pattern_scale) != 2 or world.pattern_scale[0] > world.pattern_scale[1]:
        raise ConfigError(f"world.pattern_scale ({world.pattern_scale}): expected [low, high] with low <= high")
