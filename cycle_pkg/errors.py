"""The errors the ``cycle`` command reports as a clear message instead of a traceback."""


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
