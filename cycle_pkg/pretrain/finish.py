"""A run's end: its summary.json (length, speed, memory, the monitor's curve and cost), the
monitor's pictures, and the last writes in an order that a kill between any two leaves right. Uses
torch, unlike ``summary.py``, which the Snakefile reads."""

from __future__ import annotations

import logging
import resource
import time
from pathlib import Path
from typing import Any

import torch

from ..jobs.atomic import write_json_atomic
from ..jobs.mlflow_job import MlflowRun
from .monitor import PICTURES, Monitor
from .run_folder import SUMMARY
from .runtime import Runtime
from .state import BACKBONE, CHECKPOINT, export_backbone, finish_folder
from .summary import planned_steps, stopped_early
from .training import Training

log = logging.getLogger(__name__)
MONITOR_BUDGET = 0.05  # of the training time, which the monitor's looks should stay under


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def summarize(
    training: Training, runtime: Runtime, run_dir: Path, run_id: str | None, last_metrics: dict[str, float]
) -> dict[str, Any]:
    """The finished run's summary.json: its length, speed, memory, final metrics, the loader's share
    of its time and the monitor's curve and cost (a cost above 5% of training time is flagged)."""
    p, total_steps, monitor = training.config.pretrain, training.total_steps, training.monitor
    planned = planned_steps(training.steps_per_epoch, p.epochs)
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
        "planned_steps": planned,
        "complete": total_steps >= planned,
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
