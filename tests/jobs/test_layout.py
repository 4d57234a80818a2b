"""The results layout (cycle_pkg/jobs/layout.py) is where the rules put each job's outputs and the
`cycle` commands they run: the test scale's planned jobs name the layout's paths, and the tracking
evaluation draws its OTB plots where the layout says the workflow copies them from."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from cycle_pkg.data.layout import world_stamp
from cycle_pkg.eval.tracking.otb import OTBExperiment
from cycle_pkg.jobs import layout
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS, ROOT

CONFIG = load_config(PARAMS, "test")
RESULTS = CONFIG.results


@dataclass
class Job:
    rule: str
    wildcards: dict[str, str]
    inputs: list[str]
    outputs: list[str]
    log: str
    shell: str


def field(block: str, name: str) -> str:
    found = re.search(rf"^\s*{name}: (.*)$", block, re.MULTILINE)
    return found.group(1) if found else ""


@pytest.fixture(scope="module")
def plan() -> list[Job]:
    """Every job of the test scale's dry run, with what it reads, writes and runs."""
    command = [sys.executable, "-m", "snakemake", "--dry-run", "--printshellcmds", "--forceall"]
    result = subprocess.run([*command, "--config", "scale=test"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = []
    for block in result.stdout.split("\n\n"):
        rule = re.search(r"^(?:local)?rule (\w+):$", block, re.MULTILINE)
        if rule is None:
            continue
        wildcards = dict(item.split("=", 1) for item in field(block, "wildcards").split(", ") if item)
        paths = {name: [p for p in field(block, name).split(", ") if p] for name in ("input", "output")}
        shell = field(block, "Shell command")
        jobs.append(Job(rule.group(1), wildcards, paths["input"], paths["output"], field(block, "log"), shell))
    return jobs


def planned(plan: list[Job], rule: str, **wildcards: str) -> Job:
    (job,) = [j for j in plan if j.rule == rule and j.wildcards == wildcards]
    return job


def test_the_rules_plan_the_paths_of_the_layout(plan):
    pretrain = planned(plan, "pretrain", run="r18")
    assert pretrain.outputs == [str(layout.summary_path(RESULTS, "r18"))]
    assert pretrain.log == str(layout.pretrain_log("r18"))
    assert str(layout.mlflow_marker(RESULTS)) in pretrain.inputs

    evaluate = planned(plan, "evaluate", evaluation="linear_imagenet100", model="r18")
    assert evaluate.outputs == [str(layout.metrics_path(RESULTS, "linear_imagenet100", "r18"))]
    assert evaluate.log == str(layout.eval_log("linear_imagenet100", "r18"))
    assert str(layout.summary_path(RESULTS, "r18")) in evaluate.inputs
    assert str(layout.data_report(RESULTS, "imagenet")) in evaluate.inputs
    assert f" --checkpoint {layout.backbone_path(RESULTS, 'r18')} " in evaluate.shell
    assert f" --output {layout.metrics_path(RESULTS, 'linear_imagenet100', 'r18')} " in evaluate.shell

    table = planned(plan, "table", table="table6")
    assert table.outputs == [
        str(layout.table_path(RESULTS, "table6", "md")),
        str(layout.table_path(RESULTS, "table6", "csv")),
        str(layout.knn_figure_path(RESULTS, "table6")),
    ]
    assert {
        str(layout.metrics_path(RESULTS, "linear_imagenet100", "r18")),
        str(layout.summary_path(RESULTS, "r18")),
    } <= set(table.inputs)
    assert table.log == str(layout.table_log("table6"))
    figure = planned(plan, "ablation_figure", table="table6")
    assert figure.outputs == [str(layout.ablation_figure_path(RESULTS, "table6"))]

    otb = planned(plan, "otb_plot", model="r18", kind="success")
    assert otb.inputs == [str(layout.metrics_path(RESULTS, "track", "r18"))]
    assert otb.outputs == [str(layout.otb_figure_path(RESULTS, "r18", "success"))]
    drawn = layout.otb_plot(layout.eval_job_dir(RESULTS, "track", "r18"), "success")
    assert otb.shell.startswith(f"cp {drawn} {otb.outputs[0]} ")

    dataset = planned(plan, "dataset", dataset="ucf101")
    assert dataset.outputs == [str(layout.data_report(RESULTS, "ucf101"))]
    assert dataset.log == str(layout.data_log("ucf101"))
    assert dataset.inputs == [str(world_stamp(CONFIG.world.root))]
    assert planned(plan, "mlflow_experiment").outputs == [str(layout.mlflow_marker(RESULTS))]


def test_the_otb_plots_are_where_the_tracking_evaluation_draws_them(tmp_path):
    """cycle_pkg.eval.tracking.evaluate gives the toolkit these folders of the job's folder."""
    sequences = [("a", ["f1", "f2"], np.ones((2, 4)))]
    experiment = OTBExperiment(sequences, tmp_path / layout.OTB_RESULTS, tmp_path / layout.OTB_REPORTS)
    drawn = experiment.plot_files(layout.OTB_TRACKER)
    assert sorted(drawn) == sorted(layout.otb_plot(tmp_path, kind) for kind in ("success", "precision"))


def test_an_evaluation_jobs_folder_is_its_metrics_file_without_the_suffix():
    metrics = layout.metrics_path(RESULTS, "finetune", "r18")
    assert layout.eval_job_dir(RESULTS, "finetune", "r18") == layout.job_folder(metrics) == metrics.parent / "r18"
