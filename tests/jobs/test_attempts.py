"""A run's attempts read back from its attempts log (cycle_pkg/jobs/attempts.py): when each ran, and
how long at least one run of several was running, across sessions."""

from datetime import datetime

from cycle_pkg.jobs.attempts import attempt_spans, busy_seconds

LOG = """\
2026-12-07 08:00:00,000 INFO cycle_pkg.jobs.attempts: attempt on vm, process 1
2026-12-07 08:00:01,500 INFO cycle_pkg.pretrain.steps: step 37/100 loss=4.8
2026-12-07 08:30:00,000 INFO cycle_pkg.pretrain.steps: step 74/100 loss=4.7
Traceback (most recent call last):
2026-12-07 09:00:00,000 INFO cycle_pkg.jobs.attempts: attempt on vm, process 2
2026-12-07 09:00:02,000 INFO cycle_pkg.pretrain.training: resuming r18 from step 74 of 100
2026-12-07 09:10:00,000 INFO cycle_pkg.jobs.attempts: attempt finished
"""


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, 7, hour, minute, second)


def test_each_attempt_runs_from_its_first_line_to_its_last(tmp_path):
    path = tmp_path / "attempts.log"
    path.write_text(LOG)
    assert attempt_spans(path) == [(at(8, 0), at(8, 30)), (at(9, 0), at(9, 10))]  # killed at its last line


def test_busy_time_counts_overlaps_once_and_gaps_not_at_all():
    one = [(at(8, 0), at(8, 30)), (at(9, 0), at(9, 10))]
    other = [(at(8, 20), at(8, 40)), (at(9, 5), at(9, 6)), (at(10, 0), at(10, 0, 30))]
    # 8:00-8:40 (the overlap once), 9:00-9:10 (one inside the other), 10:00-10:00:30; nothing between
    assert busy_seconds(one + other) == 40 * 60 + 10 * 60 + 30
    assert busy_seconds([]) == 0
