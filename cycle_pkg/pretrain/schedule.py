"""How long a run trains and how fast it learns: the cosine learning rate, the steps of an epoch and
in all, and the check that the queues fit an epoch. Pure arithmetic on the settings, so that a
resumed run plans exactly as the run it continues."""

from __future__ import annotations

import math

from ..errors import ConfigError
from ..model import uses_cycle, uses_intra
from ..settings.config import Config, PretrainConfig
from .summary import planned_steps


def cosine_lr(base: float, step: int, total: int) -> float:
    return base * 0.5 * (1 + math.cos(math.pi * step / total))


def learning_rate(config: Config, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The cosine schedule's lr for ``step`` (from 0): set at each epoch's start from the epochs done
    (``pretrain.lr_schedule: epoch``, MoCo's adjust_learning_rate, the authors'), or at every step."""
    p = config.pretrain
    if p.lr_schedule == "epoch":
        return cosine_lr(p.lr, step // steps_per_epoch, p.epochs)
    return cosine_lr(p.lr, step, total_steps)


def plan_steps(config: Config, videos: int) -> tuple[int, int]:
    """Steps per epoch and in all, after checking that the queues fit an epoch's keys."""
    p = config.pretrain
    steps_per_epoch = videos // p.batch_size
    check_queues_fit_epoch(config, steps_per_epoch * p.batch_size)
    return steps_per_epoch, steps_to_train(p, steps_per_epoch)


def steps_to_train(p: PretrainConfig, steps_per_epoch: int) -> int:
    """The planned steps, or fewer where ``pretrain.max_steps`` stops the run early."""
    planned = planned_steps(steps_per_epoch, p.epochs)
    return planned if p.max_steps is None else min(planned, p.max_steps)


def check_queues_fit_epoch(config: Config, keys_per_epoch: int) -> None:
    """Refuse a queue longer than an epoch's keys: it would hold each video's own earlier keys among
    its negatives (and, for the cycle queue, in the neighbour set U), so that the loss fights itself.
    The paper's queues (65536 and 81920) are shorter than R2V2-S (109.5k videos)."""
    for name, in_use in (("intra_queue", uses_intra(config.loss)), ("cycle_queue", uses_cycle(config.loss))):
        size = getattr(config.model, name)
        if in_use and size > keys_per_epoch:
            raise ConfigError(
                f"model.{name} ({size}) is longer than the {keys_per_epoch} keys an epoch enqueues: each video's "
                f"own earlier keys would be among its negatives. Choose model.{name} <= {keys_per_epoch}, "
                "or train on more videos"
            )
