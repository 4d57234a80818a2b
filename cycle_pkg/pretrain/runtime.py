"""Where this process runs and when it must stop: the process group torchrun describes, the
processes' common answer to a preemption, and the SLURM time limit a job requeues itself before.
Kept apart so that the step loop asks "stop now?" without knowing about ranks or SLURM."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..jobs import slurm
from ..jobs.preemption import PreemptionFlag
from ..settings.config import Config

log = logging.getLogger(__name__)
# Steps between the processes' agreeing on a preemption: each agreement is a collective the host waits
# for, and a step of 32 images a GPU takes milliseconds; SLURM allows a stopping job ~30 s or more
PREEMPTION_EVERY = 10


@dataclass
class Runtime:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_runtime() -> Runtime:
    """Join the process group that torchrun describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Runtime(dist.get_rank() if world > 1 else 0, world, device)


def preemption_agreed(flag: PreemptionFlag, runtime: Runtime, step: int) -> int:
    """0, REQUEUE or STOP, the same on every process: at once in one process; over several, at the
    first step after any process was asked that is a multiple of PREEMPTION_EVERY."""
    requested = flag.poll()
    if runtime.world == 1:
        return requested
    if step % PREEMPTION_EVERY:
        return 0
    agreed = torch.tensor([float(requested)], device=runtime.device)
    dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
    return int(agreed.item())


def time_limit_deadline(config: Config, runtime: Runtime) -> float | None:
    """When rank 0 of a SLURM job stops to checkpoint and requeue the job: ``pretrain.requeue_margin``
    seconds before its time limit (as squeue says it when the session starts)."""
    margin, job = config.pretrain.requeue_margin, slurm.job_id()
    if not runtime.is_main or margin <= 0 or job is None:
        return None
    left = slurm.seconds_left(job)
    if left is None:
        return None
    if left <= margin:
        log.warning(
            "SLURM job %s has %.0f s left, less than pretrain.requeue_margin (%d s): not requeueing it",
            job,
            left,
            margin,
        )
        return None
    log.info("SLURM job %s: %.0f s left; it checkpoints and requeues itself %d s before its limit", job, left, margin)
    return time.monotonic() + left - margin
