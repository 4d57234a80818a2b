"""Evaluation jobs: a checkpoint and a dataset in, one metrics JSON and one MLflow run out; the
evaluation itself (its job, built by the function :mod:`.registry` names) runs inside.

The MLflow run is linked to the pretraining run it evaluates (tags ``cycle.pretrain_run_id`` and
``mlflow.parentRunId``, so that the UI nests it), and the metrics file is written atomically: it
exists only once the evaluation finished and the backbone was found unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from ..config import Config
from ..io_utils import write_json_atomic
from ..mlflow_run import MlflowRun
from .checkpoints import Backbone
from .features import FrozenBackbone
from .registry import Evaluate, Evaluation

log = logging.getLogger(__name__)


def default_run_name(backbone: Backbone) -> str:
    """The pretraining run's name for our checkpoints, the file's stem for others."""
    if backbone.pretrain_run:
        return backbone.pretrain_run
    if backbone.format == "random":
        return f"random-{backbone.arch}"
    return Path(backbone.source).name.split(".")[0]


def run_evaluation(
    evaluation: Evaluation,
    config: Config,
    backbone: Backbone,
    run: str,
    output: str | Path,
    evaluate: Evaluate,
    extra_tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``evaluate`` (``evaluation``'s job) on the frozen backbone inside an MLflow run; write and
    return the record."""
    task = evaluation.task
    settings = dataclasses.asdict(getattr(config.eval, task))
    tags = {
        "cycle.job": f"eval-{task}",
        "cycle.task": evaluation.name,
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
    mlflow_run_id = mlflow_run.start(f"{evaluation.name}-{run}", None, params, tags)
    try:
        frozen = FrozenBackbone(backbone.net, backbone.width)
        metrics = evaluate(frozen, mlflow_run)
        frozen.check_unchanged()
    except BaseException:
        mlflow_run.end("FAILED")
        raise
    record = {
        "task": evaluation.name,
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
