"""The faults a cluster produces, each reproduced on `cycle pretrain` / `cycle eval` at the test scale:
damaged checkpoints, kills between two writes, leftover temporaries, Ctrl-C, replayed steps, data
errors, and mistakes on the command line."""

import json
import os
import re
import signal
import subprocess
import time

import mlflow
import pytest
import torch

from cycle_pkg import model as model_module
from cycle_pkg.cli import main
from cycle_pkg.eval.checkpoints import load_backbone
from cycle_pkg.losses import info_nce
from cycle_pkg.model import build_backbone
from cycle_pkg.pretrain.state import load_checkpoint

from ..helpers import PARAMS, cycle_command, pretrain_args, run_cycle_here

NO_MLFLOW = "mlflow.enabled=false"


def interrupted_run(world, tmp_path, signum, after_step, *overrides):
    """A run sent ``signum`` once its log shows ``after_step``; its folder, step reached and stderr."""
    args = pretrain_args(world, tmp_path / "results", "pretrain.epochs=40", *overrides)
    stderr = (tmp_path / "stderr.txt").open("w")
    process = subprocess.Popen(cycle_command(*args), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr)
    log = tmp_path / "logs" / "pretrain" / "r18.log"
    while (not log.exists() or f"step {after_step}/" not in log.read_text()) and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signum)
    process.wait(timeout=120)
    return tmp_path / "results" / "pretrain" / "r18", process.returncode, (tmp_path / "stderr.txt").read_text()


