"""The pretraining run's MLflow run: one per run folder, whatever the number of jobs it takes,
because its id is kept in the folder and a resumed job reopens it; its tags say where the run sits in
the paper's grid."""

from __future__ import annotations

from pathlib import Path

from ..jobs import slurm
from ..jobs.atomic import write_text_atomic
from ..jobs.mlflow_job import MlflowRun
from ..reproduction.grid import grid_tags
from ..settings.config import Config
from .run_folder import RUN_ID
from .runtime import Runtime
from .training import Training


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
