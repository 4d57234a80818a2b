"""Signals that ask a long job to save and exit: SLURM's warning before the time limit (SIGUSR1, the
profile's ``--signal=USR1@300``), SIGTERM (scancel, preemption, torchrun's shutdown) and, for a job
run by hand, SIGINT (Ctrl-C). The job acts on them between steps; its loader processes ignore them
until it has saved and shuts them down. A job may also ask to stop once a deadline passes (a SLURM
job's time limit near: :func:`cycle_pkg.pretrain.runtime.time_limit_deadline`)."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
WITH_INTERRUPT = (*SIGNALS, signal.SIGINT)
# what a preemption asks for: the time limit's warning (or deadline) a requeue, anything else a stop;
# STOP wins when both are asked (a cancelled job stays cancelled)
REQUEUE, STOP = 1, 2


class PreemptionFlag:
    """``requested`` turns REQUEUE or STOP (true) when one of ``signals`` arrives, or REQUEUE once
    ``deadline`` (time.monotonic) passes at a :meth:`poll`; a second Ctrl-C stops at once;
    ``restore`` puts the old handlers back."""

    def __init__(self, signals: Sequence[signal.Signals] = SIGNALS, deadline: float | None = None) -> None:
        self.requested, self.deadline, self.interrupted = 0, deadline, False
        self.previous = {s: signal.signal(s, self._handle) for s in signals}

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.interrupted:
            raise KeyboardInterrupt
        log.warning("received %s: saving a checkpoint after this step", signal.Signals(signum).name)
        self.interrupted |= signum == signal.SIGINT
        self.requested = max(self.requested, REQUEUE if signum == signal.SIGUSR1 else STOP)

    def poll(self) -> int:
        """0, REQUEUE or STOP: what was asked so far, the deadline included."""
        if self.deadline is not None and not self.requested and time.monotonic() >= self.deadline:
            log.warning("the SLURM job's time limit is near: saving a checkpoint and requeueing the job")
            self.requested = REQUEUE
        return self.requested

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def ignore_in_worker(_: int) -> None:
    """A loader process's ``worker_init_fn``: the signals are the main process's to act on."""
    for s in WITH_INTERRUPT:
        signal.signal(s, signal.SIG_IGN)
