"""What the tests share besides fixtures: the project's paths, and ``cycle`` commands run in a new
interpreter (:func:`run_cycle`) or in the test's own process (:func:`run_cycle_here`). The modules
beside this one draw or serve test inputs; ``scheduling`` is the pytest plugin that spreads the long
tests over the parallel workers."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from cycle_pkg.cli import main

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


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
