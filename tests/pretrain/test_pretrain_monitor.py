"""The representation monitor inside `cycle pretrain` leaves the training trajectory exactly as it
is without it (its curve, cost and features in the summary and MLflow: tests/pretrain/test_pretrain.py)."""

import json

import torch

from cycle_pkg.pretrain.monitor import MECHANISM
from cycle_pkg.pretrain.state import load_checkpoint

from ..helpers import pretrain_args, run_cycle_here


def test_the_monitor_does_not_change_the_training_trajectory(world, tmp_path):
    common = ("mlflow.enabled=false", "pretrain.max_steps=6")
    states, summaries = {}, {}
    for name, every in (("off", 0), ("on", 1)):  # a look after every step: the strictest check
        looks = (f"pretrain.monitor_every={every}", "pretrain.monitor.videos=8")  # the mechanism replayed too
        args = pretrain_args(world, tmp_path / name, *common, *looks)
        result = run_cycle_here(args, tmp_path)
        assert result.returncode == 0, result.stderr
        run_dir = tmp_path / name / "pretrain" / "r18"
        states[name] = load_checkpoint(run_dir / "checkpoint.pt")
        summaries[name] = json.loads((run_dir / "summary.json").read_text())
    assert summaries["off"]["monitor"] is None
    assert summaries["on"]["monitor"]["steps"] == list(range(7))
    for key in MECHANISM:  # on the 32 frames of 8 val videos of 6 known classes
        assert len(summaries["on"]["monitor"][key]) == 7 and all(0 <= v <= 100 for v in summaries["on"]["monitor"][key])
    off, on = states["off"], states["on"]
    assert off["model"].keys() == on["model"].keys()
    for key, value in off["model"].items():  # weights, BatchNorm statistics, queues, the sampler's state
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, on["model"][key]), key
        else:
            assert torch.equal(value["generator"], on["model"][key]["generator"]), key
    for index, state in off["optimizer"]["state"].items():  # SGD's momentum too
        assert torch.equal(state["momentum_buffer"], on["optimizer"]["state"][index]["momentum_buffer"]), index
