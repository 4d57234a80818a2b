"""Whether a training inside an evaluation diverged (a linear probe, a fine-tune, SiamFC's head).

An evaluation's numbers describe the representation only if its own training worked. A training
diverged when a loss is not finite, or when its last epoch ends far above where it started: more
than ``FACTOR`` times the loss of its first step, taken at the initial weights. (The first step, not
the first epoch's mean: a probe with too large a step size blows up within its first epoch, whose
mean is then already in the thousands.) A diverged run still writes its metrics, flagged
(``diverged``, ``divergence`` in the metrics JSON, ``diverged`` = 1 in MLflow, a mark in the table),
never as a plain number.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
FACTOR = 2.0  # a last epoch's loss above FACTOR x the first step's is a divergence


@dataclass
class LossHistory:
    """A training's losses: its first step's, at the initial weights, and each epoch's mean."""

    first_step: float = math.nan
    epochs: list[float] = field(default_factory=list)

    def add_epoch(self, step_losses: Sequence[float]) -> float:
        """Record an epoch from its steps' losses, in order; returns the epoch's mean."""
        if not self.epochs:
            self.first_step = step_losses[0]
        self.epochs.append(sum(step_losses) / len(step_losses))
        return self.epochs[-1]

    @property
    def last(self) -> float:
        return self.epochs[-1]


def divergence_reason(history: LossHistory, factor: float = FACTOR) -> str | None:
    """Why a training with these losses diverged, or None if it did not."""
    if not math.isfinite(history.first_step):
        return f"the loss of the first step is {history.first_step}"
    for epoch, loss in enumerate(history.epochs, start=1):
        if not math.isfinite(loss):
            return f"the loss of epoch {epoch} is {loss}"
    if history.epochs and history.last > factor * history.first_step:
        return (
            f"the last epoch's loss {history.last:.4g} is {history.last / history.first_step:.1f}x the first "
            f"step's {history.first_step:.4g} (more than {factor:g}x)"
        )
    return None


def divergence_flags(what: str, history: LossHistory, factor: float = FACTOR) -> dict[str, Any]:
    """``{"diverged": bool, "divergence": reason}`` for an evaluation's metrics; a diverged training is
    also a warning in the log. ``what`` names the training (e.g. "linear probe")."""
    reason = divergence_reason(history, factor)
    if reason is not None:
        log.warning("%s diverged: %s; its metrics do not measure the representation", what, reason)
    return {"diverged": reason is not None, "divergence": reason or ""}


def diverged(metrics: dict[str, Any]) -> bool:
    """Whether an evaluation's metrics carry the divergence flag."""
    return bool(metrics.get("diverged", False))
