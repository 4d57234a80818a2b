"""The errors the ``cycle`` command reports as a clear message instead of a traceback, and how it
reports them: one line (what went wrong and what to do) and an exit status."""

from __future__ import annotations

import errno


class ConfigError(ValueError):
    """A configuration value or file that cannot be used; the message says where and why."""


class DatasetError(ValueError):
    """A dataset that is missing or malformed; the message names the path and what to do."""


class NonFiniteLoss(DatasetError):
    """The training loss turned NaN or infinite at ``step``: the run stopped before logging or
    checkpointing it (damaged or wrongly decoded data is the usual cause, hence a data error)."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class Preempted(Exception):
    """A preemption signal arrived (or a SLURM job's time limit neared); a checkpoint was saved and a
    rerun resumes from it. ``requeue``: the job should go back to SLURM's queue (``requeued``: it did)."""

    def __init__(self, message: str, requeue: bool = False, exit_status: int = 143):
        super().__init__(message)
        self.requeue, self.exit_status = requeue, exit_status
        self.requeued: str | None = None  # the SLURM job id, once requeued

    def __str__(self) -> str:
        again = f"; SLURM job {self.requeued} requeued: it resumes when SLURM starts it again" if self.requeued else ""
        return super().__str__() + again


class CheckpointError(ValueError):
    """A checkpoint of an unknown format or of another architecture; the message names the file."""


class MlflowUnavailable(RuntimeError):
    """The MLflow tracking server did not answer for longer than the job may wait; the message names it."""


class RunLocked(RuntimeError):
    """Another live job writes the same run folder; the message names it (host, process, start time)."""


# The file system refusing a job's writes, and what to do; a rerun resumes from the last checkpoint.
AFTERWARDS = "then rerun the same command: it resumes from its last checkpoint"
CANNOT_WRITE = {
    errno.ENOSPC: f"free space on its file system, {AFTERWARDS}",
    errno.EDQUOT: f"free space within your quota, {AFTERWARDS}",
    errno.EROFS: f"its file system is read-only: point the results or logs elsewhere, or remount it, {AFTERWARDS}",
    errno.EACCES: f"make its folder writable for this user, {AFTERWARDS}",
}
# Each expected error's label in the one line, and the exit status
EXPECTED: dict[type[Exception], tuple[str, int]] = {
    ConfigError: ("configuration error", 2),
    DatasetError: ("data error", 2),
    CheckpointError: ("checkpoint error", 2),
    RunLocked: ("busy", 2),
    MlflowUnavailable: ("MLflow unavailable", 1),
}


def report(err: Exception) -> tuple[str, int] | None:
    """The line (after ``cycle: ``) and exit status the command reports ``err`` with; None for an error
    it does not expect, which keeps its traceback."""
    for kind, (label, status) in EXPECTED.items():
        if isinstance(err, kind):
            return f"{label}: {err}", status
    if isinstance(err, Preempted):
        return f"preempted: {err}", err.exit_status
    if isinstance(err, OSError) and err.errno in CANNOT_WRITE and err.filename is not None:
        return f"cannot write {err.filename}: {err.strerror}; {CANNOT_WRITE[err.errno]}", 1
    return None