def test_a_damaged_checkpoint_is_skipped_for_the_previous_one_and_stale_temporaries_removed(world, tmp_path):
    run_dir, code, stderr = interrupted_run(
        world, tmp_path, signal.SIGTERM, 6, NO_MLFLOW, "pretrain.checkpoint_every=2"
    )
    assert code == 143, stderr
    newest = load_checkpoint(run_dir / "checkpoint.pt")["step"]
    previous = load_checkpoint(run_dir / "checkpoint.previous.pt")["step"]
    assert previous < newest  # the good one before it was kept
    (run_dir / "checkpoint.pt").write_bytes((run_dir / "checkpoint.pt").read_bytes()[:1000])  # a power loss
    stale = run_dir / ".checkpoint.pt.k2j4x9.tmp"  # what a SIGKILL during a write leaves
    stale.write_bytes(b"\0" * 4096)
    other = run_dir / ".notes.txt.abc.tmp"  # not a file a run writes: left alone
    other.write_text("mine")

    args = pretrain_args(
        world, tmp_path / "results", NO_MLFLOW, "pretrain.epochs=40", f"pretrain.max_steps={newest + 2}"
    )
    resumed = run_cycle_here(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert re.search(rf"skipping {re.escape(str(run_dir / 'checkpoint.pt'))}: unreadable \(.+\)", resumed.stderr)
    assert f"resuming r18 from step {previous} of {newest + 2}" in resumed.stderr
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == newest + 2
    assert not stale.exists() and other.exists() and f"removed {stale.name}" in resumed.stderr


def test_no_readable_checkpoint_is_a_clear_error(world, tmp_path):
    args = pretrain_args(world, tmp_path / "results", NO_MLFLOW, "pretrain.max_steps=2")
    assert run_cycle_here(args, cwd=tmp_path).returncode == 0
    run_dir = tmp_path / "results" / "pretrain" / "r18"
    (run_dir / "summary.json").unlink()  # as if the job had died before its end
    (run_dir / "checkpoint.pt").write_bytes(b"")  # a full disk
    for again in (run_cycle_here(args, cwd=tmp_path), run_cycle_here([*args, "--restart-on-change"], cwd=tmp_path)):
        assert again.returncode == 2 and "Traceback" not in again.stderr, again.stderr
        assert f"checkpoint error: {run_dir / 'checkpoint.pt'}: unreadable" in again.stderr
        assert "Delete the run folder" in again.stderr


def test_the_end_of_a_run_keeps_a_backbone_export_and_closes_a_run_left_running(world, tmp_path, mlflow_uri):
    """The end of a run: backbone.pt beside the full state (or alone, pretrain.keep_training_state
    false), the MLflow run ended before summary.json, and one left RUNNING by a kill between the
    two closed by a rerun."""
    args = pretrain_args(world, tmp_path / "results", "pretrain.max_steps=4")
    assert run_cycle_here(args, cwd=tmp_path).returncode == 0
    run_dir = tmp_path / "results" / "pretrain" / "r18"
    full = load_checkpoint(run_dir / "checkpoint.pt")
    exported = load_backbone(run_dir / "backbone.pt")
    assert (exported.format, exported.arch, exported.pretrain_run) == ("cycle", "resnet18", "r18")
    trunk = {k.removeprefix("encoder_q.backbone."): v for k, v in full["model"].items() if "encoder_q.backbone." in k}
    assert all(torch.equal(exported.net.state_dict()[k], v) for k, v in trunk.items())
    assert (run_dir / "backbone.pt").stat().st_size < (run_dir / "checkpoint.pt").stat().st_size / 2
    assert not (run_dir / "checkpoint.previous.pt").exists()  # a finished run keeps one full state

    summary_path = run_dir / "summary.json"
    run_id = json.loads(summary_path.read_text())["mlflow_run_id"]
    assert exported.pretrain_run_id == run_id
    client = mlflow.MlflowClient(mlflow_uri)
    # the store was closed before the DAG's truth was written: a kill between the two leaves no RUNNING run
    assert client.get_run(run_id).info.end_time <= summary_path.stat().st_mtime * 1000
    client.update_run(run_id, status="RUNNING")  # what a kill between the two writes left before
    again = run_cycle_here(args, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert client.get_run(run_id).info.status == "FINISHED"
    assert f"MLflow run {run_id} was left RUNNING" in again.stderr

    dropped = pretrain_args(
        world, tmp_path / "dropped", NO_MLFLOW, "pretrain.epochs=1", "pretrain.keep_training_state=false"
    )
    assert run_cycle_here(dropped, cwd=tmp_path).returncode == 0
    run_dir = tmp_path / "dropped" / "pretrain" / "r18"
    assert (run_dir / "backbone.pt").is_file() and not list(run_dir.glob("*checkpoint*"))  # no training state
    again = run_cycle_here(dropped, cwd=tmp_path)
    assert again.returncode == 0 and "is complete" in again.stderr


def test_ctrl_c_saves_a_checkpoint_like_a_preemption(world, tmp_path, mlflow_uri):
    run_dir, code, stderr = interrupted_run(world, tmp_path, signal.SIGINT, 2, "pretrain.checkpoint_every=1000")
    assert code == 130, stderr
    assert "received SIGINT" in stderr and "checkpoint saved at step" in stderr and "Traceback" not in stderr
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] >= 2
    run_id = (run_dir / "mlflow_run_id").read_text().strip()
    assert mlflow.MlflowClient(mlflow_uri).get_run(run_id).info.status == "KILLED"


def test_steps_replayed_after_a_resume_are_logged_once(world, tmp_path, mlflow_uri):
    overrides = ("pretrain.checkpoint_every=6", "pretrain.log_every=1")
    run_dir, code, _ = interrupted_run(world, tmp_path, signal.SIGKILL, 8, *overrides)
    assert code == -signal.SIGKILL
    checkpoint_step = load_checkpoint(run_dir / "checkpoint.pt")["step"]
    run_id = (run_dir / "mlflow_run_id").read_text().strip()
    client = mlflow.MlflowClient(mlflow_uri)
    logged = max(m.step for m in client.get_metric_history(run_id, "loss"))
    assert checkpoint_step < logged  # steps after the checkpoint were logged, and will be replayed
    args = pretrain_args(world, tmp_path / "results", "pretrain.epochs=40", *overrides, "pretrain.max_steps=14")
    resumed = run_cycle_here(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(1, 15))


def test_a_data_error_ends_the_mlflow_run_failed(world, tmp_path, mlflow_uri):
    import shutil

    copy = tmp_path / "r2v2"
    shutil.copytree(world / "r2v2", copy)
    for frame in (copy / "train").rglob("*.jpg"):
        frame.write_bytes(b"not a jpeg")
    result = run_cycle_here(pretrain_args(world, tmp_path / "results", f"data.r2v2_root={copy}"), cwd=tmp_path)
    assert result.returncode == 2 and "data error: no readable frame" in result.stderr, result.stderr
    run_id = (tmp_path / "results" / "pretrain" / "r18" / "mlflow_run_id").read_text().strip()
    assert mlflow.MlflowClient(mlflow_uri).get_run(run_id).info.status == "FAILED"


def test_malformed_yaml_in_set_is_a_configuration_error(capsys):
    assert main(["config", "--params", str(PARAMS), "--scale", "test", "--set", "loss.lambda_cycle=[1,"]) == 2
    error = capsys.readouterr().err
    assert "configuration error: override 'loss.lambda_cycle=[1,': not valid YAML" in error


def test_eval_refuses_a_backbone_setting_its_checkpoint_contradicts(tmp_path, capsys):
    net, _ = build_backbone("resnet18")
    torch.save(net.state_dict(), tmp_path / "resnet18.pth")  # a torchvision ResNet-18
    args = [
        "eval",
        "linear",
        "--params",
        str(PARAMS),
        "--scale",
        "test",
        "--checkpoint",
        str(tmp_path / "resnet18.pth"),
    ]
    assert main([*args, "--set", "model.backbone=resnet50", "--set", f"results={tmp_path}"]) == 2
    error = capsys.readouterr().err
    assert "configuration error: --set model.backbone=resnet50" in error and "holds a resnet18" in error
    assert not (tmp_path / "eval").exists()


@pytest.fixture(autouse=True)
def _no_inherited_slurm(monkeypatch):
    """These runs are not SLURM jobs, whatever machine runs the suite."""
    for key in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(key)


def test_a_loss_that_is_not_finite_stops_the_run_and_keeps_the_last_good_checkpoint(
    world, tmp_path, mlflow_uri, monkeypatch
):
    """A NaN injected into the loss at step 5 (as a decoder race's garbage would make one): the
    checkpoint of step 3 stays, the MLflow run ends FAILED naming step 5, the exit status is a data error's."""
    calls = []

    def nan_from_step_5(*args, **kwargs):
        calls.append(1)
        loss = info_nce(*args, **kwargs)
        return loss * float("nan") if len(calls) >= 5 else loss

    monkeypatch.setattr(model_module, "info_nce", nan_from_step_5)
    overrides = ("pretrain.checkpoint_every=3", "pretrain.log_every=100", "pretrain.monitor_every=0")
    result = run_cycle_here(pretrain_args(world, tmp_path / "results", *overrides), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "data error: r18: the loss is not finite at step 5; the last checkpoint" in result.stderr
    run_dir = tmp_path / "results" / "pretrain" / "r18"
    state = load_checkpoint(run_dir / "checkpoint.pt")
    assert state["step"] == 3 and all(
        v.isfinite().all() for v in state["model"].values() if torch.is_tensor(v) and v.is_floating_point()
    )
    run = mlflow.MlflowClient(mlflow_uri).get_run((run_dir / "mlflow_run_id").read_text().strip())
    assert run.info.status == "FAILED" and run.data.tags["cycle.failed_step"] == "5"
    assert "not finite at step 5" in run.data.tags["cycle.failure"]
