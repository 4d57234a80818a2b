"""The workflow for real, at the test scale: the whole DAG through `dvc repro` (every table, every
job an MLflow run), DVC push / pull / experiments, and a part of the DAG through a real one-node
SLURM cluster with the project's SLURM profile."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas
import pytest
import yaml

from cycle_pkg.reproduction.grid import Grid
from cycle_pkg.reproduction.paper import paper_tables

from ..helpers import ROOT

PROJECT_FILES = ["Snakefile", "workflow", "cycle_pkg", "params.yaml", "dvc.yaml", ".dvc/config", ".dvcignore", "slurm"]
BIN = Path(sys.executable).parent
SEEDED_FIGURES = [("curve", "table6.png"), ("knn", "knn/table6.png")]


def project_copy(where: Path, **test_scale: dict) -> Path:
    """The workflow's files in a fresh folder (the package is installed), at the test scale with
    ``test_scale`` merged into its settings."""
    where.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_symlink():
            (where / name).symlink_to(os.readlink(source))
        elif source.is_dir():
            shutil.copytree(source, where / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, where / name)
    return set_test_scale(where, **test_scale)


def set_test_scale(project: Path, **test_scale: dict) -> Path:
    """The project's params.yaml at the test scale, with ``test_scale`` merged into its settings."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["scale"] = "test"
    for section, values in test_scale.items():
        params["scales"]["test"].setdefault(section, {}).update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


def command_env() -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def run(command: list[str], cwd: Path, timeout: int = 2700) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=command_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def mlflow_runs(project: Path):
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["cycle-contrast"], output_format="pandas")


