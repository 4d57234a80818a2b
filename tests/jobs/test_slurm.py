"""What a job reads from SLURM and asks of it, against stand-ins for squeue and scontrol on PATH
(the real one-node cluster runs in tests/workflow/test_run.py)."""

import json
import os
import stat
import subprocess
import sys

import mlflow
import pytest

from cycle_pkg.jobs import slurm
from cycle_pkg.pretrain.runtime import PREEMPTION_EVERY
from cycle_pkg.pretrain.state import load_checkpoint

from ..helpers import pretrain_args, run_cycle


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0:45", 45.0),
        ("12:03", 723.0),
        ("1:00:00", 3600.0),
        ("2-03:04:05", ((2 * 24 + 3) * 60 + 4) * 60 + 5.0),
        ("UNLIMITED", None),
        ("NOT_SET", None),
        ("", None),
    ],
)
def test_time_left_in_squeues_format(text, seconds):
    assert slurm.parse_time_left(text) == seconds


def fake_command(folder, name, script):
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_the_time_left_and_the_requeue_go_to_this_job(fake_slurm, tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    fake_command(fake_slurm, "squeue", f'echo "$@" >> {calls}; echo 4:10')
    fake_command(fake_slurm, "scontrol", f'echo "$@" >> {calls}')
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "3")
    assert slurm.job_id() == "4242" and slurm.restart_count() == 3
    assert slurm.seconds_left("4242") == 250.0
    assert slurm.requeue("4242") is True
    assert calls.read_text().splitlines() == ["-h -j 4242 -o %L", "requeue 4242"]


def test_a_refused_requeue_says_so_and_leaves_it_to_the_retries(fake_slurm, caplog):
    fake_command(fake_slurm, "scontrol", "echo 'Requested operation is presently disabled' >&2; exit 1")
    fake_command(fake_slurm, "squeue", "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1")
    assert slurm.requeue("7") is False
    assert "refused to requeue job 7 (Requested operation is presently disabled)" in caplog.text
    assert slurm.seconds_left("7") is None


def test_outside_slurm_there_is_no_job(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert slurm.job_id() is None and slurm.restart_count() == 0


def test_requeues_are_counted_across_a_resubmitted_job(monkeypatch):
    counters = {}
    for job, restarts in (("10", "0"), ("10", "2"), ("10", "2"), ("11", "0"), ("11", "1")):  # 11: a retry
        monkeypatch.setenv("SLURM_JOB_ID", job)
        monkeypatch.setenv("SLURM_RESTART_COUNT", restarts)
        slurm.count_requeues(counters)
    assert counters["requeues"] == 3


def test_a_run_near_its_time_limit_checkpoints_and_requeues_its_own_job(
    world, fake_slurm, tmp_path, mlflow_uri, monkeypatch
):
    """The whole path against stand-ins for squeue and scontrol: 3 s left, a margin of 1 s."""
    calls = tmp_path / "calls"
    fake_command(fake_slurm, "squeue", f'echo "$@" >> {calls}; echo 0:03')
    fake_command(fake_slurm, "scontrol", f'echo "$@" >> {calls}')
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    args = pretrain_args(world, tmp_path / "results", "pretrain.epochs=40", "pretrain.requeue_margin=1")
    first = run_cycle(args, cwd=tmp_path)
    assert first.returncode == 143, first.stderr
    assert "SLURM job 4242 requeued: it resumes when SLURM starts it again" in first.stderr
    assert calls.read_text().splitlines() == ["-h -j 4242 -o %L", "requeue 4242"]
    run_dir = tmp_path / "results" / "pretrain" / "r18"
    step = load_checkpoint(run_dir / "checkpoint.pt")["step"]
    assert 0 < step < 240

    fake_command(fake_slurm, "squeue", "echo UNLIMITED")  # SLURM runs the job again, with no limit now
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    second = run_cycle([*args, "--set", f"pretrain.max_steps={step + 2}"], cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == step + 2 and summary["requeues"] == 1
    run = mlflow.MlflowClient(mlflow_uri).get_run(summary["mlflow_run_id"])  # one run across the requeue
    assert run.info.status == "FINISHED" and run.data.tags["slurm.requeues"] == "1"
    assert run.data.tags["slurm.job_id"] == "4242"


def test_without_slurm_restart_count_the_requeues_are_asked_of_scontrol(fake_slurm, tmp_path, monkeypatch, caplog):
    """Snakemake's job step drops SLURM_RESTART_COUNT from the rule's environment: scontrol says it."""
    calls = tmp_path / "calls"
    job = "JobId=4242 JobName=x UserId=root(0) Priority=1 Restarts=2 BatchFlag=1 Reboot=0 ExitCode=0:0"
    fake_command(fake_slurm, "scontrol", f'echo "$@" >> {calls}; echo "{job}"')
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert slurm.restart_count() == 2
    assert calls.read_text().splitlines() == ["show job -o 4242"]
    fake_command(fake_slurm, "scontrol", "echo 'Invalid job id specified' >&2; exit 1")
    assert slurm.restart_count() == 0
    assert "scontrol could not say how often SLURM job 4242 was requeued: Invalid job id specified" in caplog.text


def test_two_processes_stop_only_once_rank_0_has_requeued_the_job(world, fake_slurm, tmp_path, monkeypatch):
    """torchrun stops every process as soon as one exits: rank 1 must wait until rank 0's (here slow)
    `scontrol requeue` is done. The stand-in records the requeue only if rank 0 is still alive after it."""
    calls = tmp_path / "calls"
    fake_command(fake_slurm, "squeue", f'echo "$@" >> {calls}; echo 0:03')
    fake_command(fake_slurm, "scontrol", f'sleep 3; kill -0 $PPID && echo "$@" >> {calls}')
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    args = pretrain_args(
        world, tmp_path / "results", "pretrain.epochs=40", "pretrain.requeue_margin=1", "mlflow.enabled=false"
    )
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    result = subprocess.run(
        [*launcher, "-m", "cycle_pkg.cli", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode != 0  # the job ends; SLURM runs it again
    assert calls.read_text().splitlines() == ["-h -j 4242 -o %L", "requeue 4242"], result.stderr[-3000:]
    assert "SLURM job 4242 requeued: it resumes when SLURM starts it again" in result.stderr
    step = load_checkpoint(tmp_path / "results" / "pretrain" / "r18" / "checkpoint.pt")["step"]
    assert 0 < step < 480 and step % PREEMPTION_EVERY == 0  # the processes agree every few steps
