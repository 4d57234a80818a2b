"""Shared fixtures: the test scale's synthetic world (written once per session) and settings, a
random frozen backbone, and an isolated MLflow store per test."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

from cycle_pkg.cli import main
from cycle_pkg.data.synthetic import generate_world
from cycle_pkg.eval.checkpoints import load_backbone
from cycle_pkg.eval.features import FrozenBackbone
from cycle_pkg.settings.config import load_config

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


def pytest_configure(config):
    """Parallel workers share the cores: each one's torch, and the commands it starts, use its share
    rather than all of them, which would oversubscribe the machine."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def minutes(group: list) -> float:
    """How long a group of long tests runs, from their ``long(minutes=...)`` markers (1 unsaid)."""
    return sum(item.get_closest_marker("long").kwargs.get("minutes", 1) for item in group)


def pytest_collection_modifyitems(config, items):
    """The long tests start at once, one group per worker. `make test` runs pytest-xdist's work
    stealing, which hands worker i the i-th of n consecutive equal shares of this list and runs each
    share in order (an idle worker then steals from the tail of a busy one's). So the long tests go
    to the heads of the shares, the longest first to the least loaded share (a module marked long as
    a whole stays in one share, so that its fixtures are built once), and the short ones fill the
    shares behind them."""
    groups: dict[str, list] = {}
    short = []
    for item in items:
        if item.get_closest_marker("long") is None:
            short.append(item)
            continue
        own = any(mark.name == "long" for mark in item.own_markers)  # else the module's mark
        groups.setdefault(item.nodeid if own else item.module.__name__, []).append(item)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    heads: list[list] = [[] for _ in range(workers)]
    for group in sorted(groups.values(), key=minutes, reverse=True):
        min(heads, key=minutes).extend(group)
    ordered, remaining = [], len(items)
    for i, head in enumerate(heads):
        size = remaining // (workers - i)  # the share xdist sends worker i
        fill = max(0, size - len(head))
        ordered += head + short[:fill]
        short = short[fill:]
        remaining -= len(head) + fill
    items[:] = ordered + short


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


@pytest.fixture(scope="module")
def config():
    """The test scale's settings."""
    return load_config(PARAMS, "test")


@pytest.fixture(scope="module")
def frozen():
    """A seeded random ResNet-18, frozen, on the CPU."""
    backbone = load_backbone("random", arch="resnet18", seed=0)
    return FrozenBackbone(backbone.net, backbone.width, torch.device("cpu"))


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


def cycle_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cycle_pkg.cli", *args]


def pretrain_args(world: Path, results: Path, *overrides: str) -> list[str]:
    """`cycle pretrain` on the test scale, reading ``world`` (its R2V2, and its ImageNet for the
    monitor) and writing under ``results``."""
    sets = [f"data.r2v2_root={world / 'r2v2'}", f"data.imagenet_root={world / 'imagenet'}", f"results={results}"]
    sets += overrides
    return ["pretrain", "--params", str(PARAMS), "--scale", "test", *(a for s in sets for a in ("--set", s))]


def run_cycle(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cycle_command(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kwargs)


class Ran(NamedTuple):
    returncode: int
    stderr: str


def run_cycle_here(args: list[str], cwd: Path) -> Ran:
    """What :func:`run_cycle` does, in this process: without a new interpreter's ~10 CPU s of
    importing torch, torchvision and MLflow again. For commands that no test signals or kills and
    whose loaders start no worker processes (forks of the multi-threaded pytest worker)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stderr, previous = io.StringIO(), Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(stderr):
            code = main(args)
    finally:
        os.chdir(previous)
        for handler in root.handlers:  # the command's own (its log file): closed, the test's put back
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    return Ran(code, stderr.getvalue())


@pytest.fixture
def saved_figures(monkeypatch) -> list:
    """The figures that :func:`cycle_pkg.jobs.plots.save_png` writes in the test, as they were written."""
    from cycle_pkg.jobs import plots
    from cycle_pkg.pretrain import monitor_figures
    from cycle_pkg.reproduction import figures as table_figures

    figures, save_png = [], plots.save_png

    def keep(figure, path, **kwargs):
        figures.append(figure)
        return save_png(figure, path, **kwargs)

    for module in (monitor_figures, table_figures):
        monkeypatch.setattr(module, "save_png", keep)
    return figures


def legend_overlaps(figure) -> list[str]:
    """The figure's legends that lie over one of its (visible) axes, drawn as it was laid out when saved;
    an error if it has no legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)  # pyplot's was let go when the figure was closed
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = [*figure.legends, *(axis.get_legend() for axis in figure.axes if axis.get_legend())]
    assert legends, "the figure has no legend"
    return [
        f"legend {[t.get_text() for t in legend.get_texts()]} over axes {axis.get_ylabel()!r}"
        for legend in legends
        for axis in figure.axes
        if axis.axison and legend.get_window_extent(renderer).overlaps(axis.get_window_extent(renderer))
    ]
