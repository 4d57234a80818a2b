"""What a checkpoint holds and every step advances (:class:`Training`): the seeded model, its
optimiser, the run's counters and the representation monitor, built afresh or resumed, and wrapped
in DDP over several processes."""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from ..data.pretrain_input import images_format
from ..jobs import slurm
from ..model import CycleContrast
from ..settings.config import Config
from .monitor import Monitor, build_monitor
from .runtime import Runtime

log = logging.getLogger(__name__)
# The queues are identical on every rank by construction: broadcasting them (and BN statistics) from
# rank 0 at every forward would move ~75 MB per step for nothing. torch 2.14 renamed the switch.
NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)
# What a run counts over its sessions (kept in checkpoints): frames it skipped, seconds of training
# steps (the monitor's looks excluded) and, within those, seconds its steps waited for the loader;
# the SLURM requeues of its job.
COUNTERS = {"skipped_frames": 0, "train_seconds": 0.0, "data_wait_seconds": 0.0, "requeues": 0}


@dataclass
class Training:
    """What a checkpoint holds and every step advances."""

    run: str
    config: Config
    model: CycleContrast
    network: torch.nn.Module  # the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    memory_format: torch.memory_format
    steps_per_epoch: int
    total_steps: int
    step: int = 0
    counters: dict[str, Any] = field(default_factory=lambda: dict(COUNTERS))
    monitor: Monitor | None = None  # on rank 0, unless pretrain.monitor_every is 0

    def checkpoint(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "run": self.run,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "counters": self.counters,
            "monitor": None if self.monitor is None else self.monitor.state_dict(),
        }


def build_training(
    config: Config, run: str, runtime: Runtime, steps_per_epoch: int, total_steps: int, state: dict[str, Any] | None
) -> Training:
    """The seeded model and its SGD optimiser, resumed from ``state`` if given, wrapped in DDP when
    there are several processes."""
    p, cuda = config.pretrain, runtime.device.type == "cuda"
    torch.manual_seed(p.seed)
    model = CycleContrast(config.model, config.loss, seed=p.seed).to(runtime.device)
    memory_format = images_format(config, runtime.device)
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(
        [q for q in model.parameters() if q.requires_grad],
        lr=p.lr,
        momentum=p.sgd_momentum,
        weight_decay=p.weight_decay,
    )
    training = Training(run, config, model, model, optimizer, memory_format, steps_per_epoch, total_steps)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        training.step, training.counters = state["step"], {**COUNTERS, **state["counters"]}
        log.info("resuming %s from step %d of %d", run, training.step, total_steps)
    slurm.count_requeues(training.counters)
    if runtime.world > 1:
        training.network = DistributedDataParallel(
            model, device_ids=[runtime.device.index] if cuda else None, **NO_BUFFER_SYNC
        )
    return training


def attach_monitor(training: Training, runtime: Runtime, state: dict[str, Any] | None) -> None:
    """The representation monitor, on rank 0 only (the other ranks go on to their next step and wait
    for rank 0 in its collectives), with its curve so far when the run resumes."""
    if not runtime.is_main:
        return
    training.monitor = build_monitor(training.config, runtime.device, training.memory_format)
    if training.monitor is not None and state is not None and state.get("monitor"):
        training.monitor.load_state_dict(state["monitor"])
