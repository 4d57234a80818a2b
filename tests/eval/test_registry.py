"""The registry of evaluations: what `cycle eval`, the rules and the tables read from it."""

import importlib
import subprocess
import sys

import pytest

from cycle_pkg.errors import ConfigError
from cycle_pkg.eval.registry import EVALUATIONS, evaluation_datasets, evaluation_of, tasks
from cycle_pkg.reproduction.paper import Row, Table, _check_evaluation, paper_tables
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS


def test_a_task_and_its_settings_select_one_evaluation():
    assert evaluation_of("linear", load_config(PARAMS, "test")).name == "linear_imagenet"
    in100 = load_config(PARAMS, "test", ["eval.linear.dataset=imagenet100"])
    assert evaluation_of("linear", in100).name == "linear_imagenet100"
    assert evaluation_of("retrieval", in100).name == "retrieval"
    with pytest.raises(ConfigError, match="cycle eval detect: the settings select 0"):
        evaluation_of("detect", in100)


def test_tasks_datasets_and_builders():
    assert list(tasks()) == ["linear", "track", "action", "finetune", "retrieval"]
    assert [name for name, e in EVALUATIONS.items() if not e.frozen] == ["finetune"]  # it trains the backbone
    assert tasks()["linear"].count("linear probe") == 2
    assert evaluation_datasets() == ["got10k", "imagenet", "otb", "ucf101"]
    for evaluation in EVALUATIONS.values():
        module, function = evaluation.builder.split(":")
        assert callable(getattr(importlib.import_module(module, "cycle_pkg.eval"), function)), evaluation.builder


def test_every_table_reads_an_evaluation_and_metrics_it_writes():
    assert {t.evaluation for t in paper_tables().values()} == set(EVALUATIONS)
    row = Row(method="m", paper={"top1": 1.0}, section="frame")
    _check_evaluation(Table("table11", "", "retrieval", {"top1": "Top-1"}, (row,)))
    with pytest.raises(ValueError, match="table11: retrieval writes no metric frame_top2 "):
        _check_evaluation(Table("table11", "", "retrieval", {"top2": "Top-2"}, (row,)))
    with pytest.raises(ValueError, match="unknown evaluation 'linear'"):
        _check_evaluation(Table("table3", "", "linear", {"top1": "Top-1"}, (row,)))


def test_the_workflow_reads_the_registry_without_torch():
    """The Snakefile imports the registry, the grid and the layouts at parse time, for every job."""
    modules = "cycle_pkg.eval.registry, cycle_pkg.reproduction.grid, cycle_pkg.jobs.layout, cycle_pkg.data.layout"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_every_evaluation_describes_its_protocol_from_its_recorded_settings():
    import dataclasses

    from cycle_pkg.settings.sections import EvalConfig

    for evaluation in EVALUATIONS.values():
        settings = dataclasses.asdict(getattr(EvalConfig(), evaluation.task))
        text = evaluation.describe(settings, {})
        assert text and "{" not in text, evaluation.name
    finetune = EVALUATIONS["finetune"].describe(dataclasses.asdict(EvalConfig().finetune), {})
    assert "32-frame clips at 16 fps" in finetune and "groups of 8 clips" in finetune and "dropout 0.9" in finetune
