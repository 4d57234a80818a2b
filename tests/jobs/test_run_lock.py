"""One writer per run folder: a second `cycle pretrain` (or fine-tuning) of the same run is refused
naming the first; a lock whose holder died is taken over."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from cycle_pkg.jobs import lock as run_lock
from cycle_pkg.jobs import slurm

from ..helpers import PARAMS, cycle_command, pretrain_args, run_cycle_here

NO_MLFLOW = "mlflow.enabled=false"


def test_a_second_pretraining_of_a_run_is_refused_and_a_dead_ones_lock_taken_over(world, tmp_path):
    args = pretrain_args(world, tmp_path / "results", NO_MLFLOW, "pretrain.epochs=40")
    first = subprocess.Popen(cycle_command(*args), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "logs" / "pretrain" / "r18.log"
    try:
        while (not log.exists() or "step 2/" not in log.read_text()) and first.poll() is None:
            time.sleep(0.05)
        second = run_cycle_here(args, cwd=tmp_path)
        assert second.returncode == 2, second.stderr
        holder = f"process {first.pid} on {socket.gethostname()}, started "
        assert f"busy: {tmp_path / 'results' / 'pretrain' / 'r18'} is being written by {holder}" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)  # as a node failure or the OOM killer stops it: its lock stays
        first.wait(timeout=60)
    lock = tmp_path / "results" / "pretrain" / "r18.lock"
    assert json.loads(lock.read_text())["pid"] == first.pid

    third = run_cycle_here([*args, "--set", "pretrain.max_steps=4"], cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert (
        f"took over the lock of process {first.pid}" in third.stderr and f"process {first.pid} is gone" in third.stderr
    )
    assert not lock.exists()  # released at the end


def test_a_fine_tuning_state_folder_has_one_writer(tmp_path):
    holder = subprocess.Popen(["sleep", "120"])  # a live process on this host holds the job's lock
    try:
        lock = tmp_path / "results" / "eval" / "finetune" / "r18.lock"
        lock.parent.mkdir(parents=True)
        record = {**run_lock.this_holder(), "pid": holder.pid, "process_start": run_lock.process_start(holder.pid)}
        lock.write_text(json.dumps(record))
        sets = ["--set", f"results={tmp_path / 'results'}", "--set", NO_MLFLOW]
        args = ["eval", "finetune", "--params", str(PARAMS), "--scale", "test", "--checkpoint", "random", *sets]
        ran = run_cycle_here([*args, "--run", "r18"], cwd=tmp_path)
        assert ran.returncode == 2 and "Traceback" not in ran.stderr
        assert f"is being written by process {holder.pid} on {socket.gethostname()}" in ran.stderr
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(("running", "dead"), [(False, True), (True, False), (None, False)])
def test_a_lock_of_another_hosts_slurm_job_is_taken_over_once_slurm_says_it_ended(monkeypatch, running, dead):
    monkeypatch.setattr(slurm, "job_running", lambda job: running)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    holder = {"host": "node-that-died", "pid": os.getpid(), "slurm_job": "4242", "started": "then"}
    assert (run_lock.why_dead(holder) == "SLURM job 4242 is no longer running") is dead
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # this job, requeued by SLURM: its earlier run is over
    assert "SLURM requeued" in run_lock.why_dead(holder)
