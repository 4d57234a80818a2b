"""Evaluation jobs: a checkpoint and a dataset in, one metrics JSON and one MLflow run out; the
evaluation itself (its job, built by the function :mod:`.registry` names) runs inside.

The MLflow run is linked to the pretraining run it evaluates (tags ``cycle.pretrain_run_id`` and
``mlflow.parentRunId``, so that the UI nests it), and the metrics file is written atomically, last: it
exists only once the evaluation finished, the backbone was found unchanged (a frozen evaluation) or
the checkpoint file it was loaded from was found unchanged (a fine-tuning, which trains the copy in
memory), and the MLflow run was ended (a job killed before sees its evaluation rerun, never a run left
RUNNING behind a finished file). A fine-tuning resumes after a preemption: its MLflow run too, from
the run id kept in its state folder.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Any

from ..data.download import file_digest
from ..errors import Preempted
from ..jobs.atomic import write_json_atomic, write_text_atomic
from ..jobs.layout import MLFLOW_RUN_ID, job_folder
from ..jobs.mlflow_job import DataInput, MlflowRun
from ..settings.config import Config
from .checkpoints import RANDOM, Backbone
from .divergence import diverged
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


def evaluation_inputs(evaluation: Evaluation, config: Config) -> list[DataInput]:
    """The dataset folders ``evaluation`` reads (data.<dataset>_root), as its MLflow run's datasets."""
    return [DataInput(name, getattr(config.data, f"{name}_root"), "evaluation") for name in evaluation.datasets]


def run_evaluation(
    evaluation: Evaluation,
    config: Config,
    backbone: Backbone,
    run: str,
    output: str | Path,
    evaluate: Evaluate,
    extra_tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``evaluate`` (``evaluation``'s job) on the backbone, frozen unless the evaluation trains it,
    inside an MLflow run; write and return the record."""
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
    run_id_file = job_folder(output) / MLFLOW_RUN_ID
    resumed = run_id_file.read_text().strip() if run_id_file.is_file() else None
    if evaluation.frozen:  # starts afresh: the run of an earlier attempt that a kill left RUNNING ends KILLED
        mlflow_run.close_if_running(resumed, "KILLED")
        resumed = None
    mlflow_run_id = mlflow_run.start(f"{evaluation.name}-{run}", resumed, params, tags)
    if mlflow_run_id:
        write_text_atomic(run_id_file, mlflow_run_id)
    mlflow_run.log_inputs(evaluation_inputs(evaluation, config))
    try:
        run_job = evaluate_frozen if evaluation.frozen else evaluate_trained
        metrics = run_job(evaluate, backbone, mlflow_run)
    except Preempted:
        mlflow_run.end("KILLED")
        raise
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
        "backbone_frozen": evaluation.frozen,
        "mlflow_run_id": mlflow_run_id,
        "metrics": metrics,
        "settings": settings,
    }
    mlflow_run.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
    if diverged(metrics):  # also the metric diverged = 1; the tag makes such runs easy to filter in the UI
        mlflow_run.set_tags({"cycle.diverged": "true", "cycle.divergence": metrics["divergence"][:500]})
    with tempfile.TemporaryDirectory() as scratch:  # the artifact under the metrics file's name
        write_json_atomic(Path(scratch) / Path(output).name, record)
        mlflow_run.log_artifact(str(Path(scratch) / Path(output).name))
    mlflow_run.end("FINISHED")
    write_json_atomic(output, record)
    log.log(
        logging.WARNING if diverged(metrics) else logging.INFO,
        "%s of %s: %s -> %s%s",
        task,
        run,
        _headline(metrics),
        output,
        " (its training DIVERGED: these numbers do not measure the representation)" if diverged(metrics) else "",
    )
    return record


def evaluate_frozen(evaluate: Evaluate, backbone: Backbone, mlflow_run: MlflowRun) -> dict[str, Any]:
    frozen = FrozenBackbone(backbone.net, backbone.width)
    metrics = evaluate(frozen, mlflow_run)
    frozen.check_unchanged()
    return metrics


def evaluate_trained(evaluate: Evaluate, backbone: Backbone, mlflow_run: MlflowRun) -> dict[str, Any]:
    """A job that trains the backbone trains the copy in memory: the checkpoint file must come out
    as it went in (a pretraining run's checkpoint is shared by every evaluation of it)."""
    source = None if backbone.source == RANDOM else Path(backbone.source)
    before = file_digest(source) if source else None
    metrics = evaluate(backbone, mlflow_run)
    if source and file_digest(source) != before:
        raise RuntimeError(f"{source} changed while it was fine-tuned; its other evaluations are not of this file")
    return metrics


def _headline(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.2f}" for k, v in metrics.items() if isinstance(v, float) and k != "seconds")
