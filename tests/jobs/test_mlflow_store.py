"""The MLflow store under concurrent jobs: a fresh SQLite store opened by several processes at once."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from cycle_pkg.errors import ConfigError
from cycle_pkg.jobs.mlflow_store import open_experiment, sqlite_path, with_retries

# One job's whole use of the run log: open the store, start a run, log, end it.
JOB = """
import sys
from cycle_pkg.settings.sections import MlflowConfig
from cycle_pkg.jobs.mlflow_job import MlflowRun
run_log = MlflowRun(MlflowConfig(tracking_uri=sys.argv[1]))
run_log.start(f"job{sys.argv[2]}", None, {"job": sys.argv[2]}, {"cycle.job": "test"})
run_log.log_metrics({"m": float(sys.argv[2])}, step=1)
run_log.end("FINISHED")
"""


def test_jobs_started_at_once_on_a_fresh_sqlite_store_all_succeed(tmp_path):
    db = tmp_path / "store" / "mlflow.db"
    uri = f"sqlite:///{db}"
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", JOB, uri, str(i)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for i in range(4)
    ]
    outputs = [job.communicate(timeout=300)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0] * 4, "\n\n".join(o[-1500:] for o in outputs)
    tables = {name for (name,) in sqlite3.connect(db).execute("select name from sqlite_master where type='table'")}
    assert not {t for t in tables if t.startswith("_alembic_tmp")}
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["cycle-contrast"])
    assert sorted(runs["metrics.m"]) == [0.0, 1.0, 2.0, 3.0] and set(runs["status"]) == {"FINISHED"}


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("sqlite:///mlflow.db", Path("mlflow.db")),
        ("sqlite:////abs/dir/m.db", Path("/abs/dir/m.db")),
        ("sqlite://", None),
        ("http://127.0.0.1:5000", None),
        ("postgresql://u@h/db", None),
    ],
)
def test_the_lock_is_taken_for_sqlite_files_only(uri, path):
    assert sqlite_path(uri) == path


def test_a_store_that_cannot_be_migrated_is_a_clear_error(tmp_path):
    db = tmp_path / "mlflow.db"
    connection = sqlite3.connect(db)  # what an interrupted migration leaves: tables at a version alembic lacks
    connection.execute("create table alembic_version (version_num varchar(32) not null primary key)")
    connection.execute("insert into alembic_version values ('ffffffffffff')")
    connection.execute("create table experiments (experiment_id integer primary key)")
    connection.commit()
    with pytest.raises(ConfigError, match=f"MLflow store {db} cannot be opened .*move it aside"):
        open_experiment(f"sqlite:///{db}", "cycle-contrast")


def test_busy_store_is_retried(monkeypatch):
    monkeypatch.setattr("cycle_pkg.jobs.mlflow_store.time.sleep", lambda seconds: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert with_retries(flaky)() == "ok" and len(calls) == 3
    with pytest.raises(ValueError, match="not transient"):
        with_retries(lambda: (_ for _ in ()).throw(ValueError("not transient")))()
