"""The pretraining loop: DDP (NCCL on GPU, gloo on CPU), bf16 autocast, checkpoint / resume,
preemption signals, progress and MLflow.

A job is identified by its run folder. Restarting the same command resumes from the folder's last
checkpoint; with a fixed seed on CPU the resumed run ends with the same weights as an
uninterrupted one, because every random draw is either saved in the checkpoint (the neighbour
sampler) or derived from (seed, epoch, index) (the data).

``_pretrain`` is the job's outline, in the manner of MoCo's ``main_worker``: restore, build the data
and the :class:`Training` (with its representation monitor on rank 0), start the MLflow run,
:func:`train_steps`, summarize. A step of :func:`train_steps` (MoCo's ``train``) is: the batch's
views on the device (a ``DeviceFeed``, which decodes and augments the batch there on the device data
path, ``pretrain.augment_on``; the window counts the time it waits for them), :func:`train_step`, the
monitor's look when due (:func:`look`), the :class:`MetricsWindow` and its report, a checkpoint when
due (:func:`save`).
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import resource
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.augment import moco_v2
from ..data.feed import DeviceFeed
from ..data.jpeg import read_jpeg
from ..data.layout import shard_dir, subset_videos
from ..data.pairs import PairMaker, StepSampler, VideoPairs, read_rgb
from ..data.r2v2 import load_videos
from ..data.shards import read_index
from ..data.stream import ShardPairs, decode_frame, encode_frame
from ..errors import ConfigError, NonFiniteLoss, Preempted
from ..jobs import slurm
from ..jobs.atomic import stale_temporaries, write_json_atomic, write_text_atomic
from ..jobs.attempts import attempts_log
from ..jobs.layout import MLFLOW_RUN_ID as RUN_ID
from ..jobs.layout import SUMMARY
from ..jobs.mlflow_job import MlflowRun
from ..jobs.preemption import REQUEUE, WITH_INTERRUPT, PreemptionFlag, ignore_in_worker
from ..model import CycleContrast, uses_cycle, uses_intra, uses_same_frame_positive
from ..reproduction.grid import grid_tags
from ..settings.config import Config, PretrainConfig
from ..settings.identity import config_differences
from .monitor import FEATURES, PICTURES, Monitor, build_monitor, is_due
from .state import (
    BACKBONE,
    CHECKPOINT,
    export_backbone,
    finish_folder,
    make_current,
    newest_readable,
    save_checkpoint,
)
from .summary import planned_steps, stopped_early

log = logging.getLogger(__name__)
# The queues are identical on every rank by construction: broadcasting them (and BN statistics) from
# rank 0 at every forward would move ~75 MB per step for nothing. torch 2.14 renamed the switch.
NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)
CPU = torch.device("cpu")
# Steps between the processes' agreeing on a preemption: each agreement is a collective the host waits
# for, and a step of 32 images a GPU takes milliseconds; SLURM allows a stopping job ~30 s or more
PREEMPTION_EVERY = 10
# What a run counts over its sessions (kept in checkpoints): frames it skipped, seconds of training
# steps (the monitor's looks excluded) and, within those, seconds its steps waited for the loader;
# the SLURM requeues of its job.
MONITOR_BUDGET = 0.05  # of the training time, which the monitor's looks should stay under
COUNTERS = {"skipped_frames": 0, "train_seconds": 0.0, "data_wait_seconds": 0.0, "requeues": 0}
CONFIG = "config.json"  # the settings of a run, written when it starts
T = TypeVar("T")
RUN_FILES = (CHECKPOINT, BACKBONE, SUMMARY, CONFIG, RUN_ID)  # what a run writes (atomically) into its folder


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


def cosine_lr(base: float, step: int, total: int) -> float:
    return base * 0.5 * (1 + math.cos(math.pi * step / total))


def learning_rate(config: Config, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The cosine schedule's lr for ``step`` (from 0): set at each epoch's start from the epochs done
    (``pretrain.lr_schedule: epoch``, MoCo's adjust_learning_rate, the authors'), or at every step."""
    p = config.pretrain
    if p.lr_schedule == "epoch":
        return cosine_lr(p.lr, step // steps_per_epoch, p.epochs)
    return cosine_lr(p.lr, step, total_steps)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def augments_on_device(config: Config, device: torch.device) -> bool:
    """Whether MoCo v2 runs on the training device (pretrain.augment_on; "auto": on CUDA)."""
    choice = config.pretrain.augment_on
    return device.type == "cuda" if choice == "auto" else choice == "device"


def build_dataset(config: Config, device: torch.device = CPU) -> VideoPairs | ShardPairs:
    """Loose JPEGs in the R2V2 layout, or shards (data.r2v2_format), of the split or of R2V2-S; its
    items are augmented views, or JPEG bytes and parameters when MoCo v2 runs on ``device``."""
    data = config.data
    encoded = augments_on_device(config, device)
    views = dict(
        same_frame=uses_same_frame_positive(config.loss),
        query_view=config.loss.query_view_in_neighbors,
        seed=config.pretrain.seed,
        encoded=encoded,
    )
    log.info("MoCo v2 %s", f"in batches on {device}" if encoded else "in the loader workers")
    if data.r2v2_format == "shards":
        index = read_index(shard_dir(data), data.r2v2_split, subset_videos(data))
        reader = encode_frame if encoded else decode_frame
        maker = PairMaker(moco_v2(config.pretrain.image_size), reader=reader, **views)
        return ShardPairs(index, maker, data.shard_streams, data.shard_buffer, config.pretrain.seed)
    videos = load_videos(data.r2v2_root, data.r2v2_split, subset_videos(data))
    return VideoPairs(videos, moco_v2(config.pretrain.image_size), reader=read_jpeg if encoded else read_rgb, **views)


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


def pretrain(
    config: Config,
    run: str,
    run_dir: str | Path,
    extra_tags: dict[str, str] | None = None,
    restart_on_change: bool = False,
) -> dict[str, Any]:
    """Train (or resume, or recognise as finished) the run in ``run_dir``; returns its summary.

    A run folder holding another configuration is an error, or, with ``restart_on_change`` (the
    workflow's choice when params.yaml changed), set aside as ``<run>.replaced-<time>`` so that the
    run starts afresh. A run stopped early (pretrain.max_steps) is continued when the settings ask
    for more steps.
    """
    run_dir = Path(run_dir)
    summary_path = run_dir / SUMMARY
    saved = saved_config(run_dir)
    differences = config_differences(saved, config) if saved is not None else []
    if differences and not restart_on_change:
        raise ConfigError(
            f"{run_dir} holds a run with other settings ({'; '.join(differences)}). "
            "Use the same settings to resume it, or delete its folder to train it again"
        )
    summary = json.loads(summary_path.read_text()) if not differences and summary_path.is_file() else None
    if summary is not None and summary["steps"] >= steps_to_train(config.pretrain, summary["steps_per_epoch"]):
        early = stopped_early(summary)
        log.info("%s; nothing to do", f"{run}: {early}" if early else f"{run} is complete ({summary_path} exists)")
        if int(os.environ.get("RANK", "0")) == 0:  # what a job killed after its last write left undone
            MlflowRun(config.mlflow).close_if_running(summary.get("mlflow_run_id"))
            finish_folder(run_dir, config.pretrain.keep_training_state or early is not None)
        return summary
    if summary is not None:
        log.info("%s: %s; continuing it", run, stopped_early(summary))
    runtime = init_runtime()
    try:
        if differences:
            if runtime.is_main:
                aside = run_dir.with_name(f"{run_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
                log.warning("%s: settings changed (%s); moving it to %s", run_dir, "; ".join(differences), aside)
                run_dir.rename(aside)
            if runtime.world > 1:
                dist.barrier()
        with attempts_log(run_dir):
            return _pretrain(config, run, run_dir, runtime, extra_tags or {})
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def saved_config(run_dir: Path) -> dict[str, Any] | None:
    """The settings a run folder was trained with (its summary's, else those written at its start)."""
    if (run_dir / SUMMARY).is_file():
        return json.loads((run_dir / SUMMARY).read_text())["config"]
    if (run_dir / CONFIG).is_file():
        return json.loads((run_dir / CONFIG).read_text())
    return None


def _pretrain(config: Config, run: str, run_dir: Path, runtime: Runtime, extra_tags: dict[str, str]) -> dict[str, Any]:
    """Restore, build, start the MLflow run, train, summarise (in the manner of MoCo's main_worker)."""
    checkpoint_path = run_dir / CHECKPOINT
    state = restore(run_dir, config, runtime)
    dataset = build_dataset(config, runtime.device)
    steps_per_epoch, total_steps = plan_steps(config, len(dataset))
    loader = build_loader(dataset, config, runtime, state["step"] if state else 0, total_steps)
    training = build_training(config, run, runtime, steps_per_epoch, total_steps, state)
    attach_monitor(training, runtime, state)
    if runtime.is_main and not (run_dir / CONFIG).is_file():
        write_json_atomic(run_dir / CONFIG, config.to_dict())
    mlflow_run = start_mlflow_run(training, run_dir, runtime, extra_tags)
    last_metrics = train_steps(training, loader, runtime, mlflow_run, checkpoint_path)
    summary = summarize(training, runtime, run_dir, mlflow_run.run_id, last_metrics)
    if runtime.is_main:
        if training.monitor is not None:
            training.monitor.save_features(run_dir / FEATURES, training.model.encoder_q.backbone)
            if config.pretrain.monitor.pictures:
                draw_monitor_pictures(training.monitor, run, run_dir, mlflow_run)
        finish(training, run_dir, mlflow_run, summary)
    if runtime.world > 1:
        dist.barrier()
    return summary


def draw_monitor_pictures(monitor: Monitor, run: str, run_dir: Path, mlflow_run: MlflowRun) -> None:
    """The run's kNN curve and the t-SNE embedding of its labelled set's features at the end, in the
    run folder and as MLflow artifacts."""
    from .monitor_figures import embedding_figure, knn_curve_figure

    started = time.process_time()
    summary, saved = monitor.summary(), monitor.saved_features()
    curve = knn_curve_figure(summary, f"{run}: the representation monitor", run_dir / PICTURES["curve"])
    title = f"{run}: t-SNE of the labelled set's features at step {summary['steps'][-1]}"
    embedding = embedding_figure(saved, title, run_dir / PICTURES["embedding"])
    for path in (curve, embedding):
        mlflow_run.log_artifact(str(path))
    log.info("monitor pictures drawn in %.1f CPU s", time.process_time() - started)


def restore(run_dir: Path, config: Config, runtime: Runtime) -> dict[str, Any] | None:
    """The run's newest readable checkpoint, if any (rank 0 first removes the temporaries that killed
    writes left); one written with other settings is an error."""
    if runtime.is_main:
        for name in RUN_FILES:
            for stale in stale_temporaries(run_dir / name):
                stale.unlink()
                log.warning("removed %s, left by an interrupted write", stale.name)
    found = newest_readable(run_dir)
    if runtime.world > 1:
        dist.barrier()  # every process has read it before rank 0 may rename it
    if found is None:
        return None
    path, state = found
    differences = config_differences(state["config"], config)
    if differences:
        raise ConfigError(
            f"{path} was written with other settings ({'; '.join(differences)}). "
            "Resume with the same settings, or delete the run folder to start over"
        )
    if runtime.is_main:
        make_current(path)
    return state


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


def images_format(config: Config, device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (pretrain.channels_last): the layout of the model's weights and images."""
    return torch.channels_last if device.type == "cuda" and config.pretrain.channels_last else torch.contiguous_format


def device_feed(loader: DataLoader, config: Config, runtime: Runtime) -> DeviceFeed:
    """The views of each step (the query, its positive and Table 5's k_++) on the training device, in
    the model's layout; prepared ahead on a stream of their own on CUDA."""
    cuda = runtime.device.type == "cuda"
    return DeviceFeed(loader, runtime.device, config.pretrain.image_size, images_format(config, runtime.device), cuda)


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


def pretrain_tags(config: Config, run: str) -> dict[str, str]:
    return {"cycle.job": "pretrain", "cycle.run": run, "cycle.scale": config.scale, **grid_tags(config)}


def start_mlflow_run(training: Training, run_dir: Path, runtime: Runtime, extra_tags: dict[str, str]) -> MlflowRun:
    """The run's MLflow run (rank 0 only), reopened when the job resumes: its id is kept in the run folder."""
    config, run = training.config, training.run
    mlflow_run = MlflowRun(config.mlflow, active=runtime.is_main)
    run_id_file = run_dir / RUN_ID
    previous_run_id = run_id_file.read_text().strip() if run_id_file.is_file() else None
    requeues = {"slurm.requeues": str(training.counters["requeues"])} if slurm.job_id() else {}
    tags = {**pretrain_tags(config, run), **requeues, **extra_tags}
    run_id = mlflow_run.start(run, previous_run_id, config.to_dict(), tags)
    if runtime.is_main and run_id and run_id != previous_run_id:
        write_text_atomic(run_id_file, run_id)
    return mlflow_run


class MetricsWindow:
    """The losses summed over the steps since the last report, the time those steps took (the
    monitor's looks set aside) and the part of it they waited for the loader."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.last: dict[str, float] = {}  # the latest report's metrics
        self._restart()

    def _restart(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.totals: list[torch.Tensor] = []  # each step's total loss, until it is checked
        self.steps, self.started = 0, time.perf_counter()
        self.waited = self.set_aside = 0.0

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        self.steps += 1
        for name, value in losses.items():
            self.sums[name] = self.sums.get(name, 0) + value.detach()
        self.totals.append(losses["total"].detach())

    def first_nonfinite_step(self, step: int, runtime: Runtime) -> int | None:
        """The first step since the last check (``step`` the latest) whose loss is not finite on any
        process; None if there is none. One wait for the device per check, not per step."""
        if not self.totals:
            return None
        totals, self.totals = torch.stack(self.totals).float(), []
        index = torch.arange(len(totals), device=totals.device)
        first = torch.where(torch.isfinite(totals), len(totals), index).min()
        if runtime.world > 1:  # every process stops, or none
            dist.all_reduce(first, op=dist.ReduceOp.MIN)
        first = int(first)
        return None if first == len(totals) else step - len(totals) + 1 + first

    def batches(self, feed: Iterable[T]) -> Iterator[T]:
        """The feed's items (a step's views); the seconds spent waiting for each count in the window."""
        batches = iter(feed)
        while True:
            started = time.perf_counter()
            batch = next(batches, None)
            self.waited += time.perf_counter() - started
            if batch is None:
                return
            yield batch

    def report(self, training: Training, lr: float) -> dict[str, float]:
        """The window's mean losses, rate, data wait and the run's position; its time is added to
        the run's ``train_seconds``, and the next window starts."""
        elapsed = time.perf_counter() - self.started - self.set_aside
        training.counters["train_seconds"] += elapsed
        training.counters["data_wait_seconds"] += self.waited
        metrics = {f"loss_{k}" if k != "total" else "loss": float(v) / self.steps for k, v in self.sums.items()}
        metrics.update(
            lr=lr,
            pairs_per_second=self.steps * self.batch_size / elapsed,
            data_wait_fraction=self.waited / elapsed,
            epoch=training.step / training.steps_per_epoch,
            skipped_frames=training.counters["skipped_frames"],
        )
        self.last = metrics
        self._restart()
        return metrics


def train_step(
    training: Training, views: dict[str, torch.Tensor], lr: float, autocast: torch.autocast
) -> dict[str, torch.Tensor]:
    """One SGD step at learning rate ``lr``; the step's losses."""
    for group in training.optimizer.param_groups:
        group["lr"] = lr
    with autocast:
        losses = training.network(**views)
    training.optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    training.optimizer.step()
    training.step += 1
    return losses


def check_loss(window: MetricsWindow, training: Training, runtime: Runtime) -> None:
    """Stop a run whose loss turned NaN or infinite before it logs or saves what follows from it: its
    last checkpoint, of finite weights, stays."""
    step = window.first_nonfinite_step(training.step, runtime)
    if step is not None:
        raise NonFiniteLoss(
            f"{training.run}: the loss is not finite at step {step}; the last checkpoint, from before it, is kept. "
            "Check the frames the log names as unreadable and pretrain.lr, then rerun the command to resume",
            step,
        )


def save(training: Training, checkpoint_path: Path, runtime: Runtime) -> None:
    if runtime.is_main:
        save_checkpoint(checkpoint_path, training.checkpoint())
    if runtime.world > 1:
        dist.barrier()


def train_steps(
    training: Training, loader: DataLoader, runtime: Runtime, mlflow_run: MlflowRun, checkpoint_path: Path
) -> dict[str, float]:
    """The step loop, from the restored step to the last (in the manner of MoCo's train): the
    monitor's looks when due, a checkpoint every ``checkpoint_every`` steps, at the end and on
    preemption; the last metrics."""
    p, run = training.config.pretrain, training.run
    preemption = PreemptionFlag(WITH_INTERRUPT, time_limit_deadline(training.config, runtime))
    progress = tqdm(
        total=training.total_steps, initial=training.step, desc=run, disable=not runtime.is_main, dynamic_ncols=True
    )
    window = MetricsWindow(p.batch_size)
    cuda = runtime.device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and p.amp)
    feed = iter(device_feed(loader, training.config, runtime))
    try:
        training.model.train()
        monitored = training.monitor is not None
        if monitored and training.step == 0:
            look(training, window, mlflow_run, progress)  # the initialisation: where the curve starts
        for views, skipped in window.batches(feed):
            lr = learning_rate(training.config, training.step, training.steps_per_epoch, training.total_steps)
            window.add(train_step(training, views, lr, autocast))
            training.counters["skipped_frames"] += skipped
            progress.update(1)
            last = training.step == training.total_steps
            if monitored and is_due(training.step, p.monitor_every, training.total_steps):
                look(training, window, mlflow_run, progress)
            if training.step % p.log_every == 0 or last:
                check_loss(window, training, runtime)
                log_window(window.report(training, lr), training, mlflow_run, progress)
            stopping = preemption_agreed(preemption, runtime, training.step)
            if training.step % p.checkpoint_every == 0 or last or stopping:
                check_loss(window, training, runtime)
                save(training, checkpoint_path, runtime)
            if stopping:
                raise preempted(training, runtime, mlflow_run, stopping, preemption.interrupted)
    except BaseException as err:  # stopped (preempted, interrupted) or failed (bad data, a bug)
        if isinstance(err, NonFiniteLoss):
            mlflow_run.set_tags({"cycle.failed_step": str(err.step), "cycle.failure": str(err)})
        mlflow_run.end("KILLED" if isinstance(err, (Preempted, KeyboardInterrupt)) else "FAILED")
        raise
    finally:
        feed.close()  # ends the feed's thread
        progress.close()
        preemption.restore()
    if training.step < training.total_steps:
        mlflow_run.end("FAILED")
        raise RuntimeError(f"{run}: the data ran out at step {training.step} of {training.total_steps}")
    return training.counters.get("last_metrics", {})


def preempted(
    training: Training, runtime: Runtime, mlflow_run: MlflowRun, stopping: int, interrupted: bool
) -> Preempted:
    """What every process raises once its checkpoint is saved: after rank 0 has requeued the SLURM job
    (when asked to) and ended the MLflow run. torchrun stops the other processes as soon as one of
    them exits, so no process leaves before rank 0 is done."""
    message = f"{training.run}: checkpoint saved at step {training.step}; rerun the same command to resume"
    stop = Preempted(message, requeue=stopping == REQUEUE, exit_status=130 if interrupted else 143)
    job = slurm.job_id()
    if stop.requeue and runtime.is_main and job is not None and slurm.requeue(job):
        stop.requeued = job
    mlflow_run.end("KILLED")
    if runtime.world > 1:
        dist.barrier()
    return stop


def log_window(metrics: dict[str, float], training: Training, mlflow_run: MlflowRun, progress: tqdm) -> None:
    """A window's metrics to MLflow, the progress bar and the log; the checkpoint keeps the latest for
    the summary (a run resumed at its last step has no window of its own)."""
    training.counters["last_metrics"] = metrics
    mlflow_run.log_metrics(metrics, step=training.step)
    show(progress, metrics, training.monitor)
    log.info("step %d/%d %s", training.step, training.total_steps, " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))


def look(training: Training, window: MetricsWindow, mlflow_run: MlflowRun, progress: tqdm) -> None:
    """The monitor's kNN accuracy of the query backbone and the cycle's mechanism on the embedding it
    uses (the intra head's where the run has no cycle), to MLflow, the progress bar and the log; the
    look's time is set aside from the window's."""
    started = time.perf_counter()
    encoder = training.model.encoder_q
    head = encoder.cycle_head if encoder.cycle_head is not None else encoder.intra_head
    metrics = training.monitor.look(encoder.backbone, training.step, head)
    window.set_aside += time.perf_counter() - started
    mlflow_run.log_metrics(metrics, step=training.step)
    show(progress, window.last, training.monitor)
    log.info("monitor at step %d: %s", training.step, " ".join(f"{k}={v:.2f}" for k, v in metrics.items()))


def show(progress: tqdm, metrics: dict[str, float], monitor: Monitor | None) -> None:
    """The progress bar's latest loss and rate, and the monitor's latest kNN top-1."""
    shown = {"loss": f"{metrics['loss']:.3f}", "pairs_s": f"{metrics['pairs_per_second']:.0f}"} if metrics else {}
    if monitor is not None and monitor.history:
        shown["knn_top1"] = f"{monitor.history[-1]['knn_top1']:.1f}"
    progress.set_postfix(shown)


def summarize(
    training: Training, runtime: Runtime, run_dir: Path, run_id: str | None, last_metrics: dict[str, float]
) -> dict[str, Any]:
    """The finished run's summary.json: its length, speed, memory, final metrics, the loader's share
    of its time and the monitor's curve and cost (a cost above 5% of training time is flagged)."""
    p, total_steps, monitor = training.config.pretrain, training.total_steps, training.monitor
    seconds = max(training.counters["train_seconds"], 1e-9)
    monitor_fraction = None if monitor is None else monitor.seconds / seconds
    if monitor_fraction is not None and monitor_fraction > MONITOR_BUDGET:
        log.warning(
            "%s: the monitor's looks took %.1f%% of the training time (more than %.0f%%): raise pretrain.monitor_every "
            "or shrink pretrain.monitor's set",
            training.run,
            100 * monitor_fraction,
            100 * MONITOR_BUDGET,
        )
    return {
        "run": training.run,
        "scale": training.config.scale,
        "steps": total_steps,
        "steps_per_epoch": training.steps_per_epoch,
        "epochs": total_steps / training.steps_per_epoch,
        "planned_steps": planned_steps(training.steps_per_epoch, p.epochs),
        "complete": total_steps >= planned_steps(training.steps_per_epoch, p.epochs),
        "pairs_seen": total_steps * p.batch_size,
        "processes": runtime.world,
        "device": str(runtime.device),
        "train_seconds": training.counters["train_seconds"],
        "pairs_per_second": total_steps * p.batch_size / seconds,
        "data_wait_fraction": training.counters["data_wait_seconds"] / seconds,
        "peak_memory_mb": peak_memory_mb(runtime.device),
        "skipped_frames": training.counters["skipped_frames"],
        "final_metrics": last_metrics,
        "monitor": None if monitor is None else monitor.summary(),
        "monitor_fraction": monitor_fraction,
        "requeues": training.counters["requeues"],
        "backbone": str(run_dir / BACKBONE),
        "checkpoint": str(run_dir / CHECKPOINT) if p.keep_training_state else None,
        "mlflow_run_id": run_id,
        "config": training.config.to_dict(),
    }


def finish(training: Training, run_dir: Path, mlflow_run: MlflowRun, summary: dict[str, Any]) -> None:
    """The run's last writes, in an order that a kill between any two leaves right: the backbone export,
    the MLflow run ended, summary.json (the workflow's truth: a rerun finds the run complete) last; then
    the full states a finished run does not keep go (a run stopped early keeps its own, to continue from)."""
    export_backbone(run_dir, training.run, training.config, training.model.state_dict(), training.step)
    mlflow_run.log_metrics({"peak_memory_mb": summary["peak_memory_mb"]})
    mlflow_run.end("FINISHED")
    write_json_atomic(run_dir / SUMMARY, summary)
    early = stopped_early(summary)
    if early:
        log.warning("%s: %s; rerun it without the limit to continue it", training.run, early)
    finish_folder(run_dir, training.config.pretrain.keep_training_state or early is not None)
