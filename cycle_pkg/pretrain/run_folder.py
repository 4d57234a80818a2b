"""A run folder's life: what a run writes into it, the settings it was trained with, and the
checkpoint a restarted job resumes from. The folder, not the process, is the job: a rerun of the same
command finds its work there."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch.distributed as dist

from ..errors import ConfigError
from ..jobs.atomic import stale_temporaries
from ..jobs.layout import MLFLOW_RUN_ID, SUMMARY
from ..settings.config import Config
from ..settings.identity import config_differences
from .runtime import Runtime
from .state import BACKBONE, CHECKPOINT, make_current, newest_readable

log = logging.getLogger(__name__)
CONFIG = "config.json"  # the settings of a run, written when it starts
RUN_FILES = (CHECKPOINT, BACKBONE, SUMMARY, CONFIG, MLFLOW_RUN_ID)  # what a run writes (atomically) into its folder


def saved_config(run_dir: Path) -> dict[str, Any] | None:
    """The settings a run folder was trained with (its summary's, else those written at its start)."""
    if (run_dir / SUMMARY).is_file():
        return json.loads((run_dir / SUMMARY).read_text())["config"]
    if (run_dir / CONFIG).is_file():
        return json.loads((run_dir / CONFIG).read_text())
    return None


def restore(run_dir: Path, config: Config, runtime: Runtime) -> dict[str, Any] | None:
    """The run's newest readable checkpoint, if any (rank 0 first removes the temporaries that killed
    writes left); one written with other settings is an error."""
    if runtime.is_main:
        for name in RUN_FILES:
            for stale in stale_temporaries(run_dir / name):
                stale.unlink()
                log.warning("removed %s, left by an interrupted write", stale.name)
    found = newest_readable(run_dir)
    if runtime.world > 1:
        dist.barrier()  # every process has read it before rank 0 may rename it
    if found is None:
        return None
    path, state = found
    differences = config_differences(state["config"], config)
    if differences:
        raise ConfigError(
            f"{path} was written with other settings ({'; '.join(differences)}). "
            "Resume with the same settings, or delete the run folder to start over"
        )
    if runtime.is_main:
        make_current(path)
    return state
