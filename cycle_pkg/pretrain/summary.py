"""What a pretraining run's summary.json says about its completeness, read by the run itself (to
continue a run stopped early) and by the workflow (which accepts only a complete run). Free of torch:
the Snakefile reads it."""

from __future__ import annotations

from typing import Any


def planned_steps(steps_per_epoch: int, epochs: int) -> int:
    """The steps of all of a run's epochs: what a complete run has trained."""
    return steps_per_epoch * epochs


def stopped_early(summary: dict[str, Any]) -> str | None:
    """Why the run of ``summary`` is not complete (it stopped before its planned steps, at
    pretrain.max_steps), or None for a complete run."""
    planned = planned_steps(summary["steps_per_epoch"], summary["config"]["pretrain"]["epochs"])
    if summary["steps"] >= planned:
        return None
    return f"it stopped at step {summary['steps']} of its {planned} (pretrain.max_steps), so it is not complete"
