"""The science scale's figure, drawn from run 1's committed result: every label readable."""

import json

from benchmarks import science_report

from ..helpers import ROOT
from ..helpers.figures import label_overlaps, legend_overlaps


def test_the_science_figure_keeps_its_labels_and_legends_apart(tmp_path, saved_figures):
    rows = json.loads((ROOT / "benchmarks" / "results" / "science_run1_cpu.json").read_text())["rows"]
    science_report.figure(rows, "Table 4", tmp_path / "science.png")
    (figure,) = saved_figures
    assert len(figure.axes) == 3
    assert legend_overlaps(figure) == []
    assert label_overlaps(figure) == []
