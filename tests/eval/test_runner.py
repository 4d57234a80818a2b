"""An evaluation whose training diverged is said so outside its metrics file too: a warning in the
job's log and the MLflow tags cycle.diverged / cycle.divergence beside the metric diverged = 1."""

import json
import logging
import os

import mlflow
from torch import nn

from cycle_pkg.eval.checkpoints import RANDOM, Backbone
from cycle_pkg.eval.registry import EVALUATIONS
from cycle_pkg.eval.runner import run_evaluation
from cycle_pkg.jobs.mlflow_job import listing_digest
from cycle_pkg.settings.config import Config

REASON = "the last epoch's loss 6685 is 3342.5x the first step's 2"


def probe(diverged: bool):
    """A linear job's result as linear_probe returns it, diverged or not, without the probe's cost."""
    flags = {"diverged": diverged, "divergence": REASON if diverged else ""}
    return lambda frozen, mlflow_run: {"top1": 33.3, "top5": 100.0, "train_loss": 6685.0, **flags}


def test_a_diverged_evaluation_is_a_warning_and_an_mlflow_tag(tmp_path, mlflow_uri, caplog):
    backbone = Backbone(nn.Linear(2, 2), "resnet18", 2, RANDOM, RANDOM)
    for diverged in (True, False):
        caplog.clear()
        output = tmp_path / f"diverged-{diverged}.json"
        with caplog.at_level(logging.INFO, logger="cycle_pkg.eval.runner"):
            record = run_evaluation(EVALUATIONS["linear_imagenet"], Config(), backbone, "r18", output, probe(diverged))
        assert json.loads(output.read_text())["metrics"]["diverged"] is diverged
        logged = [r for r in caplog.records if r.name == "cycle_pkg.eval.runner"]
        assert [r.levelno for r in logged] == [logging.WARNING if diverged else logging.INFO]
        assert ("DIVERGED" in logged[0].getMessage()) is diverged
        run = mlflow.MlflowClient(mlflow_uri).get_run(record["mlflow_run_id"])
        assert run.data.metrics["diverged"] == float(diverged)
        tags = {k: v for k, v in run.data.tags.items() if k in ("cycle.diverged", "cycle.divergence")}
        assert tags == ({"cycle.diverged": "true", "cycle.divergence": REASON} if diverged else {})


def test_a_rerun_of_a_killed_frozen_evaluation_leaves_one_finished_mlflow_run(tmp_path, mlflow_uri):
    """A frozen evaluation starts afresh when rerun: the run its killed attempt left RUNNING ends KILLED,
    so that the job has one FINISHED run, not two runs that both look like its result."""
    backbone = Backbone(nn.Linear(2, 2), "resnet18", 2, RANDOM, RANDOM)
    output = tmp_path / "r18.json"

    def killed(frozen, mlflow_run):
        os._exit(137)  # as SIGKILL (or the fork server's death) ends it: no handler, no atexit

    attempt = os.fork()
    if attempt == 0:
        run_evaluation(EVALUATIONS["linear_imagenet"], Config(), backbone, "r18", output, killed)
    os.waitpid(attempt, 0)
    record = run_evaluation(EVALUATIONS["linear_imagenet"], Config(), backbone, "r18", output, probe(False))
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`cycle.run` = 'r18'")
    assert sorted(runs["status"]) == ["FINISHED", "KILLED"]
    assert runs[runs["status"] == "FINISHED"]["run_id"].tolist() == [record["mlflow_run_id"]]


def test_an_evaluation_logs_its_dataset_folders_as_mlflow_datasets(tmp_path, mlflow_uri):
    """The run names each folder the evaluation reads (the registry's datasets) with a digest of its listing,
    in the context evaluation, in an experiment that the UI opens on its runs."""
    roots = {name: tmp_path / name for name in EVALUATIONS["track"].datasets}
    for name, root in roots.items():
        (root / "sequence").mkdir(parents=True)
        (root / "sequence" / "0001.jpg").write_bytes(name.encode())
    config = Config()
    config.data.got10k_root, config.data.otb_root = str(roots["got10k"]), str(roots["otb"])
    backbone = Backbone(nn.Linear(2, 2), "resnet18", 2, RANDOM, RANDOM)
    record = run_evaluation(EVALUATIONS["track"], config, backbone, "r18", tmp_path / "r18.json", probe(False))
    run = mlflow.MlflowClient(mlflow_uri).get_run(record["mlflow_run_id"])
    logged = {
        (d.dataset.name, d.dataset.digest, json.loads(d.dataset.source)["uri"], t.value)
        for d in run.inputs.dataset_inputs
        for t in d.tags
        if t.key == "mlflow.data.context"
    }
    assert logged == {(name, listing_digest(root), str(root), "evaluation") for name, root in roots.items()}
    experiment = mlflow.MlflowClient(mlflow_uri).get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
