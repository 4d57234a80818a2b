"""`cycle eval finetune` end to end on the test world: it trains a copy of the backbone (the
checkpoint file stays as it was), logs every epoch to one MLflow run that survives an interruption,
and fills Table 9's rows, the authors' released checkpoints' (MoCo layout) with the model zoo's
number beside ours."""

import hashlib
import json
import re
import signal
import subprocess
import time

import mlflow
import pandas
import pytest
import torch
import yaml

from cycle_pkg.reproduction.grid import Grid
from cycle_pkg.reproduction.paper import paper_tables
from cycle_pkg.reproduction.tables import write_table
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS, cycle_command, run_cycle_here
from ..helpers.eval_inputs import moco_state, write_our_checkpoint
from .test_cli import eval_args


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def finetune_args(world, tmp_path, checkpoint, *overrides):
    return eval_args("finetune", world, tmp_path, checkpoint, f"data.ucf101_root={world / 'ucf101'}", *overrides)


def test_an_interrupted_fine_tuning_resumes_its_run_and_leaves_the_checkpoint_as_it_was(world, tmp_path, mlflow_uri):
    client = mlflow.MlflowClient(mlflow_uri)
    pretrain_id = client.create_run(client.create_experiment("cycle-contrast"), run_name="r18").info.run_id
    checkpoint = write_our_checkpoint(tmp_path / "results" / "pretrain" / "r18", mlflow_run_id=pretrain_id)
    before = sha256(checkpoint)
    state = tmp_path / "results" / "eval" / "finetune" / "r18" / "checkpoint.pt"
    process = subprocess.Popen(
        cycle_command(*finetune_args(world, tmp_path, checkpoint)), cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    while not state.exists() and process.poll() is None:  # the warm-up epoch is saved
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 143, stderr[-3000:]
    assert "preempted: fine-tuning saved at epoch" in stderr
    metrics_file = tmp_path / "results" / "eval" / "finetune" / "r18.json"
    assert not metrics_file.exists()

    resumed = run_cycle_here(finetune_args(world, tmp_path, checkpoint), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming the fine-tuning from epoch" in resumed.stderr
    attempts = (state.parent / "attempts.log").read_text()  # both attempts, each with how it ended
    assert re.search(
        r"attempt on .*attempt stopped: Preempted: fine-tuning saved at epoch \d"
        r".*attempt on .*resuming the fine-tuning from epoch .*attempt finished\n$",
        attempts,
        re.DOTALL,
    ), attempts
    record = json.loads(metrics_file.read_text())
    assert sha256(checkpoint) == before  # fine-tuned in memory: the pretraining checkpoint is untouched
    assert record["backbone_frozen"] is False and record["pretrain_mlflow_run_id"] == pretrain_id
    metrics = record["metrics"]
    cfg = load_config(PARAMS, "test").eval.finetune
    assert len(metrics["epoch_losses"]) == cfg.warmup_epochs + cfg.epochs and not metrics["diverged"]
    assert (metrics["train_videos"], metrics["test_videos"], metrics["classes"]) == (48, 24, 12)
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 100 and 0 <= metrics["clip_top1"] <= metrics["clip_top5"] <= 100
    # one MLflow run for both sessions, every epoch logged, nested under the pretraining run
    assert (state.parent / "mlflow_run_id").read_text() == record["mlflow_run_id"]
    run = client.get_run(record["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == pretrain_id
    history = client.get_metric_history(record["mlflow_run_id"], "train_loss")
    assert sorted(m.step for m in history if m.step) == [1, 2]  # step 0: the final metrics
    assert run.data.metrics["top1"] == pytest.approx(metrics["top1"])


def test_the_authors_released_checkpoints_fill_their_rows(world, tmp_path, mlflow_uri):
    """A MoCo-layout ResNet-50 (``module.encoder_q.*``, as the authors' releases are) given under
    ``baselines`` is a row of Tables 1, 3 and 9; fine-tuned, it fills Table 9's row beside the zoo's 82.8."""
    release = tmp_path / "cycle_res50_r2v2_ep200.pth.tar"
    torch.save(moco_state("resnet50"), release)
    params = yaml.safe_load(PARAMS.read_text())
    params["baselines"] = {"authors_cycle_r2v2_resnet50": str(release), "authors_moco_r2v2_resnet50": str(release)}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    grid = Grid(tmp_path / "params.yaml", "test")
    tables = paper_tables()
    rows = {
        (name, row.baseline): grid.models_of(name, i)
        for name, table in tables.items()
        for i, row in enumerate(table.rows)
        if row.baseline and row.baseline.startswith("authors_")
    }
    assert set(rows) == {(t, b) for t in ("table1", "table3", "table9") for b in params["baselines"]}
    assert all(models == (f"baseline-{baseline}",) for (_, baseline), models in rows.items())
    assert {job.evaluation for job in grid.jobs() if job.model == "baseline-authors_cycle_r2v2_resnet50"} == {
        "track",
        "linear_imagenet",
        "finetune",
    }

    run = "baseline-authors_cycle_r2v2_resnet50"  # as the workflow names the job
    # the shortest fine-tuning (one epoch, one test clip per video): a ResNet-50 costs 4x a ResNet-18
    shortest = ["eval.finetune.warmup_epochs=0", "eval.finetune.test_clips=1", "eval.finetune.clip_test_clips=1"]
    result = run_cycle_here([*finetune_args(world, tmp_path, release, *shortest), "--run", run], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "results" / "eval" / "finetune" / f"{run}.json").read_text())
    assert (record["checkpoint_format"], record["backbone"]) == ("moco", "resnet50")
    config = load_config(tmp_path / "params.yaml", "test", [f"results={tmp_path / 'results'}"])
    for other in ("r18-r2v2", "r50-r2v2-mlp-d128", "baseline-authors_moco_r2v2_resnet50"):
        (tmp_path / "results" / "eval" / "finetune" / f"{other}.json").write_text(json.dumps(record))
    _, csv = write_table(tables["table9"], grid, config, tmp_path / "tables")
    frame = pandas.read_csv(csv).set_index("model")
    assert frame.loc[run, "top1_paper"] == 82.8  # the model zoo's number for this checkpoint
    assert frame.loc[run, "top1_ours"] == pytest.approx(record["metrics"]["top1"])
    assert "model zoo" in frame.loc[run, "method"]
