"""The pretraining job in one screen: DDP (NCCL on GPU, gloo on CPU), bf16 autocast, checkpoint /
resume, preemption signals, progress and MLflow, each in a module of its own; here, their order.

A job is identified by its run folder. Restarting the same command resumes from the folder's last
checkpoint; with a fixed seed on CPU the resumed run ends with the same weights as an
uninterrupted one, because every random draw is either saved in the checkpoint (the neighbour
sampler) or derived from (seed, epoch, index) (the data).

``_pretrain`` is the job's outline, in the manner of MoCo's ``main_worker``: restore (``run_folder``),
the dataset and its feed (``data.pretrain_input``: the data path, ``pretrain.augment_on``, chosen
once), the steps (``schedule``) and the loader (``loader``), the :class:`Training` with its
representation monitor on rank 0 (``training``), the MLflow run (``mlflow_log``), the step loop
(``steps.train_steps``, MoCo's ``train``), the summary and the last writes (``finish``). The processes
and their stopping are ``runtime``'s.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist

from ..data.pretrain_input import pretrain_input
from ..errors import ConfigError
from ..jobs.atomic import write_json_atomic
from ..jobs.attempts import attempts_log
from ..jobs.mlflow_job import MlflowRun
from ..settings.config import Config
from ..settings.identity import config_differences
from .finish import draw_monitor_pictures, finish, summarize
from .loader import build_loader
from .mlflow_log import start_mlflow_run
from .monitor import FEATURES
from .run_folder import CONFIG, SUMMARY, restore, saved_config
from .runtime import Runtime, init_runtime
from .schedule import plan_steps, steps_to_train
from .state import CHECKPOINT, finish_folder
from .steps import train_steps
from .summary import stopped_early
from .training import attach_monitor, build_training

log = logging.getLogger(__name__)


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


def _pretrain(config: Config, run: str, run_dir: Path, runtime: Runtime, extra_tags: dict[str, str]) -> dict[str, Any]:
    """Restore, build, start the MLflow run, train, summarise (in the manner of MoCo's main_worker)."""
    checkpoint_path = run_dir / CHECKPOINT
    state = restore(run_dir, config, runtime)
    data = pretrain_input(config, runtime.device)  # the dataset and its feed: the data path, chosen once
    steps_per_epoch, total_steps = plan_steps(config, len(data.dataset))
    loader = build_loader(data.dataset, config, runtime, state["step"] if state else 0, total_steps)
    training = build_training(config, run, runtime, steps_per_epoch, total_steps, state)
    attach_monitor(training, runtime, state)
    if runtime.is_main and not (run_dir / CONFIG).is_file():
        write_json_atomic(run_dir / CONFIG, config.to_dict())
    mlflow_run = start_mlflow_run(training, run_dir, runtime, extra_tags)
    last_metrics = train_steps(training, data.feed, loader, runtime, mlflow_run, checkpoint_path)
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
