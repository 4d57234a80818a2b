"""The step loop (MoCo's ``train``) and what it reports: a step is the feed's views, an SGD step,
the monitor's look when due, the :class:`MetricsWindow` and its report, a checkpoint when due. A
run's losses are checked once a window, not once a step, so that the host waits for the device
rarely; a preemption ends the loop only once a checkpoint is saved."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.feed import DeviceFeed
from ..errors import NonFiniteLoss, Preempted
from ..jobs import slurm
from ..jobs.mlflow_job import MlflowRun
from ..jobs.preemption import REQUEUE, WITH_INTERRUPT, PreemptionFlag
from .monitor import Monitor, is_due
from .runtime import Runtime, preemption_agreed, time_limit_deadline
from .schedule import learning_rate
from .state import save_checkpoint
from .training import Training

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    training: Training,
    feed: DeviceFeed,
    loader: DataLoader,
    runtime: Runtime,
    mlflow_run: MlflowRun,
    checkpoint_path: Path,
) -> dict[str, float]:
    """The step loop over ``feed``'s views of ``loader``'s batches, from the restored step to the last
    (in the manner of MoCo's train): the monitor's looks when due, a checkpoint every
    ``checkpoint_every`` steps, at the end and on preemption; the last metrics."""
    p, run = training.config.pretrain, training.run
    preemption = PreemptionFlag(WITH_INTERRUPT, time_limit_deadline(training.config, runtime))
    progress = tqdm(
        total=training.total_steps, initial=training.step, desc=run, disable=not runtime.is_main, dynamic_ncols=True
    )
    window = MetricsWindow(p.batch_size)
    cuda = runtime.device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and p.amp)
    step_views = feed.views(loader)
    try:
        training.model.train()
        monitored = training.monitor is not None
        if monitored and training.step == 0:
            look(training, window, mlflow_run, progress)  # the initialisation: where the curve starts
        for views, skipped in window.batches(step_views):
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
        step_views.close()  # ends the feed's thread
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
