"""A job's MLflow run: one run per job, reopened when the job resumes (steps it replays are not logged
again), closed by a rerun that finds it left RUNNING; the store's concurrency in :mod:`.mlflow_store`.

A tracking server that stops answering during a job is waited for at most ``mlflow.outage_seconds``
from when it stopped: training goes on meanwhile (its metrics kept, and sent once the server answers),
other calls wait. Past that the job fails with a clear error, or (``mlflow.on_outage: continue``) goes
on without MLflow."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MlflowUnavailable
from ..settings.sections import MlflowConfig
from ..settings.typed_yaml import flatten
from .mlflow_store import is_unreachable, open_experiment, with_retries

log = logging.getLogger(__name__)
_AWAY = object()  # what a store call returns while the server does not answer

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


@dataclass(frozen=True)
class DataInput:
    """A folder a job reads, logged as an MLflow dataset of its run: its path and a digest, not its data."""

    name: str
    path: str
    context: str  # MLflow's mlflow.data.context: training or evaluation
    manifest: str | None = None  # a file in ``path`` that lists its content with checksums (the shards' index)
    parts: tuple[str, ...] = ()  # the entries of ``path`` the job reads (one split of several); () all

    def digest(self) -> tuple[str, str]:
        """The digest (32 hex characters, under the 36 that MLflow's stores keep) and what it is a digest of:
        the manifest's sha256, else that of the listing of the folder or of its parts (every file's relative
        path and size)."""
        if self.manifest is not None:
            manifest = Path(self.path) / self.manifest
            return hashlib.sha256(manifest.read_bytes()).hexdigest()[:32], f"sha256 of {self.manifest}"
        of = f" of {', '.join(self.parts)}" if self.parts else ""
        digest = listing_digest(Path(self.path), self.parts)
        return digest, f"sha256 of the listing{of} (relative path and size of every file)"


def listing_digest(root: Path, parts: tuple[str, ...] = ()) -> str:
    """A digest of what ``root`` holds, or the entries ``parts`` of it, read from its listing (names and sizes,
    never the files' content): a stat per file, about 5 s per million files in the page cache. Folders linked
    in are followed, once."""
    digest, seen = hashlib.sha256(), set()

    def walk(folder: str, prefix: str, only: tuple[str, ...] = ()) -> None:
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in seen:
            return
        seen.add((stat.st_dev, stat.st_ino))
        with os.scandir(folder) as listing:
            entries = sorted((e for e in listing if not only or e.name in only), key=lambda entry: entry.name)
        absent = sorted(set(only) - {entry.name for entry in entries}) if only else []
        if absent:
            raise FileNotFoundError(f"{folder}: no {', '.join(absent)} here")
        for entry in entries:
            if entry.is_dir():
                walk(entry.path, f"{prefix}{entry.name}/")
                continue
            try:
                size = entry.stat().st_size
            except OSError:  # a broken link
                size = -1
            digest.update(f"{prefix}{entry.name}\t{size}\n".encode("utf-8", "surrogateescape"))

    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    walk(str(root), "", parts)
    return digest.hexdigest()[:32]


class MlflowRun:
    """A job's MLflow run; every method is a no-op when MLflow is off (or on ranks > 0)."""

    def __init__(self, config: MlflowConfig, active: bool = True):
        self.active = config.enabled and active
        self.config = config
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.logged_through: int | None = None  # a reopened run's last logged step
        self._has_inputs = False  # whether the run has its datasets
        self._epochs: list = []  # mlflow.entities.Metric of epochs not yet written
        self._flushed = time.monotonic()
        self._unsent: list[tuple[dict[str, float], int | None]] = []  # metrics kept while the server is away
        self._outage_since: float | None = None
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
        run = self._call(self.mlflow.start_run, **where)
        if run is None:  # MLflow given up (mlflow.on_outage: continue)
            return None
        self.run_id = run.info.run_id
        if run_id is not None:
            self.logged_through = self._last_logged_step(run_id)
        scheduler = {"slurm.job_id": os.environ["SLURM_JOB_ID"]} if "SLURM_JOB_ID" in os.environ else {}
        self._call(self.mlflow.set_tags, {"mlflow.source.git.commit": git_commit(), **scheduler, **tags})
        if run_id is None:
            items = list(flatten(params).items())
            for start in range(0, len(items), 100):
                self._call(self.mlflow.log_params, {k: str(v) for k, v in items[start : start + 100]})
        self._has_inputs = bool(getattr(run.inputs, "dataset_inputs", None))  # a reopened run's, logged before
        return self.run_id

    def log_inputs(self, inputs: Sequence[DataInput]) -> None:
        """Log the folders the job reads as the run's datasets, unless the run was reopened with datasets (an
        earlier attempt of the job logged them). A folder that cannot be read is a warning, not a failure.
        Called once the job has kept its run's id: a listing can take a while."""
        if not (self.active and self.run_id) or self._has_inputs:
            return
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset

        datasets, contexts, tags = [], [], []
        for data in inputs:
            try:
                digest, of_what = data.digest()
            except OSError as err:
                log.warning("MLflow dataset %s: %s cannot be read (%s); not logged", data.name, data.path, err)
                continue
            with warnings.catch_warnings():  # the local source is registered for two schemes ("" and file)
                warnings.simplefilter("ignore", UserWarning)
                source = resolve_dataset_source(os.path.abspath(data.path))
            datasets.append(MetaDataset(source, name=data.name, digest=digest))
            contexts.append(data.context)
            tags.append({"cycle.digest": of_what})
        if datasets:
            self._call(self.mlflow.log_inputs, datasets, contexts, tags)
        self._has_inputs = True

    def _exists(self, run_id: str) -> bool:
        try:
            self._call(self.mlflow.get_run, run_id)
            return True
        except self.mlflow.exceptions.MlflowException:
            return False

    def _last_logged_step(self, run_id: str) -> int | None:
        client = self.mlflow.MlflowClient()
        keys = run.data.metrics if (run := self._call(client.get_run, run_id)) else {}
        steps = [m.step for key in keys for m in self._call(client.get_metric_history, run_id, key)]
        return max(steps, default=None)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log ``metrics`` at ``step``; a resumed job's steps up to the last one its run logged before
        it was interrupted are replays of logged ones, and are not logged twice. While the server does
        not answer they are kept (the job goes on), and sent with the next ones it answers."""
        if step is not None and self._replayed(step):
            return
        if self.active and self.run_id:
            self._unsent.append((dict(metrics), step))
            self._send_unsent(wait=False)

    def _send_unsent(self, wait: bool) -> None:
        send = self._call if wait else self._try
        while self._unsent and self.active:
            metrics, step = self._unsent[0]
            if send(self.mlflow.log_metrics, metrics, step=step) is _AWAY:
                return
            self._unsent.pop(0)

    def _try(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call`` once (a busy SQLite store retried); _AWAY while the server does not answer, until
        mlflow.outage_seconds have passed since it stopped (then :meth:`_give_up`)."""
        try:
            result = with_retries(call)(*args, **kwargs)
        except Exception as err:
            if not is_unreachable(err):
                raise
            now = time.monotonic()
            if self._outage_since is None:
                self._outage_since = now
                log.warning(
                    "MLflow server %s does not answer (%s): the job goes on, its metrics are kept and sent when it "
                    "answers again; it is waited for %.0f s (mlflow.outage_seconds), then mlflow.on_outage=%s",
                    tracking_uri(self.config),
                    str(err).splitlines()[0][:120],
                    self.config.outage_seconds,
                    self.config.on_outage,
                )
            if now - self._outage_since >= self.config.outage_seconds:
                self._give_up(err, now - self._outage_since)
            return _AWAY
        if self._outage_since is not None:
            log.warning(
                "MLflow server %s answers again after %.0f s",
                tracking_uri(self.config),
                time.monotonic() - self._outage_since,
            )
            self._outage_since = None
        return result

    def _call(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call``, waited for while the server does not answer (at most mlflow.outage_seconds); None
        once MLflow was given up with on_outage: continue."""
        delay = 1.0
        while self.active:
            result = self._try(call, *args, **kwargs)
            if result is not _AWAY:
                return result
            time.sleep(delay)
            delay = min(2 * delay, 30.0)
        return None

    def _give_up(self, err: Exception, waited: float) -> None:
        uri = tracking_uri(self.config)
        if self.config.on_outage == "fail":
            raise MlflowUnavailable(
                f"MLflow server {uri} has not answered for {waited:.0f} s (mlflow.outage_seconds="
                f"{self.config.outage_seconds:g}): {str(err).splitlines()[0][:200]}. Restart it and rerun the job "
                "(it resumes), or set mlflow.on_outage=continue to train on without MLflow"
            ) from err
        log.warning(
            "MLflow server %s has not answered for %.0f s: the job goes on without MLflow (mlflow.on_outage=continue); "
            "%d metric records are lost to it",
            uri,
            waited,
            len(self._unsent),
        )
        self.active, self._unsent = False, []

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
            self._call(self.mlflow.MlflowClient().log_batch, self.run_id, metrics=pending[start : start + 1000])
        self._flushed = time.monotonic()

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if self.active and self.run_id:
            self._call(self.mlflow.set_tags, dict(tags))

    def log_artifact(self, path: str) -> None:
        if self.active and self.run_id:
            self._call(self.mlflow.log_artifact, path)

    def end(self, status: str = "FINISHED") -> None:
        if self.active and self.run_id:
            self._send_unsent(wait=True)
            self.flush()
            # The client's call first, retried until it lands: the fluent end_run pops its active run
            # before it calls the server, so a retry of it after a failed call ends nothing.
            self._call(self.mlflow.MlflowClient().set_terminated, self.run_id, status)
            self._call(self.mlflow.end_run, status=status)
            self.run_id = None

    def close_if_running(self, run_id: str | None, status: str = "FINISHED") -> None:
        """End ``run_id`` with ``status`` if a killed attempt of its job left it RUNNING: FINISHED where the
        job had finished (killed between its last two writes), KILLED where a new attempt starts afresh."""
        if not self.active or run_id is None:
            return
        client = self.mlflow.MlflowClient()
        try:
            run = self._call(client.get_run, run_id)
        except self.mlflow.exceptions.MlflowException:
            return  # not in this store: nothing to close
        if run is not None and run.info.status == "RUNNING":
            self._call(client.set_terminated, run_id, status)
            log.warning(
                "MLflow run %s was left RUNNING by an earlier attempt of its job; closed it as %s", run_id, status
            )
