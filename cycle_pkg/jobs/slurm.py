"""The SLURM job this process runs in, if any: its time left, how often it was requeued, and
requeueing it once its checkpoint is saved.

A job that reaches its time limit (or gets the SIGUSR1 warning before it) and merely exits counts
as failed for the workflow, which resubmits it and spends one of its retries. A job that requeues
itself keeps its job id: SLURM runs it again as PENDING -> RUNNING, Snakemake's SLURM executor
keeps waiting on the same id, and the retries stay for real failures (PyTorch Lightning's SLURM
auto-requeue works the same way). SLURM counts the requeues: SLURM_RESTART_COUNT in the batch
script, `Restarts=` in `scontrol show job` (Snakemake's job step drops SLURM_RESTART_COUNT from the
environment of the rule's command, so the count is asked of scontrol there). The executor
(snakemake-executor-plugin-slurm 2.x) fails a job only on BOOT_FAIL, CANCELLED, DEADLINE, FAILED,
NODE_FAIL, OUT_OF_MEMORY, TIMEOUT or ERROR, and waits on any other state: REQUEUED and PENDING too.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess

log = logging.getLogger(__name__)
# squeue's TimeLeft (%L): [days-][hours:]minutes:seconds, or a word (UNLIMITED, NOT_SET, INVALID)
TIME_LEFT = re.compile(r"^(?:(?:(\d+)-)?(\d+):)?(\d+):(\d+)$")
RESTARTS = re.compile(r"(?:^|\s)Restarts=(\d+)(?:\s|$)")


def job_id() -> str | None:
    """The id of the SLURM job this process runs in (a batch job, or a step of one)."""
    return os.environ.get("SLURM_JOB_ID") or None


def restart_count() -> int:
    """How many times SLURM has requeued this job (0 on its first run, or when SLURM cannot say)."""
    if os.environ.get("SLURM_RESTART_COUNT"):
        return int(os.environ["SLURM_RESTART_COUNT"])
    job = job_id()
    if job is None:
        return 0
    try:
        result = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("cannot ask scontrol how often SLURM job %s was requeued (%s)", job, err)
        return 0
    match = RESTARTS.search(result.stdout) if result.returncode == 0 else None
    if match is None:
        log.warning("scontrol could not say how often SLURM job %s was requeued: %s", job, result.stderr.strip()[:200])
        return 0
    return int(match.group(1))


def count_requeues(counters: dict) -> None:
    """Add this job's requeues since ``counters`` last saw it to ``counters["requeues"]``: SLURM counts
    them per job id, and a job the workflow resubmits after a failure starts again from 0."""
    job = job_id()
    if job is None:
        return
    seen = counters.get("slurm_restarts", 0) if counters.get("slurm_job") == job else 0
    restarts = restart_count()
    counters["requeues"] = counters.get("requeues", 0) + max(restarts - seen, 0)
    counters.update(slurm_job=job, slurm_restarts=restarts)


def parse_time_left(text: str) -> float | None:
    """Seconds in squeue's TimeLeft format; None for no limit or an unknown one."""
    match = TIME_LEFT.match(text.strip())
    if not match:
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def seconds_left(job: str) -> float | None:
    """The time left before the job's limit, as SLURM sees it now; None when there is none or
    squeue cannot say (the job then simply runs until SLURM stops it)."""
    try:
        result = subprocess.run(["squeue", "-h", "-j", job, "-o", "%L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("cannot ask squeue for the time left of SLURM job %s (%s)", job, err)
        return None
    if result.returncode != 0:
        log.warning("squeue could not say the time left of SLURM job %s: %s", job, result.stderr.strip()[:200])
        return None
    return parse_time_left(result.stdout.strip().splitlines()[0] if result.stdout.strip() else "")


def requeue(job: str) -> bool:
    """Put the job back in SLURM's queue under the same id; SLURM ends this run of it shortly after.
    False (and a warning) where the cluster refuses, e.g. with JobRequeue=0 or `sbatch --no-requeue`:
    the job then ends and the workflow's retries resubmit it."""
    try:
        result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("could not requeue SLURM job %s (%s); the workflow's retries will resubmit it", job, err)
        return False
    if result.returncode != 0:
        log.warning(
            "SLURM refused to requeue job %s (%s); the workflow's retries will resubmit it",
            job,
            (result.stderr or result.stdout).strip()[:200],
        )
        return False
    log.info("requeued SLURM job %s: it resumes from its checkpoint when SLURM starts it again", job)
    return True


FINISHED = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
}


def job_running(job: str) -> bool | None:
    """Whether SLURM job ``job`` is still alive (pending, running, requeued, ...): False once it ended or
    SLURM no longer knows it; None when squeue cannot say."""
    try:
        result = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return False if "Invalid job id" in result.stderr else None
    states = result.stdout.split()
    return bool(states) and states[0] not in FINISHED
