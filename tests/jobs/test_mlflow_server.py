"""Jobs logging to a real `mlflow server` (the README's advice for clusters) that is restarted while
they run: every run ends FINISHED with all its metrics, nothing acknowledged is lost."""

import os
import subprocess

import mlflow
import pytest

from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS, cycle_command, pretrain_args, wait_for
from ..helpers.mlflow_server import MlflowServer


@pytest.mark.long(minutes=2)
def test_concurrent_jobs_survive_a_server_restart(world, tmp_path):
    server = MlflowServer(tmp_path / "server")
    server.start()
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    results = tmp_path / "results"
    pretrainings = {
        "r18": pretrain_args(world, results),
        "r18-lambda0.3": pretrain_args(world, results, "loss.lambda_cycle=0.3"),
    }
    evaluations = {
        f"random-{seed}": [
            "eval", "linear", "--params", str(PARAMS), "--scale", "test", "--checkpoint", "random",
            "--backbone", "resnet18", "--run", f"random-{seed}",
            *(a for s in (f"data.imagenet_root={world / 'imagenet'}", f"results={results}",
                          f"eval.cache_dir={tmp_path / 'cache' / str(seed)}", "eval.linear.protocol=fast",
                          f"pretrain.seed={seed}") for a in ("--set", s)),
        ]
        for seed in (1, 2)
    }  # fmt: skip
    jobs = {
        name: subprocess.Popen(
            cycle_command(*args), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for name, args in {**pretrainings, **evaluations}.items()
    }
    try:
        logs = [tmp_path / "logs" / "pretrain" / f"{name}.log" for name in pretrainings]
        wait_for(
            lambda: all(log.is_file() and "step 2/12" in log.read_text() for log in logs), "logged steps", timeout=300
        )
        assert all(jobs[name].poll() is None for name in pretrainings)  # the restart happens while they train
        server.restart()
        errors = {name: job.communicate(timeout=600)[1] for name, job in jobs.items()}
        assert {name: job.returncode for name, job in jobs.items()} == dict.fromkeys(jobs, 0), errors

        client = mlflow.MlflowClient(server.url)
        probe_epochs = load_config(PARAMS, "test").eval.linear.epochs
        runs = client.search_runs([client.get_experiment_by_name("cycle-contrast").experiment_id])
        by_name = {run.data.tags["cycle.run"]: run for run in runs}
        assert sorted(by_name) == sorted(jobs) and {run.info.status for run in runs} == {"FINISHED"}
        for name in pretrainings:
            history = client.get_metric_history(by_name[name].info.run_id, "loss")
            assert [m.step for m in history] == list(range(2, 13, 2)), name  # every window, each once
        for name in evaluations:
            run = by_name[name]
            assert run.data.metrics["top1"] >= 0 and run.data.params["checkpoint"] == "random"
            epochs = client.get_metric_history(run.info.run_id, "train_loss")  # and the final value, at step 0
            assert [m.step for m in epochs if m.step] == list(range(1, probe_epochs + 1)), name  # each epoch once
            assert [a.path for a in client.list_artifacts(run.info.run_id)] == [f"{name}.json"]
    finally:
        for job in jobs.values():
            if job.poll() is None:
                job.kill()
        server.stop()
