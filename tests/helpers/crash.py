"""A pretraining run that crashes at a chosen step, for the tests that resume one."""

from __future__ import annotations

import contextlib

import pytest

from cycle_pkg.pretrain import schedule


@contextlib.contextmanager
def crash_at_step(monkeypatch, step: int):
    """The pretraining run in the block crashes when it reaches ``step`` (its learning-rate schedule
    raises there): the block must raise that crash; the schedule is the real one again after it."""
    original = schedule.cosine_lr

    def crash(base, at, total):
        if at == step:
            raise RuntimeError("simulated crash")
        return original(base, at, total)

    monkeypatch.setattr(schedule, "cosine_lr", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        yield
    monkeypatch.setattr(schedule, "cosine_lr", original)
