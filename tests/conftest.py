"""Shared fixtures: the test scale's synthetic world (written once per session) and an isolated MLflow
store per test. The evaluations' own (the test scale's settings, a random frozen backbone) are in
tests/eval/conftest.py; what tests share besides fixtures is in tests/helpers/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from cycle_pkg.data.synthetic import generate_world
from cycle_pkg.settings.config import load_config

from .helpers import PARAMS

# The long tests first, spread over the parallel workers (`make test` runs pytest-xdist).
pytest_plugins = ["tests.helpers.scheduling"]


def pytest_configure(config):
    """Parallel workers share the cores: each one's torch, and the commands it starts, use its share
    rather than all of them, which would oversubscribe the machine."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def no_inherited_mlflow_store(monkeypatch):
    """Every test starts without MLFLOW_TRACKING_URI: `mlflow.set_tracking_uri` in an earlier test of
    the same worker sets it, and it wins over the store a test gives its jobs (the `mlflow_uri`
    fixture sets it again for the tests that use one)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """The test scale's synthetic world, in a temporary folder."""
    config = load_config(PARAMS, "test", [f"world.root={tmp_path_factory.mktemp('world')}"])
    return generate_world(config.world)


@pytest.fixture(scope="session")
def empty_mlflow_store(tmp_path_factory) -> Path:
    """An MLflow store whose tables exist: creating them takes seconds, copying the file none."""
    import mlflow  # here: most tests need no MLflow

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch, empty_mlflow_store) -> str:
    """A fresh MLflow store of the test's own (a copy of the empty one), for it and its subprocesses."""
    shutil.copyfile(empty_mlflow_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def saved_figures(monkeypatch) -> list:
    """The figures that :func:`cycle_pkg.jobs.plots.save_png` writes in the test, as they were written."""
    from benchmarks import science_report
    from cycle_pkg.jobs import plots
    from cycle_pkg.pretrain import monitor_figures
    from cycle_pkg.reproduction import figures as table_figures

    figures, save_png = [], plots.save_png

    def keep(figure, path, **kwargs):
        figures.append(figure)
        return save_png(figure, path, **kwargs)

    for module in (monitor_figures, table_figures, science_report):
        monkeypatch.setattr(module, "save_png", keep)
    return figures
