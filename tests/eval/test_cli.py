"""`cycle eval ...` end to end: a checkpoint in, one metrics file and one MLflow run (linked to the
pretraining run) out; bad checkpoints fail with a clear message."""

import json

import mlflow
import pytest
import torch

from cycle_pkg.cli import main
from cycle_pkg.jobs.layout import metrics_path
from cycle_pkg.reproduction.paper import paper_tables
from cycle_pkg.reproduction.tables import metric_value, read_metrics

from ..helpers import PARAMS, run_cycle_here
from ..helpers.eval_inputs import moco_state, write_our_checkpoint


def eval_args(task, world, tmp_path, checkpoint, *overrides):
    sets = [
        f"data.imagenet_root={world / 'imagenet'}",
        f"results={tmp_path / 'results'}",
        f"eval.cache_dir={tmp_path / 'cache'}",
        *overrides,
    ]
    return ["eval", task, "--params", str(PARAMS), "--scale", "test", "--checkpoint", str(checkpoint)] + [
        a for s in sets for a in ("--set", s)
    ]


@pytest.fixture
def pretraining_run(mlflow_uri, tmp_path):
    """A pretraining run's folder as pretrain/loop.py leaves it, with its MLflow run."""
    client = mlflow.MlflowClient(mlflow_uri)
    run_id = client.create_run(client.create_experiment("cycle-contrast"), run_name="r18").info.run_id
    return write_our_checkpoint(tmp_path / "results" / "pretrain" / "r18", mlflow_run_id=run_id), run_id


def test_linear_probe_of_our_checkpoint_is_linked_to_its_pretraining_run(world, tmp_path, mlflow_uri, pretraining_run):
    checkpoint, pretrain_id = pretraining_run
    moco = ("eval.linear.protocol=moco", "eval.linear.epochs=4", "eval.linear.milestones=[2, 3]")  # MoCo's path, short
    result = run_cycle_here(eval_args("linear", world, tmp_path, checkpoint, *moco), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "results" / "eval" / "linear_imagenet" / "r18.json").read_text())
    metrics = record["metrics"]
    assert (record["run"], record["checkpoint_format"], record["pretrain_mlflow_run_id"]) == (
        "r18",
        "cycle",
        pretrain_id,
    )
    assert (metrics["protocol"], metrics["epochs"], metrics["classes"]) == ("moco", 4, 6)
    assert (metrics["train_images"], metrics["val_images"]) == (48, 24)
    assert read_metrics(metrics_path(tmp_path / "results", "linear_imagenet", "r18"))["top1"] == metrics["top1"]
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 100
    # validated every epoch: MLflow's curve of val top-1; the best of the 4 epochs reported, the last recorded
    curve = mlflow.MlflowClient(mlflow_uri).get_metric_history(record["mlflow_run_id"], "val_top1")
    top1 = [m.value for m in sorted(curve, key=lambda m: m.step)]
    assert [m.step for m in sorted(curve, key=lambda m: m.step)] == [1, 2, 3, 4]
    assert (metrics["report"], metrics["top1"], metrics["top1_last"]) == ("best", max(top1), top1[-1])
    assert top1[metrics["best_epoch"] - 1] == max(top1)
    run = mlflow.MlflowClient(mlflow_uri).get_run(record["mlflow_run_id"])
    assert run.data.tags["cycle.pretrain_run_id"] == pretrain_id
    assert run.data.tags["mlflow.parentRunId"] == pretrain_id  # nested under the pretraining run in the UI
    assert run.data.metrics["top1"] == pytest.approx(metrics["top1"])
    assert run.info.status == "FINISHED"
    assert (tmp_path / "logs" / "eval" / "linear_imagenet" / "r18.log").is_file()


