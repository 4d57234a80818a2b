"""`cycle pretrain` end to end on the test scale: outputs, MLflow, resume, preemption, DDP, bad input."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import mlflow
import pytest
import torch

from cycle_pkg.data.pretrain_input import augments_on_device
from cycle_pkg.jobs.mlflow_job import DataInput, listing_digest
from cycle_pkg.pretrain import loop, mlflow_log, schedule
from cycle_pkg.pretrain.monitor import FEATURES, PICTURES, load_features
from cycle_pkg.pretrain.state import load_checkpoint
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS, ROOT, cycle_command, pretrain_args, run_cycle, run_cycle_here
from ..helpers.crash import crash_at_step


def weights(run_dir):
    return load_checkpoint(run_dir / "checkpoint.pt")["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key


def test_cosine_lr_is_set_once_an_epoch_as_the_authors_or_every_step():
    """MoCo's adjust_learning_rate at the paper's 200 epochs: epoch 100 of 200 is at cos(pi / 2) = 0, half of 0.06,
    throughout its steps; epoch 99 at 0.03 (1 + cos(99 pi / 200)) = 0.03 (1 + 0.0157073). Every step: step
    10099 of 20000 at 0.03 (1 + cos(pi 10099 / 20000)) = 0.03 (1 - 0.01555026)."""
    paper = load_config(PARAMS, "paper")
    assert paper.pretrain.lr_schedule == "epoch"
    per_epoch = [schedule.learning_rate(paper, step, 100, 20_000) for step in (9_999, 10_000, 10_099)]
    assert per_epoch == pytest.approx([0.03 * 1.0157073, 0.03, 0.03], abs=1e-9)
    every_step = load_config(PARAMS, "paper", ["pretrain.lr_schedule=step"])
    assert schedule.learning_rate(every_step, 10_000, 100, 20_000) == pytest.approx(0.03, abs=1e-12)
    assert schedule.learning_rate(every_step, 10_099, 100, 20_000) == pytest.approx(0.03 * (1 - 0.01555026), abs=1e-9)


def test_pretrain_writes_checkpoint_summary_and_mlflow_run(world, tmp_path, mlflow_uri):
    overrides = ("pretrain.workers=1", "pretrain.monitor.pictures=true")
    result = run_cycle(pretrain_args(world, tmp_path / "results", *overrides), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "results" / "pretrain" / "r18"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 12 and summary["epochs"] == 2 and summary["skipped_frames"] == 0
    assert summary["final_metrics"]["loss"] > 0 and summary["pairs_per_second"] > 0
    state = load_checkpoint(run_dir / "checkpoint.pt")
    # 12 steps x batch 16 = 192 keys: both queues (64, 96) filled, wrapped, and back at the start
    assert state["step"] == 12 and int(state["model"]["intra_ptr"]) == int(state["model"]["cycle_ptr"]) == 0
    assert not torch.equal(state["model"]["intra_queue"][:64], load_fresh_queue())
    assert (tmp_path / "logs" / "pretrain" / "r18.log").read_text().count("step 12/12") == 1

    mlflow.set_tracking_uri(mlflow_uri)
    run = mlflow.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["loss.lambda_cycle"] == "0.1" and run.data.params["pretrain.batch_size"] == "16"
    assert run.data.tags["grid.components"] == "intra_video+cycle" and run.data.tags["cycle.scale"] == "test"
    assert len(run.data.tags["mlflow.source.git.commit"]) >= 7
    # what it read: R2V2 (the test scale trains on its R2V2-S of 96 videos), digested by the listing of its
    # split and id list, in an experiment that the UI opens on its runs
    (read,) = run.inputs.dataset_inputs
    read_parts = ("train", "r2v2_ids_train.txt")
    assert (read.dataset.name, read.dataset.digest) == ("r2v2/train-s96", listing_digest(world / "r2v2", read_parts))
    assert {t.key: t.value for t in read.tags}["mlflow.data.context"] == "training"
    kind = mlflow.MlflowClient().get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss_cycle")
    assert [m.step for m in history] == [2, 4, 6, 8, 10, 12]

    # the representation monitor: the test scale looks at steps 0, 4, 8 and 12, on 6 classes
    monitor = summary["monitor"]
    assert monitor["steps"] == [0, 4, 8, 12] and monitor["classes"] == 6 and monitor["query_images"] == 12
    assert all(0 <= v <= 100 for v in monitor["knn_top1"]) and monitor["knn_top5"][-1] >= monitor["knn_top1"][-1]
    assert 0 < monitor["seconds"] and summary["monitor_fraction"] == monitor["seconds"] / summary["train_seconds"]
    assert 0 <= summary["data_wait_fraction"] < 1
    saved = load_features(run_dir / FEATURES)
    assert len(saved["features"]) == monitor["bank_images"] + monitor["query_images"] == 36
    top1 = mlflow.MlflowClient().get_metric_history(run.info.run_id, "knn_top1")
    assert [m.step for m in top1] == [0, 4, 8, 12] and [m.value for m in top1] == monitor["knn_top1"]
    wait = mlflow.MlflowClient().get_metric_history(run.info.run_id, "data_wait_fraction")
    assert [m.step for m in wait] == [2, 4, 6, 8, 10, 12] and all(0 <= m.value < 1 for m in wait)
    # its pictures: the kNN curve and the t-SNE embedding, in the run folder and as MLflow artifacts
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    for name in PICTURES.values():
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and name in artifacts

    again = run_cycle_here(pretrain_args(world, tmp_path / "results", *overrides), cwd=tmp_path)
    assert again.returncode == 0 and "is complete" in again.stderr


def test_pretraining_names_the_r2v2_it_reads_as_its_mlflow_dataset():
    shards = load_config(PARAMS, "test", ["data.r2v2_format=shards", "data.r2v2_shards=/data/shards"])
    expected = DataInput("r2v2/train-s96 shards", "/data/shards/train-s96", "training", manifest="index.json")
    assert mlflow_log.pretrain_inputs(shards) == [expected]  # digested by the index, which has every shard's sha256
    jpeg = load_config(PARAMS, "test", ["data.r2v2_subset=false", "data.r2v2_root=/data/r2v2"])
    parts = ("train", "r2v2_ids_train.txt")  # what it reads there: its split, not the other one
    assert mlflow_log.pretrain_inputs(jpeg) == [DataInput("r2v2/train", "/data/r2v2", "training", parts=parts)]


def test_killed_run_resumes_to_identical_weights(world, tmp_path):
    overrides = ("mlflow.enabled=false", "pretrain.epochs=4")
    reference = run_cycle_here(pretrain_args(world, tmp_path / "straight", *overrides), cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr

    command = cycle_command(*pretrain_args(world, tmp_path / "killed", *overrides))
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "pretrain" / "r18" / "checkpoint.pt"
    while not checkpoint.exists() and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "pretrain" / "r18" / "summary.json").exists()  # really interrupted
    assert 0 < load_checkpoint(checkpoint)["step"] < 24

    resumed = run_cycle_here(pretrain_args(world, tmp_path / "killed", *overrides), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming r18 from step" in resumed.stderr
    assert_same_weights(
        weights(tmp_path / "killed" / "pretrain" / "r18"), weights(tmp_path / "straight" / "pretrain" / "r18")
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_preemption_signal_saves_a_checkpoint_and_a_rerun_finishes(world, tmp_path, mlflow_uri, signum):
    args = pretrain_args(world, tmp_path / "results", "pretrain.epochs=40", "pretrain.checkpoint_every=1000")
    stderr_file = (tmp_path / "stderr.txt").open("w")
    process = subprocess.Popen(cycle_command(*args), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr_file)
    log = tmp_path / "logs" / "pretrain" / "r18.log"
    while (not log.exists() or "step 2/" not in log.read_text()) and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signum)
    process.wait(timeout=120)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert process.returncode == 143, stderr
    assert "checkpoint saved at step" in stderr and "rerun the same command to resume" in stderr
    run_dir = tmp_path / "results" / "pretrain" / "r18"
    step = load_checkpoint(run_dir / "checkpoint.pt")["step"]
    assert 2 <= step < 240

    mlflow.set_tracking_uri(mlflow_uri)
    run_id = (run_dir / "mlflow_run_id").read_text().strip()
    assert mlflow.get_run(run_id).info.status == "KILLED"
    log.unlink()  # as Snakemake removes a job's log before each attempt
    finished = run_cycle_here([*args, "--set", "pretrain.max_steps=" + str(step + 4)], cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    # the run's own log keeps both attempts: the interrupted one's save, then the resume to the end
    attempts = (run_dir / "attempts.log").read_text()
    assert attempts.count("attempt on ") == 2, attempts
    assert re.search(
        rf"attempt on .*attempt stopped: Preempted: r18: checkpoint saved at step {step};"
        rf".*attempt on .*resuming r18 from step {step} of {step + 4}\n.*attempt finished\n$",
        attempts,
        re.DOTALL,
    ), attempts
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == step + 4 and summary["mlflow_run_id"] == run_id  # the same MLflow run, resumed
    looks = summary["monitor"]["steps"]  # the curve goes on from the checkpoint's
    assert looks[0] == 0 and looks == sorted(set(looks)) and looks[-1] == step + 4
    assert mlflow.get_run(run_id).info.status == "FINISHED"


def test_two_process_ddp_on_cpu(world, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    args = pretrain_args(world, tmp_path / "results", "mlflow.enabled=false", "pretrain.max_steps=4")
    command = [*launcher, "-m", "cycle_pkg.cli", *args]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "results" / "pretrain" / "r18"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4
    assert summary["monitor"]["steps"] == [0, 4]  # rank 0 looked while rank 1 waited in its next step
    state = load_checkpoint(run_dir / "checkpoint.pt")
    # the queues received the keys of both processes: 4 steps x global batch 16 = 64 keys, which
    # fill the cycle queue (96) to 64 and the intra queue (64) once round
    assert int(state["model"]["intra_ptr"]) == 0 and int(state["model"]["cycle_ptr"]) == 64
    assert not torch.equal(state["model"]["intra_queue"][:64], load_fresh_queue())


def load_fresh_queue():
    from cycle_pkg.model import CycleContrast
    from cycle_pkg.settings.config import load_config

    config = load_config(ROOT / "params.yaml", "test")
    return CycleContrast(config.model, config.loss, seed=config.pretrain.seed).intra_queue[:64]


def test_corrupt_frames_are_skipped_and_counted(world, tmp_path):
    import shutil

    copy = tmp_path / "r2v2"
    shutil.copytree(world / "r2v2", copy)
    frames = sorted((copy / "train").rglob("*.jpg"))[:20]
    for frame in frames:
        frame.write_bytes(frame.read_bytes()[:200])  # truncated
    args = pretrain_args(world, tmp_path / "results", "mlflow.enabled=false", f"data.r2v2_root={copy}")
    result = run_cycle_here(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "results" / "pretrain" / "r18" / "summary.json").read_text())
    assert summary["skipped_frames"] > 0
    assert "skipping unreadable frame" in result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.r2v2_root={tmp}/missing", "data error: .*missing: R2V2 folder not found"),
        ("model.intra_queue=250", "configuration error: model.intra_queue \\(250\\) must be divisible"),
        # 96 videos in batches of 16: a queue of 128 would hold videos' own earlier keys as negatives
        ("model.intra_queue=128", "configuration error: model.intra_queue \\(128\\) is longer than the 96 keys"),
        ("pretrain.batch_sise=16", "configuration error: override.pretrain.batch_sise: unknown setting"),
        ("pretrain.augment_on=gpu", "configuration error: override.pretrain.augment_on: 'gpu' is not one of"),
    ],
)
def test_bad_input_is_a_clear_error(world, tmp_path, override, message):
    result = run_cycle_here(pretrain_args(world, tmp_path / "results", override.format(tmp=tmp_path)), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert __import__("re").search(message, result.stderr), result.stderr


def test_a_run_stopped_early_is_not_complete_and_a_rerun_continues_it(world, tmp_path):
    """pretrain.max_steps stops a run before its planned steps: its summary says it is not complete,
    it keeps its training state (even without pretrain.keep_training_state), and the same command
    without the limit continues it instead of finding it finished."""
    args = pretrain_args(world, tmp_path / "results", "mlflow.enabled=false", "pretrain.keep_training_state=false")
    early = run_cycle_here([*args, "--set", "pretrain.max_steps=2"], cwd=tmp_path)
    assert early.returncode == 0, early.stderr
    run_dir = tmp_path / "results" / "pretrain" / "r18"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["complete"], summary["steps"], summary["planned_steps"]) == (False, 2, 12)
    assert "r18: it stopped at step 2 of its 12 (pretrain.max_steps)" in early.stderr
    assert (run_dir / "checkpoint.pt").is_file()

    continued = run_cycle_here(args, cwd=tmp_path)
    assert continued.returncode == 0, continued.stderr
    assert "continuing it" in continued.stderr and "resuming r18 from step 2 of 12" in continued.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["complete"], summary["steps"]) == (True, 12)
    assert not (run_dir / "checkpoint.pt").exists()  # complete now: the state it does not keep is gone


def test_a_run_folder_with_other_settings_is_refused_or_set_aside(world, tmp_path):
    args = pretrain_args(world, tmp_path / "results", "mlflow.enabled=false", "pretrain.max_steps=4")
    assert run_cycle_here(args, cwd=tmp_path).returncode == 0
    changed = run_cycle_here([*args, "--set", "pretrain.lr=0.5", "--run", "r18"], cwd=tmp_path)
    assert changed.returncode == 2
    assert "pretrain.lr: 0.03 -> 0.5" in changed.stderr and "delete its folder" in changed.stderr

    restarted = run_cycle_here([*args, "--set", "pretrain.lr=0.5", "--run", "r18", "--restart-on-change"], cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    runs = tmp_path / "results" / "pretrain"
    (aside,) = runs.glob("r18.replaced-*")
    assert json.loads((aside / "summary.json").read_text())["config"]["pretrain"]["lr"] == 0.03
    assert json.loads((runs / "r18" / "summary.json").read_text())["config"]["pretrain"]["lr"] == 0.5


@pytest.mark.parametrize(
    "loss",
    [("loss.components=intra_image",), ("loss.components=intra_video+cycle", "loss.query_view_in_neighbors=true")],
    ids=["intra_image", "cycle-kpp"],
)
def test_device_data_path_resumes_to_the_same_weights(world, tmp_path, monkeypatch, loss):
    """MoCo v2 in batches in the training process, from loose JPEGs: two views of one frame (intra-image)
    and three views (k_++) train, and a crashed run resumes to the uninterrupted run's weights."""
    sets = [f"data.r2v2_root={world / 'r2v2'}", f"data.imagenet_root={world / 'imagenet'}", "mlflow.enabled=false"]
    sets += ["pretrain.augment_on=device", *loss]
    config = load_config(PARAMS, "test", [*sets, "pretrain.max_steps=4", "pretrain.checkpoint_every=2"])
    whole = loop.pretrain(config, "whole", tmp_path / "whole")
    assert whole["steps"] == 4 and whole["skipped_frames"] == 0 and whole["final_metrics"]["loss"] > 0
    with crash_at_step(monkeypatch, 3):
        loop.pretrain(config, "resumed", tmp_path / "resumed")  # a checkpoint is written at step 2
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["step"] == 2
    loop.pretrain(config, "resumed", tmp_path / "resumed")
    assert_same_weights(weights(tmp_path / "resumed"), weights(tmp_path / "whole"))


def test_augment_on_auto_is_the_device_path_on_cuda_only():
    choose = {
        choice: load_config(PARAMS, "test", [f"pretrain.augment_on={choice}"]) for choice in ("auto", "cpu", "device")
    }
    on = {
        (choice, kind): augments_on_device(config, torch.device(kind))
        for choice, config in choose.items()
        for kind in ("cpu", "cuda")
    }
    assert on == {
        ("auto", "cpu"): False,
        ("auto", "cuda"): True,
        ("cpu", "cpu"): False,
        ("cpu", "cuda"): False,
        ("device", "cpu"): True,
        ("device", "cuda"): True,
    }
