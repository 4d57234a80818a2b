"""The fork server (cycle_pkg/jobs/forkserver.py): a job run through it behaves as its own process would, to
Snakemake and to the job: exit status, streams, directory, environment, signals both ways."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cycle_pkg.jobs import forkserver

from ..helpers import ROOT, wait_for

CLIENT = (
    "import sys; from cycle_pkg.jobs.forkserver import call; s = call(sys.argv[1], ['job', *sys.argv[2:]]); "
    "sys.exit(99 if s is None else s)"
)


@pytest.fixture
def server(tmp_path):
    """A server (numpy.random preloaded: its generator seeded in the server) with the test jobs as its target."""
    path = str(tmp_path / "socket")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cycle_pkg.jobs.forkserver",
            path,
            "--preload",
            "numpy.random",
            "--target",
            "tests.helpers.forkserver_jobs:run",
        ],
        cwd=ROOT,
        stderr=open(tmp_path / "server.log", "w"),
    )
    wait_for(lambda: os.path.exists(path), "the server's socket")
    yield process, path
    process.terminate()
    process.wait(30)


def client(path: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLIENT, path, *args], **kwargs)


def test_a_job_gets_the_clients_streams_directory_environment_and_umask_and_its_exit_status(server, tmp_path):
    process, path = server
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "COLOUR": "teal", "OMP_NUM_THREADS": "1", "TMPDIR": str(work)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", CLIENT, path, "report", "5"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.umask(0o027),
            timeout=60,
        )
        for _ in range(2)
    ]
    for done in runs:
        assert done.returncode == 5, done.stderr
        assert done.stderr.strip().endswith("to stderr")
    first, second = (json.loads(done.stdout) for done in runs)
    assert first["argv"] == ["report", "5"]
    assert first["cwd"] == str(work)
    assert first["colour"] == "teal"
    assert first["umask"] == 0o027
    assert first["tmp"] == str(work)
    assert first["ppid"] == process.pid  # it really ran in the server's child
    assert first["blas_threads"] == 1  # the job's OMP_NUM_THREADS, though the server's BLAS started with 2+
    assert first["draw"] != second["draw"]  # numpy's global generator reseeded per job, as in a new process


def test_a_failing_job_exits_as_python_would(server):
    _, path = server
    raised = subprocess.run([sys.executable, "-c", CLIENT, path, "raise"], capture_output=True, text=True, timeout=60)
    assert raised.returncode == 1
    assert "RuntimeError: a failing job" in raised.stderr
    exited = subprocess.run(
        [sys.executable, "-c", CLIENT, path, "exit", "a message"], capture_output=True, text=True, timeout=60
    )
    assert (exited.returncode, exited.stderr.strip()) == (1, "a message")


def test_signals_reach_the_job_through_its_client_and_a_killed_client_takes_its_job_along(server, tmp_path):
    _, path = server
    marker = tmp_path / "forwarded"
    job = client(path, "wait", str(marker))
    wait_for(marker.with_suffix(".started").exists, "the job to start")
    job.send_signal(signal.SIGTERM)
    assert job.wait(60) == 7  # the job's own SIGTERM handler ran and chose the status
    assert marker.read_text() == f"signal {signal.SIGTERM}"

    job = client(path, "wait", str(tmp_path / "unhandled"))
    wait_for((tmp_path / "unhandled.started").exists, "the second job")
    job.send_signal(signal.SIGUSR1)  # not handled by the job: it dies of it, and so does its client
    assert job.wait(60) == -signal.SIGUSR1

    orphan = tmp_path / "orphan"
    job = client(path, "wait", str(orphan))
    wait_for(orphan.with_suffix(".started").exists, "the third job")
    job.kill()  # SIGKILL: nothing forwarded; the child sees its client's end close
    job.wait(60)
    wait_for(orphan.exists, "the orphaned job to be terminated")
    assert orphan.read_text() == f"signal {signal.SIGTERM}"
    pid = int(orphan.with_suffix(".started").read_text())
    wait_for(
        lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
        "the orphaned job's end",
    )


def test_a_stopping_server_takes_no_new_jobs_but_reports_its_running_ones(server, tmp_path):
    process, path = server
    marker = tmp_path / "running"
    job = client(path, "wait", str(marker))
    wait_for(marker.with_suffix(".started").exists, "the job to start")
    process.terminate()
    wait_for(lambda: not os.path.exists(path), "the socket's removal")
    assert forkserver.call(path, ["cycle", "report", "0"]) is None  # no server: the caller runs the job itself
    assert process.poll() is None  # still there for its running job
    os.kill(int(marker.with_suffix(".started").read_text()), signal.SIGTERM)
    assert job.wait(60) == 7
    assert process.wait(30) == 0


def test_the_cycle_command_runs_through_a_server_named_in_the_environment_and_without_one(tmp_path):
    command = [sys.executable, "-m", "cycle_pkg.cli", "config", "--scale", "test"]
    direct = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    path = str(tmp_path / "socket")
    with open(tmp_path / "server.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cycle_pkg.jobs.forkserver", path, "--preload", "cycle_pkg.cli"],
            cwd=ROOT,
            stderr=log,
        )
    try:
        wait_for(lambda: os.path.exists(path), "the server's socket")
        env = {**os.environ, forkserver.ENV: path}
        served = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
        bad = subprocess.run(
            command + ["--set", "no.such=1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        gone = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, forkserver.ENV: str(tmp_path / "none")},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        process.terminate()
        process.wait(30)
    assert served.stdout == direct.stdout == gone.stdout
    assert "scale: test" in served.stdout
    assert bad.returncode == 2 and "configuration error: override.no: unknown setting" in bad.stderr
    log = (tmp_path / "server.log").read_text().splitlines()
    served_jobs = [line for line in log if ": config --scale test" in line]
    assert len(served_jobs) == 2, served_jobs  # the good and the bad command; the third found no server