def test_fast_probe_of_a_moco_release_on_imagenet100(world, tmp_path, mlflow_uri):
    torch.save(moco_state(), tmp_path / "moco_v2_800ep_pretrain.pth.tar")
    args = eval_args(
        "linear",
        world,
        tmp_path,
        tmp_path / "moco_v2_800ep_pretrain.pth.tar",
        "eval.linear.protocol=fast",
        "eval.linear.dataset=imagenet100",
    )
    result = run_cycle_here(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads(
        (tmp_path / "results" / "eval" / "linear_imagenet100" / "moco_v2_800ep_pretrain.json").read_text()
    )
    assert (record["checkpoint_format"], record["pretrain_run"], record["metrics"]["protocol"]) == (
        "moco",
        None,
        "fast",
    )
    assert record["metrics"]["classes"] == 3  # the synthetic world holds 3 of ImageNet-100's classes at this scale
    assert len(list((tmp_path / "cache").glob("linear-*.pt"))) == 2  # train and val features, cached
    assert "mlflow.parentRunId" not in mlflow.MlflowClient(mlflow_uri).get_run(record["mlflow_run_id"]).data.tags


def test_bad_checkpoints_fail_clearly(world, tmp_path, mlflow_uri, capsys):
    checkpoint = write_our_checkpoint(tmp_path / "r18")
    assert main(eval_args("linear", world, tmp_path, checkpoint) + ["--backbone", "resnet50"]) == 2
    assert "checkpoint error" in capsys.readouterr().err
    torch.save({"net": {}}, tmp_path / "odd.pt")
    assert main(eval_args("linear", world, tmp_path, tmp_path / "odd.pt")) == 2
    assert "odd.pt: unknown checkpoint format" in capsys.readouterr().err
    (tmp_path / "empty.pt").touch()  # an interrupted download: torch.load's EOFError has no message
    assert main(eval_args("linear", world, tmp_path, tmp_path / "empty.pt")) == 2
    assert "checkpoint error" in capsys.readouterr().err
    assert main(eval_args("linear", world, tmp_path, checkpoint, f"data.imagenet_root={tmp_path / 'none'}")) == 2
    error = capsys.readouterr().err
    assert "data error" in error and f"{tmp_path / 'none' / 'train'}" in error and "not found" in error
    assert not (tmp_path / "results" / "eval").exists()  # no metrics file for a failed evaluation


@pytest.mark.parametrize("task", ["track", "action", "retrieval"])
def test_video_evaluations_on_the_synthetic_world(task, world, tmp_path, pretraining_run):
    """The world's GOT-10k, OTB-2015 and UCF101 parts through the readers of cycle_pkg.data."""
    checkpoint, pretrain_id = pretraining_run
    roots = [f"data.{name}_root={world / name}" for name in ("ucf101", "got10k", "otb")]
    result = run_cycle_here(eval_args(task, world, tmp_path, checkpoint, *roots), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "results" / "eval" / task / "r18.json").read_text())
    assert record["pretrain_mlflow_run_id"] == pretrain_id
    # The tables read every metric their rows name from this file.
    metrics = read_metrics(metrics_path(tmp_path / "results", task, "r18"))
    for table in (t for t in paper_tables().values() if t.evaluation == task):
        for row in table.rows:
            for key in table.metrics:
                assert 0 <= metric_value(metrics, key, row.section) <= 100


def test_a_video_evaluation_of_a_moco_release(world, tmp_path, mlflow_uri):
    """The checkpoint's format matters here, not the task (every task reads the same backbone): the
    cheapest video evaluation, retrieval, stands for the three."""
    task = "retrieval"
    torch.save(moco_state(), tmp_path / "moco_v2_800ep_pretrain.pth.tar")
    roots = [f"data.{name}_root={world / name}" for name in ("ucf101", "got10k", "otb")]
    args = eval_args(task, world, tmp_path, tmp_path / "moco_v2_800ep_pretrain.pth.tar", *roots)
    result = run_cycle_here(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "results" / "eval" / task / "moco_v2_800ep_pretrain.json").read_text())
    assert (record["checkpoint_format"], record["pretrain_run"]) == ("moco", None)
    run = mlflow.MlflowClient(mlflow_uri).get_run(record["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.metrics  # its own run, with the metrics
