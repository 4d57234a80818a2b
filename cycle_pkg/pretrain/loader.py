"""This process's share of the steps as a DataLoader: the same steps whatever the rank, the worker
count or the step a run resumes at, so that a resumed run repeats an uninterrupted one."""

from __future__ import annotations

from torch.utils.data import DataLoader

from ..data.pairs import StepSampler, VideoPairs
from ..data.stream import ShardPairs
from ..jobs.preemption import ignore_in_worker
from ..settings.config import Config
from .runtime import Runtime


def build_loader(
    dataset: VideoPairs | ShardPairs, config: Config, runtime: Runtime, start_step: int, total_steps: int
) -> DataLoader:
    """The loader of this process's share of steps start_step..total_steps."""
    p = config.pretrain
    options = dict(
        num_workers=p.workers,
        pin_memory=runtime.device.type == "cuda",
        worker_init_fn=ignore_in_worker if p.workers else None,
        prefetch_factor=4 if p.workers else None,
    )
    if isinstance(dataset, ShardPairs):
        dataset.schedule(p.batch_size, runtime.rank, runtime.world, start_step, total_steps, p.workers)
        return DataLoader(dataset, batch_size=None, **options)
    sampler = StepSampler(len(dataset), p.batch_size, runtime.rank, runtime.world, p.seed, start_step, total_steps)
    return DataLoader(dataset, batch_size=sampler.local_batch, sampler=sampler, collate_fn=dataset.collate, **options)
