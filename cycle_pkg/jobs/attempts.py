"""A long job's log kept in its own folder, every attempt appended to it. The workflow's log file
(``logs/...``) is removed by Snakemake before each attempt, and the SLURM executor removes the log
of a job that succeeded, so a run that was preempted, requeued or retried would otherwise keep only
its last attempt's log."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from . import slurm

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TIME = "%Y-%m-%d %H:%M:%S,%f"  # logging's asctime, which FORMAT puts first on each line
NAME = "attempts.log"
STARTED = "attempt on "
log = logging.getLogger(__name__)


@contextmanager
def attempts_log(folder: Path) -> Iterator[Path]:
    """While the block runs, the root logger also appends to ``folder/attempts.log``: each attempt
    between a line naming its host, process and SLURM job and one saying how it ended (finished, or
    the exception that stopped it: a preemption's says where it saved). Rank 0 writes it under torchrun."""
    path = Path(folder) / NAME
    if int(os.environ.get("RANK", "0")) != 0:
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    job = slurm.job_id()
    log.info(STARTED + "%s, process %d%s", socket.gethostname(), os.getpid(), f", SLURM job {job}" if job else "")
    try:
        yield path
    except BaseException as err:
        log.warning("attempt stopped: %s: %s", type(err).__name__, err)
        raise
    else:
        log.info("attempt finished")
    finally:
        root.removeHandler(handler)
        handler.close()


def attempt_spans(path: Path) -> list[tuple[datetime, datetime]]:
    """Each attempt of an attempts log, from its first line to its last (a killed attempt ends at the
    last line it wrote); lines without a time (a traceback's) are part of the attempt above them."""
    spans: list[tuple[datetime, datetime]] = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            when = datetime.strptime(line[:23], TIME)
        except ValueError:
            continue
        if STARTED in line or not spans:
            spans.append((when, when))
        else:
            spans[-1] = (spans[-1][0], when)
    return spans


def busy_seconds(spans: Iterable[tuple[datetime, datetime]]) -> float:
    """How long at least one of ``spans`` was running: their union's length (overlaps counted once,
    the time between them not at all)."""
    total, end = 0.0, None
    for start, stop in sorted(spans):
        if end is None or start > end:
            total, end = total + (stop - start).total_seconds(), stop
        elif stop > end:
            total, end = total + (stop - end).total_seconds(), stop
    return total
