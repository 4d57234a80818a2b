"""What a pretraining run tells MLflow: one MLflow run per run folder, whatever the number of jobs it
takes, because its id is kept in the folder and a resumed job reopens it; its tags say where the run
sits in the paper's grid, its inputs which R2V2 it read."""

from __future__ import annotations

from pathlib import Path

from ..data.layout import SHARD_INDEX, shard_dir, subset_videos
from ..data.r2v2 import id_list_path
from ..jobs import slurm
from ..jobs.atomic import write_text_atomic
from ..jobs.layout import MLFLOW_RUN_ID
from ..jobs.mlflow_job import DataInput, MlflowRun
from ..reproduction.grid import grid_tags
from ..settings.config import Config
from .runtime import Runtime
from .training import Training


def pretrain_tags(config: Config, run: str) -> dict[str, str]:
    return {"cycle.job": "pretrain", "cycle.run": run, "cycle.scale": config.scale, **grid_tags(config)}


def pretrain_inputs(config: Config) -> list[DataInput]:
    """The R2V2 that pretraining reads, as its MLflow dataset: the shards' folder, digested by their index
    (which holds each shard's sha256), or the JPEG copy's folder, digested by the listing of what the run
    reads there: its split's frames and id list (not the other split's)."""
    data, subset = config.data, subset_videos(config.data)
    name = f"r2v2/{data.r2v2_split}" + (f"-s{subset}" if subset is not None else "")
    if data.r2v2_format == "shards":
        return [DataInput(f"{name} shards", str(shard_dir(data)), "training", manifest=SHARD_INDEX)]
    parts = (data.r2v2_split, id_list_path(data.r2v2_root, data.r2v2_split).name)
    return [DataInput(name, data.r2v2_root, "training", parts=parts)]


def start_mlflow_run(training: Training, run_dir: Path, runtime: Runtime, extra_tags: dict[str, str]) -> MlflowRun:
    """The run's MLflow run (rank 0 only), reopened when the job resumes: its id is kept in the run folder."""
    config, run = training.config, training.run
    mlflow_run = MlflowRun(config.mlflow, active=runtime.is_main)
    run_id_file = run_dir / MLFLOW_RUN_ID
    previous_run_id = run_id_file.read_text().strip() if run_id_file.is_file() else None
    requeues = {"slurm.requeues": str(training.counters["requeues"])} if slurm.job_id() else {}
    tags = {**pretrain_tags(config, run), **requeues, **extra_tags}
    run_id = mlflow_run.start(run, previous_run_id, config.to_dict(), tags)
    if runtime.is_main and run_id and run_id != previous_run_id:
        write_text_atomic(run_id_file, run_id)
    mlflow_run.log_inputs(pretrain_inputs(config))
    return mlflow_run
