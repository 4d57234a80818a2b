"""The representation monitor inside `cycle pretrain`: it leaves the training trajectory exactly as
it is without it, and its curve, its cost and the loader's share of each window reach the summary
and MLflow."""

import json

import mlflow
import torch

from cycle_pkg.checkpoint import load_checkpoint
from cycle_pkg.monitor import FEATURES, load_features

from .conftest import pretrain_args, run_cycle


def test_the_monitor_does_not_change_the_training_trajectory(world, tmp_path):
    common = ("mlflow.enabled=false", f"data.imagenet_root={world / 'imagenet'}")
    states, summaries = {}, {}
    for name, every in (("off", 0), ("on", 1)):  # a look after every step: the strictest check
        result = run_cycle(pretrain_args(world, tmp_path / name, *common, f"pretrain.monitor_every={every}"), tmp_path)
        assert result.returncode == 0, result.stderr
        run_dir = tmp_path / name / "pretrain" / "r18"
        states[name] = load_checkpoint(run_dir / "checkpoint.pt")
        summaries[name] = json.loads((run_dir / "summary.json").read_text())
    assert summaries["off"]["monitor"] is None
    assert summaries["on"]["monitor"]["steps"] == list(range(13))
    off, on = states["off"], states["on"]
    assert off["model"].keys() == on["model"].keys()
    for key, value in off["model"].items():  # weights, BatchNorm statistics, queues, the sampler's state
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, on["model"][key]), key
        else:
            assert torch.equal(value["generator"], on["model"][key]["generator"]), key
    for index, state in off["optimizer"]["state"].items():  # SGD's momentum too
        assert torch.equal(state["momentum_buffer"], on["optimizer"]["state"][index]["momentum_buffer"]), index


def test_knn_curve_cost_and_data_wait_reach_summary_and_mlflow(world, tmp_path, mlflow_uri):
    args = pretrain_args(world, tmp_path / "results", f"data.imagenet_root={world / 'imagenet'}")
    result = run_cycle(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "results" / "pretrain" / "r18"
    summary = json.loads((run_dir / "summary.json").read_text())
    monitor = summary["monitor"]
    # the test scale looks every 4 of its 12 steps, and at step 0; 6 classes: chance is 16.7%
    assert monitor["steps"] == [0, 4, 8, 12] and monitor["classes"] == 6
    assert all(0 <= v <= 100 for v in monitor["knn_top1"]) and monitor["knn_top5"][-1] >= monitor["knn_top1"][-1]
    assert 0 < monitor["seconds"] and 0 < summary["monitor_fraction"] == monitor["seconds"] / summary["train_seconds"]
    assert 0 <= summary["data_wait_fraction"] < 1
    saved = load_features(run_dir / FEATURES)
    assert len(saved["features"]) == monitor["bank_images"] + monitor["query_images"]

    mlflow.set_tracking_uri(mlflow_uri)
    client = mlflow.MlflowClient()
    top1 = client.get_metric_history(summary["mlflow_run_id"], "knn_top1")
    assert [m.step for m in top1] == [0, 4, 8, 12] and [m.value for m in top1] == monitor["knn_top1"]
    wait = client.get_metric_history(summary["mlflow_run_id"], "data_wait_fraction")
    assert [m.step for m in wait] == [2, 4, 6, 8, 10, 12] and all(0 <= m.value < 1 for m in wait)
