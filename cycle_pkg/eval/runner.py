"""Evaluation jobs: a checkpoint and a dataset in, one metrics JSON and one MLflow run out.

The MLflow run is linked to the pretraining run it evaluates (tags ``cycle.pretrain_run_id`` and
``mlflow.parentRunId``, so that the UI nests it), and the metrics file is written atomically: it
exists only once the evaluation finished and the backbone was found unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import DatasetError
from ..io_utils import write_json_atomic
from ..mlflow_run import MlflowRun
from .checkpoints import Backbone
from .features import FeatureCache, FrozenBackbone
from .linear import linear_probe

log = logging.getLogger(__name__)
Evaluation = Callable[[FrozenBackbone, MlflowRun], dict[str, Any]]


def default_run_name(backbone: Backbone) -> str:
    """The pretraining run's name for our checkpoints, the file's stem for others."""
    if backbone.pretrain_run:
        return backbone.pretrain_run
    if backbone.format == "random":
        return f"random-{backbone.arch}"
    return Path(backbone.source).name.split(".")[0]


def task_name(task: str, config: Config) -> str:
    """The folder of a task's metrics files, as cycle_pkg/paper_tables.yaml names the evaluations."""
    return f"linear_{config.eval.linear.dataset}" if task == "linear" else task


def run_evaluation(
    task: str,
    config: Config,
    backbone: Backbone,
    run: str,
    output: str | Path,
    evaluate: Evaluation,
    extra_tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``evaluate`` on the frozen backbone inside an MLflow run; write and return the record."""
    settings = dataclasses.asdict(getattr(config.eval, task))
    tags = {
        "cycle.job": f"eval-{task}",
        "cycle.task": task_name(task, config),
        "cycle.run": run,
        "cycle.scale": config.scale,
        "cycle.checkpoint": backbone.source,
        "cycle.checkpoint_format": backbone.format,
        "cycle.backbone": backbone.arch,
    }
    if backbone.pretrain_run:
        tags["cycle.pretrain_run"] = backbone.pretrain_run
    if backbone.pretrain_run_id:
        tags["cycle.pretrain_run_id"] = backbone.pretrain_run_id
        tags["mlflow.parentRunId"] = backbone.pretrain_run_id
    tags.update(extra_tags or {})
    mlflow_run = MlflowRun(config.mlflow)
    params = {task: settings, "batch_size": config.eval.batch_size, "checkpoint": backbone.source}
    mlflow_run_id = mlflow_run.start(f"{task_name(task, config)}-{run}", None, params, tags)
    try:
        frozen = FrozenBackbone(backbone.net, backbone.width)
        metrics = evaluate(frozen, mlflow_run)
        frozen.check_unchanged()
    except BaseException:
        mlflow_run.end("FAILED")
        raise
    record = {
        "task": task_name(task, config),
        "run": run,
        "scale": config.scale,
        "checkpoint": backbone.source,
        "checkpoint_format": backbone.format,
        "backbone": backbone.arch,
        "pretrain_run": backbone.pretrain_run,
        "pretrain_mlflow_run_id": backbone.pretrain_run_id,
        "mlflow_run_id": mlflow_run_id,
        "metrics": metrics,
        "settings": settings,
    }
    write_json_atomic(output, record)
    mlflow_run.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
    mlflow_run.log_artifact(str(output))
    mlflow_run.end("FINISHED")
    log.info("%s of %s: %s -> %s", task, run, _headline(metrics), output)
    return record


def _headline(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.2f}" for k, v in metrics.items() if isinstance(v, float) and k != "seconds")


def linear_evaluation(config: Config, output: Path) -> Evaluation:
    from ..data.imagenet import imagefolder_samples, imagenet100_wnids

    cfg = config.eval.linear
    wnids = imagenet100_wnids() if cfg.dataset == "imagenet100" else None
    train, classes = imagefolder_samples(config.data.imagenet_root, "train", wnids)
    val, val_classes = imagefolder_samples(config.data.imagenet_root, "val", wnids)
    if val_classes != classes:
        extra = sorted(set(val_classes) ^ set(classes))[:5]
        raise DatasetError(f"{config.data.imagenet_root}: train and val hold different classes (e.g. {extra})")
    log.info(
        "linear probe on %s: %d classes, %d train / %d val images", cfg.dataset, len(classes), len(train), len(val)
    )

    def evaluate(frozen: FrozenBackbone, mlflow_run: MlflowRun) -> dict[str, Any]:
        return linear_probe(
            frozen,
            train,
            val,
            len(classes),
            cfg,
            config.eval,
            FeatureCache(config.eval.cache_dir),
            on_epoch=lambda epoch, metrics: mlflow_run.log_metrics(metrics, step=epoch),
        )

    return evaluate


def track_evaluation(config: Config, output: Path) -> Evaluation:
    from ..data.got10k import got10k_sequences
    from ..data.otb import otb_sequences
    from .tracking.evaluate import evaluate_tracking

    train = got10k_sequences(config.data.got10k_root, "train")
    test = otb_sequences(config.data.otb_root)

    def evaluate(frozen: FrozenBackbone, mlflow_run: MlflowRun) -> dict[str, Any]:
        metrics, plots = evaluate_tracking(
            frozen,
            train,
            test,
            config.eval.track,
            config.eval.workers,
            output.with_suffix(""),
            on_epoch=lambda epoch, values: mlflow_run.log_metrics(values, step=epoch),
        )
        for plot in plots:
            mlflow_run.log_artifact(str(plot))
        return metrics

    return evaluate


def action_evaluation(config: Config, output: Path) -> Evaluation:
    from ..data.ucf101 import read_split, read_video
    from .action import action_recognition

    classes, train, test = read_split(config.data.ucf101_root, config.eval.action.split)

    def evaluate(frozen: FrozenBackbone, mlflow_run: MlflowRun) -> dict[str, Any]:
        return action_recognition(
            frozen,
            train,
            test,
            len(classes),
            read_video,
            config.eval.action,
            config.eval,
            FeatureCache(config.eval.cache_dir),
            on_epoch=lambda epoch, metrics: mlflow_run.log_metrics(metrics, step=epoch),
        )

    return evaluate


def retrieval_evaluation(config: Config, output: Path) -> Evaluation:
    from ..data.ucf101 import read_split, read_video
    from .retrieval import retrieval

    _, train, test = read_split(config.data.ucf101_root, config.eval.retrieval.split)

    def evaluate(frozen: FrozenBackbone, mlflow_run: MlflowRun) -> dict[str, Any]:
        cache = FeatureCache(config.eval.cache_dir)
        return retrieval(frozen, train, test, read_video, config.eval.retrieval, config.eval, cache)

    return evaluate


EVALUATIONS: dict[str, Callable[[Config, Path], Evaluation]] = {
    "linear": linear_evaluation,
    "track": track_evaluation,
    "action": action_evaluation,
    "retrieval": retrieval_evaluation,
}
