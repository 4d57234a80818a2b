"""Signals that ask a long job to save and exit: SLURM's warning before the time limit (SIGUSR1, the
profile's ``--signal=USR1@300``), SIGTERM (scancel, preemption, torchrun's shutdown) and, for a job
run by hand, SIGINT (Ctrl-C). The job acts on them between steps; its loader processes ignore them
until it has saved and shuts them down."""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
WITH_INTERRUPT = (*SIGNALS, signal.SIGINT)


class PreemptionFlag:
    """``requested`` turns true when one of ``signals`` arrives; ``restore`` puts the old handlers back."""

    def __init__(self, signals: Sequence[signal.Signals] = SIGNALS) -> None:
        self.requested = False
        self.previous = {s: signal.signal(s, self._handle) for s in signals}

    def _handle(self, signum: int, frame: Any) -> None:
        log.warning("received %s: saving a checkpoint after this step", signal.Signals(signum).name)
        self.requested = True

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def ignore_in_worker(_: int) -> None:
    """A loader process's ``worker_init_fn``: the signals are the main process's to act on."""
    for s in WITH_INTERRUPT:
        signal.signal(s, signal.SIG_IGN)
