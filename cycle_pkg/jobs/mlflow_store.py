"""The MLflow store jobs log to: a SQLite file is created and migrated by one process at a time,
and a busy store is waited for, not fatal. A tracking server that refuses connections when a job
starts is a clear error within STARTUP_SECONDS (one that goes away later: :mod:`.mlflow_job`).

MLflow creates and migrates a fresh SQLite store on its first open without any lock between
processes: jobs started together on a new store race through the migrations (duplicate columns,
"Online migration expected to match one row", a leftover `_alembic_tmp_*` table). A file lock beside
the database serialises that first open; later opens find the store current and hold the lock only
for a moment.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from ..errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRIES = 8
LOCK_TIMEOUT = 900  # seconds: a fresh store's migrations take ~10 s, a slow file system longer
# Failures that another attempt may not meet: a SQLite store written by many jobs.
TRANSIENT = ("database is locked", "busy", "UNIQUE constraint")
# A tracking server that does not answer: MLflow's HTTP client gives up with these words.
UNREACHABLE = ("Max retries exceeded", "Connection refused", "Failed to establish", "timed out")
STARTUP_SECONDS = 20.0  # a server that refuses connections this long when a job starts is an error
# MLflow's own HTTP retries of one call (7 by default, ~4 minutes against a dead server), fewer so that a
# call fails in seconds and the job's own waiting (STARTUP_SECONDS, mlflow.outage_seconds) decides.
HTTP_RETRIES = "2"
# The experiment's kind, which MLflow 3's UI reads from this tag to open an experiment on its runs (a model's
# training) rather than on the GenAI overview of traces; its values are the UI's ExperimentKind (server/js).
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
# The UI's guesses for an experiment without the tag, not a person's choice: replaced. Any other value is
# someone's choice in the UI's "experiment type" menu, and kept.
GUESSED_KINDS = ("custom_model_development_inferred", "genai_development_inferred", "no_inferred_type")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` store (relative to the working directory, as MLflow
    reads it); None for a server, another database or an in-memory store."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    return Path(database) if database and database != ":memory:" else None


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<database>.lock`` for a SQLite store (nothing otherwise)."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{path}.lock")
    try:
        lock.acquire(timeout=5)
    except Timeout:
        log.info("waiting for another job to finish opening the MLflow store %s", path)
        try:
            lock.acquire(timeout=LOCK_TIMEOUT)
        except Timeout as err:
            message = f"{path}.lock: held for {LOCK_TIMEOUT} s by another job opening the MLflow store"
            raise ConfigError(message) from err
    try:
        yield
    finally:
        lock.release()


def is_transient(err: BaseException) -> bool:
    return any(marker in str(err) for marker in TRANSIENT)


def is_unreachable(err: BaseException) -> bool:
    return any(marker in str(err) for marker in UNREACHABLE)


def wait_for_server(uri: str) -> None:
    """Return once the tracking server of ``uri`` answers (any HTTP reply); a ConfigError naming it when
    it refuses connections for STARTUP_SECONDS (nothing listens there, or it is still down)."""
    import requests

    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            requests.get(f"{uri.rstrip('/')}/health", timeout=5)
            return
        except requests.RequestException as err:
            if time.monotonic() >= deadline:
                raise ConfigError(
                    f"MLflow tracking server {uri} does not answer ({type(err).__name__}) after "
                    f"{STARTUP_SECONDS:.0f} s: start it, point MLFLOW_TRACKING_URI (or mlflow.tracking_uri) at one "
                    "that runs, or set mlflow.enabled=false"
                ) from err
            time.sleep(1.0)


def with_retries(call: Callable[..., T]) -> Callable[..., T]:
    """Retry MLflow calls that fail because many jobs write the same store at once (a busy SQLite store);
    a server that does not answer is :class:`.mlflow_job.MlflowRun`'s to wait for."""

    @functools.wraps(call)
    def wrapper(*args, **kwargs):
        for attempt in range(RETRIES):
            try:
                return call(*args, **kwargs)
            except Exception as err:  # MLflow wraps sqlite's and requests' errors in its own types
                if not is_transient(err) or attempt == RETRIES - 1:
                    raise
                delay = 0.5 * 2**attempt * (1 + random.random())
                log.warning("MLflow store busy (%s); retrying in %.1f s", str(err).splitlines()[0][:80], delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    return wrapper


def open_experiment(uri: str, experiment: str) -> str:
    """Point this process's MLflow at ``uri`` and return the id of ``experiment`` (created if new),
    creating or migrating a SQLite store under its lock first."""
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRIES)
    if uri.startswith(("http://", "https://")):
        wait_for_server(uri)
    with store_lock(uri):
        mlflow.set_tracking_uri(uri)
        try:
            found = with_retries(mlflow.set_experiment)(experiment)
            mark_model_training(found)
            return found.experiment_id
        except Exception as err:
            if is_transient(err) or sqlite_path(uri) is None:
                raise
            raise ConfigError(
                f"MLflow store {sqlite_path(uri)} cannot be opened ({str(err).splitlines()[0][:200]}). A store that "
                "jobs of an earlier version created concurrently may be half-migrated: move it aside and rerun "
                "(a new store is created), or point MLFLOW_TRACKING_URI at another one"
            ) from err


def mark_model_training(experiment) -> None:
    """Tag ``experiment`` (an ``mlflow.entities.Experiment``) as a model's training, so that the UI opens it on
    its runs; a kind someone chose for it is left as it is."""
    import mlflow

    kind = experiment.tags.get(EXPERIMENT_KIND)
    if kind is None or kind in GUESSED_KINDS:
        set_tag = with_retries(mlflow.MlflowClient().set_experiment_tag)
        set_tag(experiment.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
    elif kind != MODEL_TRAINING:
        log.info("MLflow experiment %s is kept as %s=%s (set by someone)", experiment.name, EXPERIMENT_KIND, kind)
