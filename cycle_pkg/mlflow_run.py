"""A job's MLflow run: one run per job, reopened when the job resumes, tolerant of a busy SQLite store."""

from __future__ import annotations

import functools
import logging
import os
import random
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .config import MlflowConfig
from .typed_yaml import flatten

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRIES = 8


def tracking_uri(config: MlflowConfig) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or config.tracking_uri


def with_retries(call: Callable[..., T]) -> Callable[..., T]:
    """Retry MLflow calls that fail because many jobs write the same store at once."""

    @functools.wraps(call)
    def wrapper(*args, **kwargs):
        for attempt in range(RETRIES):
            try:
                return call(*args, **kwargs)
            except Exception as err:  # MLflow wraps sqlite's OperationalError in its own types
                transient = "locked" in str(err) or "busy" in str(err) or "UNIQUE constraint" in str(err)
                if not transient or attempt == RETRIES - 1:
                    raise
                delay = 0.5 * 2**attempt * (1 + random.random())
                log.warning("MLflow store busy (%s); retrying in %.1f s", str(err).splitlines()[0][:80], delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    return wrapper


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class MlflowRun:
    """A job's MLflow run; every method is a no-op when MLflow is off (or on ranks > 0)."""

    def __init__(self, config: MlflowConfig, active: bool = True):
        self.active = config.enabled and active
        self.config = config
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        if self.active:
            import mlflow

            self.mlflow = mlflow
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            mlflow.set_tracking_uri(tracking_uri(config))
            self.experiment_id = with_retries(mlflow.set_experiment)(config.experiment).experiment_id

    def start(
        self, run_name: str, run_id: str | None, params: Mapping[str, Any], tags: Mapping[str, str]
    ) -> str | None:
        """Start a new run, or reopen ``run_id`` when a job resumes."""
        if not self.active:
            return None
        if run_id is not None and not self._exists(run_id):
            log.warning("MLflow run %s is not in %s; starting a new run", run_id, tracking_uri(self.config))
            run_id = None
        run = with_retries(self.mlflow.start_run)(run_id=run_id, run_name=None if run_id else run_name)
        self.run_id = run.info.run_id
        scheduler = {"slurm.job_id": os.environ["SLURM_JOB_ID"]} if "SLURM_JOB_ID" in os.environ else {}
        with_retries(self.mlflow.set_tags)({"mlflow.source.git.commit": git_commit(), **scheduler, **tags})
        if run_id is None:
            items = list(flatten(params).items())
            for start in range(0, len(items), 100):
                with_retries(self.mlflow.log_params)({k: str(v) for k, v in items[start : start + 100]})
        return self.run_id

    def _exists(self, run_id: str) -> bool:
        try:
            with_retries(self.mlflow.get_run)(run_id)
            return True
        except self.mlflow.exceptions.MlflowException:
            return False

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self.active and self.run_id:
            with_retries(self.mlflow.log_metrics)(dict(metrics), step=step)

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """An evaluation's per-epoch metrics (its ``on_epoch`` callback)."""
        self.log_metrics(metrics, step=epoch)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if self.active and self.run_id:
            with_retries(self.mlflow.set_tags)(dict(tags))

    def log_artifact(self, path: str) -> None:
        if self.active and self.run_id:
            with_retries(self.mlflow.log_artifact)(path)

    def end(self, status: str = "FINISHED") -> None:
        if self.active and self.run_id:
            with_retries(self.mlflow.end_run)(status=status)
            self.run_id = None