@pytest.mark.long(minutes=20)
def test_whole_dag_through_dvc_then_push_pull_and_an_experiment(tmp_path):
    # finished runs keep backbone.pt alone, as the demo's do: 27 runs' training state would be 5 GB
    shards, no_state = {"r2v2_format": "shards"}, {"keep_training_state": False}
    project = project_copy(tmp_path / "project", data=shards, pretrain=no_state)
    run(["git", "init", "-q"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project"], project)

    run([str(BIN / "dvc"), "repro"], project)
    grid = Grid(project / "params.yaml", "test")
    for name, table in paper_tables().items():
        frame = pandas.read_csv(project / "results" / "tables" / f"{name}.csv", keep_default_na=False)
        ours = frame[frame["model"] != ""]
        assert len(ours) > 0 and (ours[[f"{key}_ours" for key in table.metrics]] != "").all().all(), name
        # no evaluation's training diverged at this scale (its probes once reached losses of 7000)
        assert not (ours[[f"{key}_mark" for key in table.metrics]] == "diverged").any().any(), name
        markdown = (project / "results" / "tables" / f"{name}.md").read_text()
        assert markdown.startswith(f"# Table {table.number}:") and "Scale `test`" in markdown
        assert "\nProtocol: " in markdown, name
        assert (project / "results" / "figures" / f"{name}.png").is_file() == bool(table.curve)
        assert (project / "results" / "figures" / "knn" / f"{name}.png").is_file()
    tracking = [(name, i) for name in ("table1", "table2") for i in range(len(paper_tables()[name].rows))]
    trackers = {model for name, i in tracking for model in grid.models_of(name, i)}
    otb_plots = {p.name for p in (project / "results" / "figures" / "otb").glob("*.png")}
    assert otb_plots == {f"{m}-{kind}.png" for m in trackers for kind in ("precision", "success")}

    runs = mlflow_runs(project)
    pretrain = runs[runs["tags.cycle.job"] == "pretrain"]
    evaluations = runs[runs["tags.cycle.job"].str.startswith("eval-")]
    assert len(pretrain) == len(grid.runs) and len(evaluations) == len(grid.jobs())
    assert set(runs["status"]) == {"FINISHED"}
    assert pretrain["metrics.loss"].notna().all() and pretrain["tags.cycle.tables"].str.len().gt(0).all()
    assert pretrain["metrics.knn_top1"].notna().all() and pretrain["metrics.data_wait_fraction"].notna().all()
    # the cycle's mechanism: on the cycle head where the run has one, on the intra head otherwise
    assert pretrain[["metrics.cycle_nn_same_class", "metrics.backbone_nn_own_video"]].notna().all().all()
    assert (evaluations["tags.mlflow.parentRunId"].isin(pretrain["run_id"])).all()  # linked to their pretraining
    assert all(evaluations.filter(like="metrics.").notna().any(axis=1))
    # the local run's jobs forked from its fork server (cycle_pkg/jobs/forkserver.py), each ending as its own
    served = (project / "logs" / "fork-server.log").read_text()
    assert re.search(r"job \d+: pretrain ", served) and re.search(r"job \d+: eval ", served), served[-2000:]
    assert "'signal'" not in served and re.findall(r"ended: \{'exit': (\d+)\}", served) != [], served[-2000:]

    # push, lose, pull: the tables and figures come back identical
    outputs = {name: digests(project / "results" / name) for name in ("tables", "figures")}
    run([str(BIN / "dvc"), "push"], project)
    for name in outputs:
        shutil.rmtree(project / "results" / name)
    run([str(BIN / "dvc"), "pull"], project)
    assert {name: digests(project / "results" / name) for name in outputs} == outputs
    status = run([str(BIN / "dvc"), "status"], project)
    assert "up to date" in status.stdout.lower()

    # an experiment with a second seed, for Table 6 only: its runs trained again under seed 1, the
    # seed-0 runs kept; every cell the mean of both with its interval, each seed's value in the CSV
    figures = {name: (project / "results" / "figures" / path).read_bytes() for name, path in SEEDED_FIGURES}
    run([str(BIN / "dvc"), "exp", "run", "-S", "workflow.seeds=[0, 1]", "-S", "workflow.tables=[table6]"], project)
    seeded = Grid(project / "params.yaml", "test")
    table6 = paper_tables()["table6"]
    frame = pandas.read_csv(project / "results" / "tables" / "table6.csv", keep_default_na=False)
    ours = frame[frame["model"] != ""]
    assert len(ours) == len(table6.rows)
    for key in table6.metrics:
        assert (ours[f"{key}_n"].astype(int) == 2).all(), ours
        low, mean, high = (ours[f"{key}_{part}"].astype(float) for part in ("low", "ours", "high"))
        seeds = ours[[f"{key}_seed0", f"{key}_seed1"]].astype(float)
        assert (abs(seeds.mean(axis=1) - mean) < 1e-6).all()  # the cell is the two seeds' mean
        # its interval: about the mean, wide where the seeds differ (at chance, top-5 here, they do not)
        assert ((low <= mean) & (mean <= high)).all()
        assert ((low < high) == (seeds[f"{key}_seed0"] != seeds[f"{key}_seed1"])).all()
        assert set(ours[f"{key}_paper_inside"].astype(str)) <= {"True", "False", ""}
    markdown = (project / "results" / "tables" / "table6.md").read_text()
    assert "seeds 0, 1" in markdown and "`r18-m16-seed1`" in markdown
    for name, path in SEEDED_FIGURES:  # drawn again: error bars, the seeds' mean curves with their band
        assert (project / "results" / "figures" / path).read_bytes() != figures[name], path
    runs = mlflow_runs(project)
    pretrain = runs[runs["tags.cycle.job"] == "pretrain"]
    table6_runs = {model for i in range(len(table6.rows)) for model in seeded.models_of("table6", i)}
    assert table6_runs <= set(pretrain["tags.mlflow.runName"])
    assert len(pretrain) == len(grid.runs) + len(table6_runs) // 2  # the seed-0 runs kept, not trained again
    assert set(pretrain[pretrain["tags.mlflow.runName"].isin(table6_runs)]["tags.grid.seed"]) == {"0", "1"}
    assert set(runs["status"]) == {"FINISHED"}
    shown = run([str(BIN / "dvc"), "exp", "show", "--csv"], project).stdout
    assert "[0, 1]" in shown or "0, 1" in shown


def measured_steps_per_second(project: Path, run_dir: Path, processes: int, *overrides: str) -> tuple[int, float]:
    """The steps of an epoch of the test-scale run that ``overrides`` select and how many steps a
    second this machine trains it now with ``processes`` torchrun processes: a short run of it,
    outside the project's results and MLflow store. Its first steps are the slowest, so the rate errs
    low (2.7 against 3.4)."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    overrides += ("pretrain.max_steps=36", "mlflow.enabled=false")
    sets = [arg for setting in overrides for arg in ("--set", setting)]
    run([*torchrun, "-m", "--", "cycle_pkg.cli", "pretrain", "--run-dir", str(run_dir), *sets], project)
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary["steps_per_epoch"], summary["steps"] / summary["train_seconds"]


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A one-node SLURM cluster on this machine, started from Debian's packages; the test fails
    (it does not skip) when SLURM cannot be brought up."""
    state = tmp_path_factory.mktemp("slurm")
    scripts = ROOT / "tests" / "helpers" / "slurm"
    started = subprocess.run(
        ["bash", str(scripts / "start.sh"), str(state)], capture_output=True, text=True, timeout=600
    )
    if started.returncode != 0:
        pytest.fail(f"could not start SLURM: {started.stderr[-2000:]}")
    yield started.stdout.strip()
    subprocess.run(["bash", str(scripts / "stop.sh"), str(state)], capture_output=True, timeout=120)


def run_raising_the_limit_after_a_requeue(command: list[str], cwd: Path, minutes: int, timeout: int) -> str:
    """Run ``command`` (a workflow on the test cluster) to its end; once a job of it has been requeued,
    raise that job's time limit to ``minutes``, as an administrator may. Its stderr."""
    stderr_path = cwd / "snakemake.stderr"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(command, cwd=cwd, env=command_env(), stdout=subprocess.DEVNULL, stderr=stderr)
    deadline, raised = time.monotonic() + timeout, False
    try:
        while process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{' '.join(command)} ran past {timeout} s:\n{stderr_path.read_text()[-4000:]}")
            jobs = subprocess.run(["scontrol", "-o", "show", "job"], capture_output=True, text=True, timeout=60).stdout
            requeued = re.findall(r"JobId=(\d+) .*\bRestarts=[1-9]", jobs)
            if requeued and not raised:
                raise_limit = ["scontrol", "update", f"JobId={requeued[0]}", f"TimeLimit={minutes}"]
                subprocess.run(raise_limit, check=True, timeout=60)
                raised = True
            time.sleep(1)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, f"{' '.join(command)} failed:\n{stderr_path.read_text()[-4000:]}"
    return stderr_path.read_text()


@pytest.mark.long(minutes=6)
def test_a_pretraining_through_slurm_outlasts_its_time_limit_by_requeueing_itself(tmp_path, slurm_cluster):
    """Table 11's R18 pretraining through the SLURM profile, launched by torchrun (two processes)
    under a two-minute time limit that the run outlasts: the attempt checkpoints and requeues its own
    job before the limit; its next attempt, under the limit the test then raises, reads its own time
    left and finishes. The run completes under one SLURM job id and one MLflow run, each step logged
    once, none of the profile's retries spent. Its data jobs run first, on this machine: SLURM adds
    nothing to their path, only ~70 s of job start-ups and status polls (an evaluation job, ~60 s)."""
    # The first attempt requeues its job `margin` s before its 120 s limit, and trains what its
    # start-up (two Snakemake processes, torchrun, two training processes: 28-38 s on a 2-core machine
    # at load averages of 3-7, up to ~70 s heavily loaded, less on a faster one) leaves it: under
    # 120 - margin = 80 s. How many steps that is depends on the machine (1.3-1.8 steps/s on one
    # 2-core machine, 3.4 on another), so the run's length is this machine's rate, measured just
    # before, times 150 s: about twice the first attempt's window, and the second attempt's ~80 s
    # more. A start-up longer than 120 - margin s leaves no time to requeue: the attempt trains until
    # SLURM stops it, and the retry then spent fails the test.
    margin, window, processes = 40, 150, 2
    project = project_copy(
        tmp_path / "project",
        workflow={"tables": ["table11"]},
        pretrain={"checkpoint_every": 1000, "requeue_margin": margin},
    )
    target = "results/pretrain/r18-r2v2/summary.json"
    snakemake = [sys.executable, "-m", "snakemake", target, "--config", "scale=test"]
    run([*snakemake, "--cores", "2", "--omit-from", "pretrain"], project)  # the data jobs and the MLflow store
    calibration = tmp_path / "calibration"
    steps_per_epoch, rate = measured_steps_per_second(project, calibration, processes, "data.r2v2_subset=false")
    epochs = math.ceil(rate * window / steps_per_epoch)
    set_test_scale(project, pretrain={"epochs": epochs})
    command = [
        *snakemake, "--profile", "slurm",
        "--default-resources", f"slurm_partition={slurm_cluster}", "slurm_account=none", "runtime=30", "mem_mb=1000",
        "gpu=0", "--set-resources", "pretrain:gpu=0", f"pretrain:processes={processes}", "pretrain:mem_mb=3000",
        "pretrain:runtime=2",
        # the plugin polls at this interval, then 10 s longer after each poll that finds nothing
        # finished (8, 26, 54, 92, 140, 198 s)
        "--jobs", "2", "--slurm-init-seconds-before-status-checks", "8",
        "--slurm-status-command", "squeue",  # the test cluster keeps no accounting for sacct
    ]  # fmt: skip
    stderr = run_raising_the_limit_after_a_requeue(command, project, minutes=15, timeout=900)
    assert (project / target).is_file()
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S+/slurm_logs/rule_(\w+)/", stderr)
    assert {rule for _, rule in submitted} == {"pretrain"}, stderr[-3000:]
    pretrain_jobs = [job for job, rule in submitted if rule == "pretrain"]
    assert len(pretrain_jobs) == 1 and "Trying to restart" not in stderr, stderr[-3000:]  # no retry spent
    served = (project / "logs" / "fork-server.log").read_text()  # the local run's server, for the data jobs
    assert not re.search(r"job \d+: pretrain ", served)  # a cluster job starts its own process

    runs = mlflow_runs(project)
    pretrain = runs[runs["tags.cycle.job"] == "pretrain"]
    assert len(pretrain) == 1 and set(pretrain["status"]) == {"FINISHED"}
    row = pretrain.iloc[0]
    assert row["tags.slurm.job_id"] == pretrain_jobs[0]
    summary = json.loads((project / target).read_text())
    assert summary["steps"] == epochs * summary["steps_per_epoch"] and summary["processes"] == processes
    assert summary["requeues"] == 1 and row["tags.slurm.requeues"] == "1", summary
    # Snakemake removed the job's log before the second attempt; the run's own log keeps both
    attempts = (project / target).with_name("attempts.log").read_text()
    job = pretrain_jobs[0]
    assert re.search(
        rf"attempt on .*, SLURM job {job}\n.*attempt stopped: Preempted: r18-r2v2: checkpoint saved at step \d+;"
        rf".*attempt on .*, SLURM job {job}\n.*attempt finished\n$",
        attempts,
        re.DOTALL,
    ), attempts
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    steps = [m.step for m in client.get_metric_history(row["run_id"], "loss")]
    assert steps == sorted(set(steps)) and steps[-1] == summary["steps"]  # across the attempts, each step once
