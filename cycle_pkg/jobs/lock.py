"""One writer per run folder (a pretraining run's, an evaluation job's): a lock file beside the folder
names its holder. A second job is refused at once with the holder's host, process and start time; a
lock whose holder is known to be dead (the same host and its process gone, or a SLURM job no longer
running) is taken over, and said so. Beside the folder, not in it: a run set aside as
``<run>.replaced-<time>`` leaves its lock where the new run needs it. Rank 0 holds it under torchrun."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import RunLocked
from . import slurm

log = logging.getLogger(__name__)


def lock_path(folder: Path) -> Path:
    return folder.with_name(f"{folder.name}.lock")


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc): tells a reused pid from its holder."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_holder() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "process_start": process_start(os.getpid()),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "slurm_job": slurm.job_id(),
    }


def describe(holder: dict[str, Any]) -> str:
    job = f", SLURM job {holder['slurm_job']}" if holder.get("slurm_job") else ""
    return f"process {holder.get('pid')} on {holder.get('host')}{job}, started {holder.get('started')}"


def why_dead(holder: dict[str, Any]) -> str | None:
    """Why the holder of a lock is known to be dead, or None while it may be alive."""
    job = holder.get("slurm_job")
    if job and job == slurm.job_id():
        return f"an earlier run of this SLURM job {job}, which SLURM requeued"
    if job and slurm.job_running(job) is False:
        return f"SLURM job {job} is no longer running"
    if holder.get("host") != socket.gethostname():
        return None
    pid = holder.get("pid")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"process {pid} is gone"
    except PermissionError:
        pass  # alive, another user's
    if holder.get("process_start") and process_start(pid) != holder["process_start"]:
        return f"process {pid} is gone (its number now belongs to another process)"
    return None


def _create(path: Path, holder: dict[str, Any]) -> bool:
    """Create the lock with its holder's record, whole (a link to a written file) or not at all; False if
    it exists."""
    fd, written = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(holder, handle)
        os.link(written, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(written)


@contextlib.contextmanager
def hold(folder: str | Path) -> Iterator[None]:
    """Be the one writer of ``folder`` while the block runs, or raise RunLocked naming the holder."""
    path = lock_path(Path(folder))
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]  # deepest first
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = this_holder()
    while not _create(path, holder):
        try:
            other = json.loads(path.read_text())
        except FileNotFoundError:
            continue  # released meanwhile
        except ValueError:
            other = {}
        reason = why_dead(other)
        if reason is None:
            raise RunLocked(
                f"{folder} is being written by {describe(other)} (lock {path}). Wait for that job to end or stop "
                "it; if it died on another host, delete the lock"
            )
        with contextlib.suppress(FileNotFoundError):  # one of several takers wins the rename
            taken = path.with_name(f"{path.name}.taken-{os.getpid()}")
            os.rename(path, taken)
            taken.unlink()
            log.warning("%s: took over the lock of %s (%s)", folder, describe(other), reason)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError):
            if json.loads(path.read_text()) == holder:
                path.unlink()
        for folder in made:  # those made for the lock alone, left empty by a job that failed
            try:
                folder.rmdir()
            except OSError:
                break
