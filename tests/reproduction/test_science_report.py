"""The science scale's figure, drawn from the committed runs' results: every label readable."""

import json

import pytest

from benchmarks import science_report

from ..helpers import ROOT
from ..helpers.figures import label_overlaps, legend_overlaps


@pytest.mark.parametrize("run", ["run1", "run3"])
def test_the_science_figure_keeps_its_labels_and_legends_apart(run, tmp_path, saved_figures):
    rows = json.loads((ROOT / "benchmarks" / "results" / f"science_{run}_cpu.json").read_text())["rows"]
    science_report.figure(rows, "Table 4", tmp_path / "science.png")
    (figure,) = saved_figures
    assert len(figure.axes) == 3
    assert legend_overlaps(figure) == []
    assert label_overlaps(figure) == []


def test_the_pretraining_time_spans_every_invocation_of_a_resumed_run(tmp_path):
    logs = {
        "r18": [
            "2026-12-07 08:00:00,000 attempt on vm",
            "2026-12-07 09:00:00,000 step",
            "2026-12-07 11:00:00,000 attempt on vm",
            "2026-12-07 11:30:00,000 attempt finished",
        ],
        "r18-seed1": ["2026-12-07 08:00:00,000 attempt on vm", "2026-12-07 08:45:00,000 attempt finished"],
    }
    for run, lines in logs.items():
        (tmp_path / "pretrain" / run).mkdir(parents=True)
        (tmp_path / "pretrain" / run / "attempts.log").write_text("\n".join(lines) + "\n")
    time = science_report.pretraining_time(str(tmp_path), list(logs))
    assert time == {
        "attempts": 3,
        "resumed_runs": ["r18"],
        "busy_seconds": 90 * 60,  # 8:00-9:00 and 11:00-11:30: the two hours between sessions left out
        "from": "2026-12-07 08:00:00",
        "to": "2026-12-07 11:30:00",
    }
