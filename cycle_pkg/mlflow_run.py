"""A job's MLflow run: one run per job, reopened when the job resumes (steps it replays are not logged
again), closed by a rerun that finds it left RUNNING; the store's concurrency in :mod:`.mlflow_store`."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Mapping
from typing import Any

from .config import MlflowConfig
from .mlflow_store import open_experiment, with_retries
from .typed_yaml import flatten

log = logging.getLogger(__name__)

# An evaluation's per-epoch metrics reach the store at most this many seconds late, in one batch: a write
# per epoch (sqlite) cost a 100-epoch linear probe 4 of its 6 CPU s of training at the demo scale.
EPOCH_FLUSH_SECONDS = 30.0


def tracking_uri(config: MlflowConfig) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or config.tracking_uri


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
        self.logged_through: int | None = None  # a reopened run's last logged step
        self._epochs: list = []  # mlflow.entities.Metric of epochs not yet written
        self._flushed = time.monotonic()
        if self.active:
            import mlflow

            self.mlflow = mlflow
            self.experiment_id = open_experiment(tracking_uri(config), config.experiment)

    def start(
        self, run_name: str, run_id: str | None, params: Mapping[str, Any], tags: Mapping[str, str]
    ) -> str | None:
        """Start a new run, or reopen ``run_id`` when a job resumes."""
        if not self.active:
            return None
        if run_id is not None and not self._exists(run_id):
            log.warning("MLflow run %s is not in %s; starting a new run", run_id, tracking_uri(self.config))
            run_id = None
        # the experiment named, not the active one: mlflow.set_experiment leaves none active in a job
        # whose creation of the experiment lost the race to another job's (its run went to Default)
        where = {"run_id": run_id} if run_id else {"run_name": run_name, "experiment_id": self.experiment_id}
        run = with_retries(self.mlflow.start_run)(**where)
        self.run_id = run.info.run_id
        if run_id is not None:
            self.logged_through = self._last_logged_step(run_id)
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

    def _last_logged_step(self, run_id: str) -> int | None:
        client = self.mlflow.MlflowClient()
        keys = with_retries(client.get_run)(run_id).data.metrics
        steps = [m.step for key in keys for m in with_retries(client.get_metric_history)(run_id, key)]
        return max(steps, default=None)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log ``metrics`` at ``step``; a resumed job's steps up to the last one its run logged before
        it was interrupted are replays of logged ones, and are not logged twice."""
        if step is not None and self._replayed(step):
            return
        if self.active and self.run_id:
            with_retries(self.mlflow.log_metrics)(dict(metrics), step=step)

    def _replayed(self, step: int) -> bool:
        return self.logged_through is not None and step <= self.logged_through

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """An evaluation's per-epoch metrics (its ``on_epoch`` callback), stamped now and written with the
        next epochs (``EPOCH_FLUSH_SECONDS``); a resumed job's replayed epochs are not logged twice."""
        if self._replayed(epoch):
            return
        if self.active and self.run_id:
            stamp = int(time.time() * 1000)
            self._epochs += [self.mlflow.entities.Metric(k, float(v), stamp, epoch) for k, v in metrics.items()]
            if time.monotonic() - self._flushed >= EPOCH_FLUSH_SECONDS:
                self.flush()

    def flush(self) -> None:
        """Write the epochs logged since the last write (MLflow takes at most 1000 metrics a batch)."""
        pending, self._epochs = self._epochs, []
        for start in range(0, len(pending), 1000):
            with_retries(self.mlflow.MlflowClient().log_batch)(self.run_id, metrics=pending[start : start + 1000])
        self._flushed = time.monotonic()

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if self.active and self.run_id:
            with_retries(self.mlflow.set_tags)(dict(tags))

    def log_artifact(self, path: str) -> None:
        if self.active and self.run_id:
            with_retries(self.mlflow.log_artifact)(path)

    def end(self, status: str = "FINISHED") -> None:
        if self.active and self.run_id:
            self.flush()
            with_retries(self.mlflow.end_run)(status=status)
            self.run_id = None

    def close_if_running(self, run_id: str | None) -> None:
        """End ``run_id`` as FINISHED if it is still RUNNING although its job finished: a job killed
        between its last two writes (summary.json, then the MLflow run's end) left it so."""
        if not self.active or run_id is None:
            return
        client = self.mlflow.MlflowClient()
        try:
            status = with_retries(client.get_run)(run_id).info.status
        except self.mlflow.exceptions.MlflowException:
            return  # not in this store: nothing to close
        if status == "RUNNING":
            with_retries(client.set_terminated)(run_id, "FINISHED")
            log.warning("MLflow run %s was left RUNNING by a job that had finished; closed it as FINISHED", run_id)
